"""Tests for pixelwise.data.label_tables: Cityscapes (against the official table), CARLA and Pets."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pixelwise.core.errors import ConfigError
from pixelwise.data import label_tables as lt
from pixelwise.data.presets import PRESETS, get_preset

FIELDS = ("name", "id", "trainId", "category", "categoryId", "hasInstances", "ignoreInEval", "color")


@pytest.fixture(scope="module")
def official():
    # Test-only reference (pip install cityscapesscripts); src/ never imports it.
    return pytest.importorskip("cityscapesscripts.helpers.labels").labels


# --- Cityscapes ----------------------------------------------------------------------------------


def test_dataclass_fields_match_official_names():
    assert tuple(f.name for f in dataclasses.fields(lt.CityscapesLabel)) == FIELDS


def test_every_field_of_every_label_matches_official(official):
    assert len(lt.CITYSCAPES_LABELS) == len(official) == 35
    for ours, ref in zip(lt.CITYSCAPES_LABELS, official, strict=True):
        for field in FIELDS:
            assert getattr(ours, field) == getattr(ref, field), (ref.name, field)
            assert type(getattr(ours, field)) is type(getattr(ref, field)), (ref.name, field)


def test_catid_alias():
    assert all(lb.catId == lb.categoryId for lb in lt.CITYSCAPES_LABELS)


def test_labels_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        lt.CITYSCAPES_LABELS[0].trainId = 0  # type: ignore[misc]


def test_cityscapes_preset_is_the_19_train_ids(official):
    spec = get_preset("cityscapes")
    train = sorted((lb for lb in official if 0 <= lb.trainId < 255), key=lambda lb: lb.trainId)
    assert [lb.trainId for lb in train] == list(range(19))
    assert spec.names == [lb.name for lb in train]
    assert [c.color for c in spec.classes] == [lb.color for lb in train]
    assert spec.ignore_index == 255


def test_cityscapes_labelids_preset(official):
    spec = get_preset("cityscapes-labelids")
    by_id = {lb.id: lb for lb in official}
    assert spec.num_classes == 34
    assert spec.names == [by_id[i].name for i in range(34)]
    assert [c.color for c in spec.classes] == [by_id[i].color for i in range(34)]
    assert spec.ignore_index is None


def test_cityscapes_categories_preset(official):
    spec = get_preset("cityscapes-categories")
    assert spec.names == ["void", "flat", "construction", "object", "nature", "sky", "human", "vehicle"]
    assert spec.ignore_index is None
    # names agree with the official catId -> category mapping
    assert {lb.categoryId: lb.category for lb in official} == dict(enumerate(spec.names))
    # each colour is that of a label of the category
    for cat_id, info in enumerate(spec.classes):
        assert info.color in {lb.color for lb in official if lb.categoryId == cat_id}


def test_id_to_train_id_matches_official(official):
    table = lt.cityscapes_id_to_train_id()
    assert table.shape == (256,) and table.dtype == np.uint8
    by_id = {lb.id: lb for lb in official if lb.id >= 0}
    for i in range(34):
        assert table[i] == by_id[i].trainId, by_id[i].name
    assert (table[34:] == 255).all()


def test_id_to_category_matches_official(official):
    table = lt.cityscapes_id_to_category()
    assert table.shape == (256,) and table.dtype == np.uint8
    by_id = {lb.id: lb for lb in official if lb.id >= 0}
    for i in range(34):
        assert table[i] == by_id[i].categoryId, by_id[i].name
    assert (table[:7] == 0).all()  # void is a class, not ignored
    assert (table[34:] == 255).all()


def test_lookups_are_fresh_copies():
    a = lt.cityscapes_id_to_train_id()
    a[:] = 0
    assert lt.cityscapes_id_to_train_id()[0] == 255


# --- CARLA ---------------------------------------------------------------------------------------

CARLA = [
    ("None", (0, 0, 0)),
    ("Buildings", (70, 70, 70)),
    ("Fences", (190, 153, 153)),
    ("Other", (250, 170, 160)),
    ("Pedestrians", (220, 20, 60)),
    ("Poles", (153, 153, 153)),
    ("RoadLines", (157, 234, 50)),
    ("Roads", (128, 64, 128)),
    ("Sidewalks", (244, 35, 232)),
    ("Vegetation", (107, 142, 35)),
    ("Vehicles", (0, 0, 142)),
    ("Walls", (102, 102, 156)),
    ("TrafficSigns", (220, 220, 0)),
]


def test_carla_preset():
    spec = get_preset("carla")
    assert spec.names == [n for n, _ in CARLA]
    assert [c.color for c in spec.classes] == [c for _, c in CARLA]
    assert spec.ignore_index is None


def test_carla_reduced_lookup_every_id():
    table = lt.carla_reduced_lookup()
    assert table.shape == (256,) and table.dtype == np.uint8
    expected = {6: 1, 7: 1, 10: 2}  # RoadLines, Roads -> road; Vehicles -> vehicle
    for i in range(13):
        assert table[i] == expected.get(i, 0), CARLA[i][0]
    assert (table[13:] == 255).all()


def test_carla_reduced_preset_order():
    spec = get_preset("carla-reduced")
    assert spec.names == ["other", "road", "vehicle"]
    assert spec.classes[1].color == (128, 64, 128) and spec.classes[2].color == (0, 0, 142)


# --- Oxford-IIIT Pet -----------------------------------------------------------------------------

# (mode, border) -> classes of trimap values (1 pet, 2 background, 3 border)
PETS_CASES = {
    ("binary", "ignore"): (1, 0, 255),
    ("binary", "pet"): (1, 0, 1),
    ("binary", "background"): (1, 0, 0),
    ("trimap", "ignore"): (0, 1, 2),
    ("trimap", "pet"): (0, 1, 2),
    ("trimap", "background"): (0, 1, 2),
}


@pytest.mark.parametrize(("mode", "border"), list(PETS_CASES))
def test_pets_lookup(mode, border):
    table = lt.pets_trimap_lookup(mode, border)
    assert table.shape == (256,) and table.dtype == np.uint16
    assert tuple(table[[1, 2, 3]].tolist()) == PETS_CASES[(mode, border)]
    invalid = [v for v in range(256) if v not in (1, 2, 3)]
    assert (table[invalid] == 256).all()
    assert lt.PETS_INVALID == 256


def test_pets_default_border_is_ignore():
    assert np.array_equal(lt.pets_trimap_lookup("binary"), lt.pets_trimap_lookup("binary", "ignore"))


def test_pets_presets():
    pets = get_preset("pets")
    assert pets.names == ["background", "pet"] and pets.ignore_index == 255
    assert get_preset("pets-trimap").names == ["pet", "background", "border"]


def test_pets_bad_mode_names_choices():
    with pytest.raises(ConfigError, match="binary, trimap"):
        lt.pets_trimap_lookup("quad")


def test_pets_bad_border_names_choices():
    with pytest.raises(ConfigError, match="ignore, pet, background"):
        lt.pets_trimap_lookup("binary", "edge")


# --- registration --------------------------------------------------------------------------------


def test_all_presets_registered_and_binary_untouched():
    for name in (
        "cityscapes",
        "cityscapes-categories",
        "cityscapes-labelids",
        "carla",
        "carla-reduced",
        "pets",
        "pets-trimap",
    ):
        assert name in PRESETS
    assert get_preset("binary").names == ["background", "foreground"]
