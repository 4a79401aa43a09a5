// pixelwise serve's page: pick or drop an image, send it to POST /predict, draw the answer.
//
// One request (output=json) gives the classes' pixel shares and their run-length encodings; the colour
// layer is drawn from those runs, so it is exactly the API's output=color PNG. The uncertainty map is
// asked for (output=uncertainty) the first time its box is ticked.
"use strict";

const $ = (id) => document.getElementById(id);
let current = null; // {file, objectUrl, uncertaintyUrl}

function setState(state, message = "", isError = false) {
  document.body.dataset.state = state;
  $("message").textContent = message;
  $("message").className = isError ? "error" : "";
}

async function errorText(response) {
  // Every failure of the API is JSON {"error": "..."}; anything else (a proxy's page) is shown by its status.
  try {
    return (await response.json()).error || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status} ${response.statusText}`;
  }
}

async function loadModel() {
  const response = await fetch("model");
  if (!response.ok) {
    setState("error", await errorText(response), true);
    return;
  }
  const model = await response.json();
  const size = model.input_size ? `input ${model.input_size.join("x")}` : "native resolution";
  $("model-info").textContent = `${model.model}, ${model.classes.length} classes, ${size}, ` +
    `${model.backend} (${model.precision}), pixelwise ${model.pixelwise_version}`;
}

function post(file, query) {
  const form = new FormData();
  form.append("image", file, file.name || "upload");
  return fetch(`predict?${query}`, { method: "POST", body: form });
}

// Paint each class's runs (1-based starts, column-major, as Kaggle's RLE) in its colour.
function drawClasses(canvas, answer) {
  const { width, height } = answer;
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(width, height);
  const data = pixels.data;
  for (const cls of answer.classes) {
    if (!cls.rle) continue;
    const [r, g, b] = cls.color;
    const numbers = cls.rle.split(" ").map(Number);
    for (let k = 0; k < numbers.length; k += 2) {
      const start = numbers[k] - 1;
      for (let p = start; p < start + numbers[k + 1]; p++) {
        const x = Math.floor(p / height), y = p % height;
        const i = 4 * (y * width + x);
        data[i] = r; data[i + 1] = g; data[i + 2] = b; data[i + 3] = 255;
      }
    }
  }
  context.putImageData(pixels, 0, 0);
}

function showLegend(answer) {
  const legend = $("legend");
  legend.replaceChildren();
  for (const cls of answer.classes) {
    const item = document.createElement("li");
    item.dataset.classId = cls.id;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = `rgb(${cls.color.join(",")})`;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = cls.name;
    const share = document.createElement("span");
    share.className = "share";
    share.textContent = `${(100 * cls.share).toFixed(1)}%`;
    item.append(swatch, name, share);
    legend.append(item);
  }
}

function showImage(file) {
  if (current && current.objectUrl) URL.revokeObjectURL(current.objectUrl);
  if (current && current.uncertaintyUrl) URL.revokeObjectURL(current.uncertaintyUrl);
  const objectUrl = URL.createObjectURL(file);
  current = { file, objectUrl, uncertaintyUrl: null };
  const stack = document.querySelector(".stack");
  stack.classList.remove("no-image");
  $("original").onerror = () => stack.classList.add("no-image"); // e.g. TIFF: the classes alone
  $("original").src = objectUrl;
  $("under").src = objectUrl;
  $("show-uncertainty").checked = false;
  showLayer();
}

async function segment(file) {
  setState("busy", `segmenting ${file.name}...`);
  const started = performance.now();
  let response;
  try {
    response = await post(file, "output=json");
  } catch (e) {
    setState("error", `could not reach the server (${e.message})`, true);
    return;
  }
  if (!response.ok) {
    $("result").hidden = true;
    setState("error", `rejected: ${await errorText(response)}`, true);
    return;
  }
  const answer = await response.json();
  showImage(file);
  drawClasses($("mask"), answer);
  showLegend(answer);
  const t = answer.timing_ms;
  $("timing").textContent = `${answer.width}x${answer.height}, ${Math.round(performance.now() - started)} ms ` +
    `in all: model ${t.model.toFixed(0)} ms (batch of ${answer.batch_size}), queue ${t.queue.toFixed(0)} ms, ` +
    `decoding ${t.decode.toFixed(0)} ms; ${answer.backend} ${answer.precision}`;
  $("result").hidden = false;
  setState("done", `${file.name}: done`);
}

async function showLayer() {
  const wantUncertainty = $("show-uncertainty").checked;
  const opacity = $("opacity").value / 100;
  $("mask").style.opacity = wantUncertainty ? 0 : opacity;
  $("uncertainty").style.opacity = opacity;
  $("uncertainty").hidden = !wantUncertainty;
  $("layer-name").textContent = wantUncertainty ? "uncertainty" : "classes";
  if (!wantUncertainty || !current || current.uncertaintyUrl) return;
  const file = current.file;
  const response = await post(file, "output=uncertainty");
  if (!response.ok) {
    setState("error", `uncertainty: ${await errorText(response)}`, true);
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  if (!current || current.file !== file) return URL.revokeObjectURL(url); // another image came meanwhile
  current.uncertaintyUrl = url;
  $("uncertainty").src = url;
}

function pick(files) {
  if (files && files.length) segment(files[0]);
}

$("file").addEventListener("change", (e) => {
  pick(e.target.files);
  e.target.value = ""; // so that picking the same file again is a change too
});
$("opacity").addEventListener("input", showLayer);
$("show-uncertainty").addEventListener("change", showLayer);
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); pick(e.dataTransfer.files); });
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") $("file").click(); });
loadModel();
