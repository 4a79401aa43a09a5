"""The web page at / in a real browser: headless Chromium driven by Playwright.

Playwright (PyPI, the dev extra) drives Debian's ``chromium`` package; ``playwright install`` is never used.
Where Chromium is missing and this runs as root, the fixture installs it with apt-get; the test is skipped,
saying why, only where neither is possible. ``PIXELWISE_UPDATE_DOCS=1`` also saves the screenshot as
docs/serve.png (the README's picture); ``PIXELWISE_DOCS_CHECKPOINT`` then names a better-trained model to
show there (e.g. the demo's), in place of the test's 3-epoch one.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

DOCS = Path(__file__).resolve().parents[2] / "docs"
BROWSERS = ("chromium", "chromium-browser")


def find_chromium() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def apt_install_chromium() -> str:
    """Install Debian's chromium package (as root); what apt-get said when it failed."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)
    if result.returncode != 0:  # the package lists may be missing or stale (a fresh container)
        subprocess.run(["apt-get", "update"], capture_output=True, text=True, env=env, timeout=600)
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)
    return "" if result.returncode == 0 else (result.stderr.strip().splitlines() or ["failed"])[-1]


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of a Chromium executable, installed with apt-get if missing and possible."""
    pytest.importorskip("playwright", reason="Playwright is not installed: pip install 'pixelwise[dev]'")
    path = find_chromium()
    if path is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.skip("no Chromium, and it cannot be installed here (needs root and apt-get): "
                        "run `apt-get install chromium` as root")
        problem = apt_install_chromium()
        path = find_chromium()
        if path is None:
            pytest.skip(f"no Chromium: `apt-get install chromium` failed ({problem})")
    return path


@pytest.fixture(scope="module")
def live_url(served_checkpoint):
    """The server on a free port of 127.0.0.1, in a thread of this process, for the module's tests."""
    from pixelwise.inference.predictor import Predictor
    from pixelwise.serve.server import bind, make_server, url
    from pixelwise.serve.service import ModelService

    checkpoint = os.environ.get("PIXELWISE_DOCS_CHECKPOINT") or served_checkpoint
    service = ModelService(lambda: Predictor(checkpoint, precision="fp32", backend="torch"))
    sock = bind("127.0.0.1", 0)
    ready = threading.Event()
    server = make_server(service, on_ready=ready.set)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    assert ready.wait(60), "the server did not start"
    yield url(sock)
    server.should_exit = True
    thread.join(60)


CANVAS_PIXELS = """() => {
  const canvas = document.getElementById("mask");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  return {width: canvas.width, height: canvas.height, rgba: Array.from(data)};
}"""


def test_the_page_segments_an_upload(chromium, live_url, street_png, tmp_path):
    import httpx
    from playwright.sync_api import sync_playwright

    model = httpx.get(live_url + "model").json()
    expected = np.array(Image.open(io.BytesIO(httpx.post(
        live_url + "predict", params={"output": "color"},
        files={"image": ("street.png", street_png.read_bytes(), "image/png")}).content)))
    requested = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 640})
            page.on("request", lambda request: requested.append(request.url))
            page.goto(live_url)
            page.wait_for_function("document.getElementById('model-info').textContent.includes('classes')")
            page.set_input_files("#file", str(street_png))
            page.wait_for_function("document.body.dataset.state !== 'idle' && document.body.dataset.state !== 'busy'")
            assert page.evaluate("document.body.dataset.state") == "done", page.text_content("#message")

            # The legend lists the model's classes, with shares adding up to 100%.
            assert page.locator("#legend .name").all_text_contents() == [c["name"] for c in model["classes"]]
            shares = [float(s.rstrip("%")) for s in page.locator("#legend .share").all_text_contents()]
            assert sum(shares) == pytest.approx(100, abs=0.5)
            # The colour layer, drawn from the JSON's run-length encodings, is the API's colour PNG.
            drawn = page.evaluate(CANVAS_PIXELS)
            rgba = np.array(drawn["rgba"], np.uint8).reshape(drawn["height"], drawn["width"], 4)
            assert rgba.shape[:2] == expected.shape[:2] == (96, 128)
            assert np.array_equal(rgba[..., :3], expected) and (rgba[..., 3] == 255).all()
            assert "model" in page.text_content("#timing")

            page.locator("#opacity").fill("35")
            assert page.evaluate("getComputedStyle(document.getElementById('mask')).opacity") == "0.35"
            page.locator("#opacity").fill("60")
            page.screenshot(path=str(tmp_path / "serve.png"), full_page=True)
            page.check("#show-uncertainty")
            page.wait_for_function("document.getElementById('uncertainty').naturalWidth === 128")
            assert page.evaluate("getComputedStyle(document.getElementById('mask')).opacity") == "0"

            # A rejected file: the server's reason, on the page.
            page.set_input_files("#file", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hi"}])
            page.wait_for_function("document.body.dataset.state === 'error'")
            assert "not an image" in page.text_content("#message")
        finally:
            browser.close()
    # Offline: everything the page loaded came from the server itself.
    assert requested and all(url.startswith(live_url) or url.startswith("blob:") for url in requested), requested
    assert Image.open(tmp_path / "serve.png").size[0] == 1280
    if os.environ.get("PIXELWISE_UPDATE_DOCS") == "1":
        shutil.copy(tmp_path / "serve.png", DOCS / "serve.png")
