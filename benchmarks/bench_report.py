"""docs/benchmarks.md and its chart from the rows the benchmark modules return (used by run_all.py)."""

from __future__ import annotations

from pathlib import Path

STAMP = "- Measured separately: rows "  # opens the note that says when and where rows were measured again


def ratio_text(r: dict) -> str:
    if r.get("skipped"):
        return f"skipped: {r['skipped']}"
    return f"{r['ratio']:.2f}x" if r.get("ratio") is not None else "-"


def met_text(r: dict) -> str:
    if r.get("skipped") or r.get("ratio") is None or not r.get("target"):
        return "-"
    return "yes" if r["ratio"] >= r["target"] else "**no**"


def machine_table(info: dict) -> list[str]:
    bf16 = "yes" if info["torch_fast_bf16"] else "no"
    isa = [name for name, key in (("AVX-512", "avx512"), ("AMX", "amx"), ("AVX-512-BF16", "avx512_bf16")) if info[key]]
    ov = {None: "OpenVINO not installed", True: "OpenVINO reports BF16", False: "OpenVINO reports no BF16"}
    ram = f"{info['ram_gib']:.0f} GiB" if info["ram_gib"] else "unknown"
    lines = [
        "| | |", "|---|---|",
        f"| CPU | {info['cpu']} |",
        f"| cores | {info['cores']} (PyTorch threads: {info['torch_threads']}) |",
        f"| native bf16 | {bf16}: {', '.join(isa) or 'no AVX-512'}; {ov[info['openvino_bf16']]} |",
        f"| RAM | {ram} |",
        f"| GPU | {'yes (not used: CPU benchmarks)' if info['gpu'] else 'none'} |",
        f"| versions | Python {info['python']}, torch {info['torch']}, onnxruntime {info['onnxruntime']}, "
        f"openvino {info['openvino']}, segmentation-models-pytorch {info['smp']}, pixelwise {info['pixelwise']} |",
        f"| date | {info['date']} |",
        f"| load average (1 min) | {load(info.get('load_start'))} at the start, {load(info.get('load_end'))} at the "
        "end "
        "(the benchmark itself adds up to about 2; more means other jobs shared the CPU) |",
    ]
    if info.get("others_cpu_share") is not None:
        lines.append(f"| other jobs' CPU use during the run | {info['others_cpu_share']:.0%} of the machine's CPU time "
                     "(busy time in /proc/stat minus the benchmark's own) |")
    return lines


