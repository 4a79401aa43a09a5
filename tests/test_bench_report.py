"""`run_all.py --only ... --update` replaces the re-measured rows' notes instead of piling a new set on the old
(docs/benchmarks.md once held three generations of the predict rows' profile notes, from three machines)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_report import update_report  # noqa: E402

REPORT = """# Benchmarks

## Results

| row | baseline | pixelwise | ratio | target | met? |
|---|---|---|---|---|---|
| 1a predict | 1 img/s | 2 img/s | 2.00x | >= 7x | **no** |
| 1m peer | 1 img/s | 1 img/s | 1.00x | >= 1x | yes |
| 2 train | 1 img/s | 5 img/s | 5.00x | >= 4x | yes |

## Notes

- Rows 1a-1g: 16 images on the old machine.
- Profile of the plain loop: decoding 6 ms/image on the old machine.
- Row 2: 24 training images.
- Measured separately: rows 1a, 1m by `old command` on day 1 (Old CPU, 2 cores); the other rows are those above.

## Reproduce
"""


def test_update_replaces_the_remeasured_rows_notes_and_keeps_the_others():
    row = {"row": "1a predict", "baseline": "3 img/s", "pixelwise": "9 img/s", "ratio": 3.0, "target": 7}
    notes = ["Rows 1a-1g: 16 images on the new machine.",
             "Profile of the plain loop: decoding 8 ms/image on the new machine."]
    info = {"date": "day 2", "cpu": "New CPU", "cores": 2}
    text, rows = update_report(REPORT, [row], notes, info, "new command")
    assert "old machine" not in text
    assert text.count("Profile of the plain loop") == 1 and "on the new machine" in text
    assert "- Row 2: 24 training images." in text
    # The old stamp keeps only the row not measured again; the new stamp names the new row.
    assert "rows 1m by `old command` on day 1" in text
    assert "rows 1a by `new command` on day 2 (New CPU" in text
    assert [r["ratio"] for r in rows] == [3.0, 1.0, 5.0]
    assert "| 1a predict | 3 img/s | 9 img/s | 3.00x | >= 7x | **no** |" in text
