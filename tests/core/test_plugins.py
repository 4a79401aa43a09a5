"""Plugins: modules named in PIXELWISE_PLUGINS are imported once and register their entries; a module that
cannot be imported is one error line naming it."""

from __future__ import annotations

import sys

import pytest

from pixelwise.core import plugins
from pixelwise.core.errors import ConfigError
from pixelwise.core.plugins import load_plugins
from pixelwise.data.classes import PRESETS
from pixelwise.data.presets import get_preset, list_presets
from pixelwise.testing import run_cli

PRESET_PLUGIN = '''
"""A plugin with one class preset."""
from pixelwise.data.classes import ClassSpec, register_preset

register_preset("tmp-plugin-classes", ClassSpec.from_lists(["background", "cell", "nucleus"]))
'''


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on sys.path for plugin modules; the registries and the loaded list are restored afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(PRESETS, "_entries", dict(PRESETS._entries))  # the test's preset leaves with it
    monkeypatch.setattr(plugins, "_loaded", None)
    yield tmp_path
    sys.modules.pop("tmp_preset_plugin", None)


def test_a_plugin_module_registers_a_preset(plugin_dir, monkeypatch):
    (plugin_dir / "tmp_preset_plugin.py").write_text(PRESET_PLUGIN)
    monkeypatch.setenv("PIXELWISE_PLUGINS", " tmp_preset_plugin , ")  # spaces and empty items are fine
    assert "tmp-plugin-classes" not in list_presets()
    assert load_plugins() == ["tmp_preset_plugin"]
    assert "tmp-plugin-classes" in list_presets()
    assert get_preset("tmp-plugin-classes").names == ["background", "cell", "nucleus"]
    # Once per process: a second call imports nothing again.
    monkeypatch.setenv("PIXELWISE_PLUGINS", "no_such_module_anywhere")
    assert load_plugins() == ["tmp_preset_plugin"]


def test_a_missing_module_is_one_error_line(plugin_dir, monkeypatch):
    monkeypatch.setenv("PIXELWISE_PLUGINS", "no_such_module_anywhere")
    with pytest.raises(ConfigError, match="plugin 'no_such_module_anywhere'.*check its name and PYTHONPATH"):
        load_plugins()
    assert plugins._loaded is None  # not remembered: the next call reports it again


def test_a_bad_plugin_name_stops_the_cli_with_one_line():
    result = run_cli("train", "--help", env={"PIXELWISE_PLUGINS": "no_such_module_anywhere"})
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: plugin 'no_such_module_anywhere'"), result.stderr
    assert "ModuleNotFoundError" in lines[0] and "Traceback" not in result.stderr