def load(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "unknown"


def markdown(info: dict, rows: list[dict], notes: list[str], total_s: float, command: str, quick: bool) -> str:
    lines = ["# Benchmarks", ""]
    if quick:
        lines += ["> **Smoke run (`--quick`)**: tiny image counts and one repeat; the numbers are not meaningful.", ""]
    lines += [
        f"Measured by `{command}` in {total_s / 60:.1f} minutes. Every row times pixelwise and its baseline side by "
        "side in the same run, on the same weights and data; *ratio* is pixelwise's speed over the baseline's "
        "(higher is better), *target* the goal set for it. Figures are medians of repeats with warm-up excluded "
        "(the notes give the counts).", "",
        "## Machine", "", *machine_table(info), "",
        "## Results", "",
        "| row | baseline | pixelwise | ratio | target | met? |", "|---|---|---|---|---|---|",
    ]
    for r in rows:
        target = f">= {r['target']:g}x" if r.get("target") else "-"
        cells = [r["row"], r["baseline"], r["pixelwise"], ratio_text(r), target, met_text(r)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "![ratios against targets](benchmarks.png)", "", "## Notes", ""]
    lines += [f"- {n}" for n in notes]
    lines += [
        "", "## Reproduce", "",
        "```", "make bench                                   # installs the [bench] extra, then runs everything",
        "python benchmarks/run_all.py --quick         # smoke run, a few minutes",
        "python benchmarks/bench_predict.py           # one row alone (also bench_train.py, bench_tiled.py,",
        "                                             # bench_colors.py, bench_data_cache.py, bench_serve.py)",
        "python benchmarks/run_all.py --only serve --update   # rows measured again, the others kept", "```", "",
        "Each script takes `--data DIR` (CamVid in the SegNet layout, default `../shared/data/camvid`) and reports "
        "a row as `skipped: no data` when it is absent.", "",
    ]
    return "\n".join(lines)


def row_id(name: str) -> str:
    """A row's number, e.g. ``6b`` for "6b serve, ..."."""
    return name.split()[0]


def update_report(text: str, rows: list[dict], notes: list[str], info: dict, command: str) -> tuple[str, list[dict]]:
    """``text`` (a report) with ``rows`` and ``notes`` put in place of those of the same numbers, the other
    rows kept as they were measured; a note says when and where the new rows were measured. Also returns
    every row of the report (for the chart), the kept ones read back from its table."""
    lines = text.splitlines()
    new = {row_id(r["row"]): r for r in rows}
    table = [k for k, line in enumerate(lines) if line.startswith("| ") and not line.startswith("| row ")
             and k > lines.index("## Results")]
    kept = [lines[k] for k in table if row_id(lines[k][2:]) not in new]
    header = ["| row | baseline | pixelwise | ratio | target | met? |", "|---|---|---|---|---|---|"]
    ours = ["| " + " | ".join([r["row"], r["baseline"], r["pixelwise"], ratio_text(r),
                               f">= {r['target']:g}x" if r.get("target") else "-", met_text(r)]) + " |" for r in rows]
    merged = sorted(kept + ours, key=lambda line: _row_order(row_id(line[2:])))
    start = table[0] if table else lines.index("## Results") + 2
    end = table[-1] + 1 if table else start
    lines[start - 2:end] = header + merged
    lines = _without_stale_notes(lines, list(new), notes)
    at = lines.index("## Reproduce") - 1
    others = info.get("others_cpu_share")
    share = f", other jobs {others:.0%} of the CPU time meanwhile" if others is not None else ""
    stamp = (f"{STAMP}{', '.join(new)} by `{command}` on {info['date']} ({info['cpu']}, "
             f"{info['cores']} cores, load average {load(info.get('load_start'))} at the start, "
             f"{load(info.get('load_end'))} at the end{share}); the other rows are those of the run described above.")
    lines[at:at] = [f"- {n}" for n in notes] + [stamp]
    return "\n".join(lines) + "\n", [_parse_row(line) for line in merged]


def _without_stale_notes(lines: list[str], ids: list[str], notes: list[str]) -> list[str]:
    """``lines`` without the notes the new measurement of rows ``ids`` replaces: those naming the rows ("Row 1a",
    "Rows 1a-1g", "What bounds row 1"), those a new note regenerates (the same opening words: a profile, a
    spread) and, in "Measured separately" stamps, the rows measured again (a stamp left with none goes).

    >>> old = ["- Rows 1a-1g: old", "- Spread over the repeats (img/s): 1", "- Row 2: kept",
    ...        STAMP + "1a, 1m by `x` on d", STAMP + "1a by `y` on d"]
    >>> _without_stale_notes(old, ["1a"], ["Spread over the repeats (img/s): 2"])
    ['- Row 2: kept', '- Measured separately: rows 1m by `x` on d']
    """
    prefixes = tuple(f"- {word} {i}" for word in ("Row", "Rows", "What bounds row") for i in ids)
    openings = tuple(f"- {note[:30]}" for note in notes)
    kept = []
    for line in lines:
        if line.startswith(STAMP):
            listed, rest = line[len(STAMP):].split(" by ", 1)
            left = [i for i in listed.split(", ") if i not in ids]
            if left:
                kept.append(f"{STAMP}{', '.join(left)} by {rest}")
        elif not line.startswith(prefixes + openings):
            kept.append(line)
    return kept


def _row_order(identifier: str) -> tuple[int, str]:
    digits = "".join(c for c in identifier if c.isdigit())
    return (int(digits) if digits else 99, identifier)


def _parse_row(line: str) -> dict:
    """A table line back to a row (enough for the chart: name, ratio, target)."""
    cells = [c.strip() for c in line.strip("|").split("|")]
    ratio = float(cells[3].rstrip("x")) if cells[3].endswith("x") and not cells[3].startswith("skipped") else None
    target = float(cells[4].split()[1].rstrip("x")) if cells[4].startswith(">=") else None
    return {"row": cells[0], "baseline": cells[1], "pixelwise": cells[2], "ratio": ratio, "target": target}


def chart(rows: list[dict], path: str | Path) -> None:
    """Horizontal bars of the ratios (log scale) with each target marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.get("ratio") is not None and not r.get("skipped")]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(shown) + 2.0))
    labels = [r["row"] if len(r["row"]) <= 70 else r["row"][:67] + "..." for r in shown]
    ys = list(range(len(shown)))[::-1]
    colours = ["#9e9e9e" if not r.get("target") else "#2e7d32" if r["ratio"] >= r["target"] else "#e65100"
               for r in shown]
    ax.barh(ys, [r["ratio"] for r in shown], color=colours, height=0.6)
    for y, r in zip(ys, shown, strict=True):
        ax.text(r["ratio"] * 1.05, y, f"{r['ratio']:.2f}x" if r["ratio"] < 10 else f"{r['ratio']:.0f}x",
                va="center", fontsize=8)
        if r.get("target"):
            ax.plot([r["target"]] * 2, [y - 0.4, y + 0.4], color="black", linewidth=2)
    ax.axvline(1.0, color="#555555", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    values = [r["ratio"] for r in shown] + [r["target"] for r in shown if r.get("target")]
    lo, hi = min([0.5, *values]) / 1.3, max([2.0, *values]) * 2.2
    ax.set_xlim(lo, hi)
    ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000) if lo <= t <= hi]
    ax.set_xticks(ticks, [f"{t:g}x" for t in ticks])
    ax.minorticks_off()
    ax.set_yticks(ys, labels, fontsize=8)
    ax.set_xlabel("pixelwise speed / baseline speed (log scale)")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color="#2e7d32", label="target met"), Patch(color="#e65100", label="target missed"),
                       Patch(color="#9e9e9e", label="no target"), Line2D([], [], color="black", lw=2, label="target")],
              loc="upper center", bbox_to_anchor=(0.5, -0.09 - 0.9 / (len(shown) + 4)), ncol=4, fontsize=8,
              frameon=False)
    ax.set_title("pixelwise benchmarks: speed ratio against each baseline")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
