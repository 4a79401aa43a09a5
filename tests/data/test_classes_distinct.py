"""Two classes of one name or one colour in a classes.yaml are an error naming both; presets still load."""

from __future__ import annotations

import pytest

from pixelwise.core.errors import DataError
from pixelwise.data.classes import load_classes
from pixelwise.data.presets import get_preset, list_presets
from pixelwise.testing import assert_one_line_error, run_cli

SAME_NAME = """\
classes:
  - {name: background, color: [0, 0, 0]}
  - {name: road, color: [128, 64, 128]}
  - {name: car, color: [0, 0, 142]}
  - {name: sky, color: [70, 130, 180]}
  - {name: person, color: [220, 20, 60]}
  - {name: car, color: [0, 0, 230]}
"""
SAME_COLOUR = SAME_NAME.replace("{name: car, color: [0, 0, 230]}", "{name: truck, color: [0, 0, 142]}")


def test_load_classes_refuses_a_shared_name(tmp_path):
    path = tmp_path / "classes.yaml"
    path.write_text(SAME_NAME)
    with pytest.raises(DataError, match=r"classes.yaml: classes 2 'car' and 5 'car' share the name 'car'; rename one"):
        load_classes(path)


def test_load_classes_refuses_a_shared_colour(tmp_path):
    path = tmp_path / "classes.yaml"
    path.write_text(SAME_COLOUR)
    with pytest.raises(DataError, match=r"classes 2 'car' and 5 'truck' share the colour \[0, 0, 142\]; give one "
                                        "another colour"):
        load_classes(path)


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_written_as_classes_yaml_loads_back(tmp_path, name):
    """As ``datasets convert`` writes them: cityscapes-labelids keeps the official table's shared colours
    (ids 0..4 black, 'pole' and 'polegroup' grey), which colour masks painted with it use."""
    get_preset(name).to_yaml(tmp_path / "classes.yaml")
    assert load_classes(tmp_path / "classes.yaml").classes == get_preset(name).classes


def test_an_edited_preset_table_with_shared_colours_is_refused(tmp_path):
    spec = get_preset("cityscapes-labelids")
    renamed = spec.model_copy(update={"classes": [c.model_copy(update={"name": c.name.upper()}) for c in spec.classes]})
    renamed.to_yaml(tmp_path / "classes.yaml")
    with pytest.raises(DataError, match="classes 0 'UNLABELED' and 1 'EGO VEHICLE' share the colour"):
        load_classes(tmp_path / "classes.yaml")


def test_cli_names_both_classes(tiny_data, tmp_path):
    (tmp_path / "classes.yaml").write_text(SAME_NAME)
    result = run_cli("datasets", "inspect", str(tiny_data), "--classes", str(tmp_path / "classes.yaml"))
    assert_one_line_error(result, "classes.yaml", "classes 2 'car' and 5 'car' share the name 'car'", "rename one")
    (tmp_path / "classes.yaml").write_text(SAME_COLOUR)
    result = run_cli("datasets", "inspect", str(tiny_data), "--classes", str(tmp_path / "classes.yaml"))
    assert_one_line_error(result, "classes 2 'car' and 5 'truck' share the colour [0, 0, 142]")
