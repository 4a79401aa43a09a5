"""Tests for pixelwise.data.classes: classes.yaml parsing, presets and resolution."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pixelwise.core.errors import ConfigError, DataError
from pixelwise.data.classes import ClassSpec, default_palette, load_classes
from pixelwise.data.presets import get_preset, resolve_classes

VALID_YAML = """\
classes:
  - {name: sky, color: [128, 128, 128]}
  - {name: building, color: [128, 0, 0]}
  - {name: road, color: [128, 64, 128]}
ignore_index: 255
"""


def write(tmp_path, text: str, name: str = "classes.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_valid_yaml(tmp_path):
    spec = load_classes(write(tmp_path, VALID_YAML))
    assert spec.num_classes == 3
    assert spec.names == ["sky", "building", "road"]
    assert spec.ignore_index == 255
    assert spec.palette.dtype == np.uint8
    np.testing.assert_array_equal(spec.palette, [[128, 128, 128], [128, 0, 0], [128, 64, 128]])


def test_load_without_ignore_index_defaults_to_none(tmp_path):
    spec = load_classes(write(tmp_path, "classes:\n  - {name: a, color: [1, 2, 3]}\n"))
    assert spec.ignore_index is None
    assert spec.names == ["a"]


def test_missing_classes_key_names_file_and_key(tmp_path):
    path = write(tmp_path, "ignore_index: 3\n")
    with pytest.raises(DataError, match=re.escape(str(path)) + r": classes: Field required"):
        load_classes(path)


def test_colour_component_out_of_range_names_file_and_entry(tmp_path):
    path = write(tmp_path, "classes:\n  - {name: a, color: [1, 2, 3]}\n  - {name: b, color: [0, 300, 0]}\n")
    with pytest.raises(DataError, match=re.escape(str(path)) + r": classes\.1\.color: .*outside 0\.\.255"):
        load_classes(path)


def test_unknown_top_level_key_names_file_and_key(tmp_path):
    path = write(tmp_path, "classes:\n  - {name: a, color: [1, 2, 3]}\nignore: 3\n")
    with pytest.raises(DataError, match=re.escape(str(path)) + r": ignore: Extra inputs are not permitted"):
        load_classes(path)


def test_unknown_class_key_names_file_and_key(tmp_path):
    path = write(tmp_path, "classes:\n  - {name: a, colour: [1, 2, 3]}\n")
    with pytest.raises(DataError, match=re.escape(str(path)) + r": classes\.0\.(color|colour)"):
        load_classes(path)


def test_not_yaml_names_file(tmp_path):
    path = write(tmp_path, "classes: [unclosed\n  - {name: a\n")
    with pytest.raises(DataError, match=re.escape(str(path)) + r": not valid YAML"):
        load_classes(path)


def test_missing_classes_file_names_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(DataError, match=re.escape(str(path)) + r": classes file not found"):
        load_classes(path)


def test_camvid_preset():
    spec = get_preset("camvid")
    assert spec.num_classes == 11
    assert spec.ignore_index == 11
    assert spec.names[0] == "sky" and spec.names[3] == "road" and spec.names[10] == "bicyclist"
    assert tuple(spec.palette[spec.names.index("road")]) == (128, 64, 128)


def test_binary_preset():
    spec = get_preset("binary")
    assert spec.names == ["background", "foreground"]
    assert spec.ignore_index is None
    np.testing.assert_array_equal(spec.palette, [[0, 0, 0], [255, 255, 255]])


def test_unknown_preset_is_config_error():
    with pytest.raises(ConfigError, match=r"unknown class preset 'no-such-preset'.*binary.*camvid"):
        get_preset("no-such-preset")


def test_resolve_picks_classes_yaml_beside_data(tmp_path):
    write(tmp_path, VALID_YAML)
    spec = resolve_classes(None, tmp_path)
    assert spec is not None and spec.names == ["sky", "building", "road"]


def test_resolve_without_anything_is_none(tmp_path):
    assert resolve_classes(None, tmp_path) is None
    assert resolve_classes(None) is None


def test_resolve_preset_name_wins_over_yaml_beside_data(tmp_path):
    write(tmp_path, VALID_YAML)
    assert resolve_classes("camvid", tmp_path).num_classes == 11
    assert resolve_classes("binary").names == ["background", "foreground"]


def test_resolve_explicit_yaml_path(tmp_path):
    path = write(tmp_path, VALID_YAML, "mine.yml")
    assert resolve_classes(str(path)).names == ["sky", "building", "road"]
    assert resolve_classes(path).ignore_index == 255


def test_resolve_unknown_preset_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown class preset 'voc2012'"):
        resolve_classes("voc2012", tmp_path)


def test_resolve_missing_yaml_path_is_data_error(tmp_path):
    with pytest.raises(DataError, match="classes file not found"):
        resolve_classes(str(tmp_path / "missing.yaml"))


def test_default_palette_distinct_for_40_classes():
    colors = default_palette(40)
    assert len(colors) == 40
    assert len(set(colors)) == 40
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in colors)
    assert colors[0] == (128, 0, 0)  # class 0 is not black
    assert (0, 0, 0) not in colors


def test_from_lists_uses_default_palette():
    spec = ClassSpec.from_lists(["a", "b", "c"])
    np.testing.assert_array_equal(spec.palette, np.array(default_palette(3), np.uint8))


def test_to_yaml_round_trip(tmp_path):
    colors = [(0, 0, 0), (10, 20, 30), (255, 254, 253)]
    spec = ClassSpec.from_lists(["bg", "cat", "dog"], colors, ignore_index=7)
    spec.to_yaml(tmp_path / "out.yaml")
    again = load_classes(tmp_path / "out.yaml")
    assert again == spec
    assert again.model_dump() == spec.model_dump()


def test_to_yaml_round_trip_without_ignore(tmp_path):
    spec = get_preset("binary")
    spec.to_yaml(tmp_path / "out.yaml")
    assert "ignore_index" not in (tmp_path / "out.yaml").read_text()
    assert load_classes(tmp_path / "out.yaml") == spec


def test_empty_classes_list_names_file(tmp_path):
    path = write(tmp_path, "classes: []\n")
    expected = re.escape(str(path)) + r": classes: List should have at least 1 item"
    with pytest.raises(DataError, match=expected):
        load_classes(path)


@pytest.mark.parametrize("text", ["", "just a string\n", "- a\n- b\n"])
def test_yaml_that_is_not_a_mapping_names_file(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=re.escape(str(path)) + r": .*valid dictionary"):
        load_classes(path)


@pytest.mark.parametrize("value", [70000, -1])
def test_ignore_index_outside_mask_range_is_data_error(tmp_path, value):
    path = write(tmp_path, f"classes:\n  - {{name: a, color: [1, 2, 3]}}\nignore_index: {value}\n")
    with pytest.raises(DataError, match=re.escape(str(path)) + r": ignore_index"):
        load_classes(path)


def test_mask_values_map_binary_255_masks(tmp_path):
    from pixelwise.data.sample import to_class_ids

    spec = get_preset("binary-255")
    ids = to_class_ids(np.array([[0, 255]], np.uint8), spec, "m.png")
    assert ids.tolist() == [[0, 1]]
    with pytest.raises(DataError, match=r"m.png: mask value 1 .*class value \(0, 255\)"):
        to_class_ids(np.array([[1]], np.uint8), spec, "m.png")
    write(tmp_path, "classes:\n- {name: a, color: [0, 0, 0]}\n- {name: b, color: [1, 1, 1]}\nvalues: [5, 5]\n")
    with pytest.raises(DataError, match="values must be distinct"):
        load_classes(tmp_path / "classes.yaml")


def test_folders_layout_reads_the_tutorials_image_label_folders(tmp_path):
    from PIL import Image

    from pixelwise.data.formats import open_dataset

    for name in ["0", "1"]:
        (tmp_path / "image").mkdir(exist_ok=True)
        (tmp_path / "label").mkdir(exist_ok=True)
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "image" / f"{name}.png")
        Image.fromarray(np.full((4, 4), 255, np.uint8)).save(tmp_path / "label" / f"{name}.png")
    index = open_dataset(tmp_path, classes="binary-255")
    assert index.format == "folders" and len(index.split("val")) == 1
    assert (index.reader.load(index.split("train")[0])[1] == 1).all()
