"""Adding a dataset format is one new file: a toy layout, registered by a plugin module, through the CLI.

The module below reads the layout of CONTRIBUTING.md's example (tests/test_contributing.py runs that one
as written); here: auto-detection, training, evaluation, and the errors without the plugin or with a broken one.
"""

from __future__ import annotations

from pixelwise.testing import run_cli

TOY_FORMAT = '''
"""``pairs``: every ``<stem>.png`` photo in ``photos/`` has its index mask ``<stem>.png`` in ``labels/``;
names listed in ``val.txt`` are the validation split."""

from pathlib import Path

from pixelwise.data.formats.base import DatasetIndex, classes_or_default, pair_by_stem, read_list, register_format


def detect_pairs(root: Path) -> bool:
    return (root / "photos").is_dir() and (root / "labels").is_dir()


@register_format("pairs", detect=detect_pairs, description="photos/ + labels/ index PNGs, val.txt names the val split")
def open_pairs(root: Path, classes, options: dict[str, str]) -> DatasetIndex:
    samples = pair_by_stem(root / "photos", root / "labels")
    val = set(read_list(root / "val.txt"))
    splits = {"train": [s for s in samples if s.image.stem not in val],
              "val": [s for s in samples if s.image.stem in val]}
    return DatasetIndex(root, "pairs", classes_or_default(root, classes, None), splits)
'''


def test_a_format_in_one_file_is_detected_trained_and_evaluated(pairs_data, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "toy_format.py").write_text(TOY_FORMAT)
    env = {"PYTHONPATH": str(plugins), "PIXELWISE_PLUGINS": "toy_format"}
    data = pairs_data

    inspected = run_cli("datasets", "inspect", str(data), env=env)
    assert inspected.returncode == 0, inspected.stderr
    assert "pairs" in inspected.stdout  # auto-detected, with no --format

    run = tmp_path / "run"
    trained = run_cli("train", "--data", str(data), "--epochs", "1", "--img-size", "32x48", "--out", str(run),
                      "--model-option", "base_filters=4", "--model-option", "depth=2", "--precision", "fp32",
                      "--no-progress", env=env)
    assert trained.returncode == 0, trained.stderr
    scored = run_cli("evaluate", str(run / "best.safetensors"), "--data", str(data), "--format", "pairs", env=env)
    assert scored.returncode == 0, scored.stderr
    assert "mIoU" in scored.stdout

    # Without the plugin the layout is unknown: one error line, no traceback.
    without = run_cli("train", "--data", str(data), "--format", "pairs", "--epochs", "1", "--out", str(tmp_path / "x"))
    assert without.returncode == 2 and "Traceback" not in without.stderr
    assert "unknown --format 'pairs'" in without.stderr


def test_a_plugin_that_fails_to_import_is_one_error_line(tmp_path):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('half-written plugin')\n")
    result = run_cli("models", env={"PYTHONPATH": str(tmp_path), "PIXELWISE_PLUGINS": "broken_plugin"})
    assert result.returncode == 2
    assert result.stderr.startswith("error: plugin 'broken_plugin'") and "half-written plugin" in result.stderr
    assert "Traceback" not in result.stderr
