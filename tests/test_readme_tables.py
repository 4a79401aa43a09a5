"""The README's tables of formats, models, losses, backends and class presets say what the registries say.

The check runs in a fresh process: this one's registries may hold entries that other tests registered
(toy models of doctests, plugin formats), which the README rightly does not list.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pixelwise.cli.readme import TABLES, update_tables
from pixelwise.cli.readme import main as readme_main
from pixelwise.core.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"


def run_readme(*args: str) -> subprocess.CompletedProcess:
    """``python -m pixelwise.cli.readme ARGS`` with no plugins."""
    env = {k: v for k, v in os.environ.items() if k != "PIXELWISE_PLUGINS"}
    return subprocess.run([sys.executable, "-m", "pixelwise.cli.readme", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_the_readme_tables_match_the_registries():
    result = run_readme("--check", str(README))
    assert result.returncode == 0, f"{result.stderr}run `make readme` and commit the README"


def test_a_stale_table_is_found_and_rewritten(tmp_path, capsys):
    text = README.read_text()
    assert all(f"<!-- table:{name} -->" in text for name in TABLES)
    stale = tmp_path / "README.md"
    # A registry entry the README forgot, and a description edited by hand.
    stale.write_text(text.replace("| `deeplabv3plus` |", "| `deeplabv3plus-old` |", 1)
                     .replace("| `dice` | Soft multiclass Dice", "| `dice` | Dice", 1))
    # In this process, so the tables are compared with this process's registries, not the README's.
    assert readme_main(["--check", str(stale)]) == 1
    err = capsys.readouterr().err
    assert "out of date: " in err and "models" in err and "losses" in err

    assert readme_main([str(stale)]) == 0
    assert stale.read_text() == update_tables(text)  # prose untouched, every table as generated
    assert readme_main(["--check", str(stale)]) == 0


def test_missing_markers_are_one_error_line(tmp_path, capsys):
    with pytest.raises(ConfigError, match="no '<!-- table:formats -->'"):
        update_tables("# A README without tables\n")
    (tmp_path / "README.md").write_text("# A README without tables\n")
    assert readme_main(["--check", str(tmp_path / "README.md")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "markers" in err
