"""Label tables of public datasets whose masks need a mapping before training.

Importing this module registers the class presets ``cityscapes``, ``cityscapes-categories``,
``cityscapes-labelids``, ``carla``, ``carla-reduced``, ``pets`` and ``pets-trimap``; the lookup
functions turn the values stored on disk into the class ids of those presets (``table[mask]``).

- **Cityscapes**: ``*_labelIds.png`` hold label ids 0..33; training uses the 19 *train ids*
  (everything else ignored as 255) or the 8 categories.
- **CARLA 0.8** (the Lyft-Udacity perception challenge): the red channel of a ``CameraSeg`` PNG holds
  one of 13 ids; the challenge reduces them to road / vehicle / other.
- **Oxford-IIIT Pet**: trimaps hold 1 = pet, 2 = background, 3 = border.

>>> import numpy as np
>>> labelids = np.array([[7, 26], [0, 33]], dtype=np.uint8)  # road, car, unlabeled, bicycle
>>> cityscapes_id_to_train_id()[labelids].tolist()
[[0, 13], [255, 18]]
>>> cityscapes_id_to_category()[labelids].tolist()
[[1, 7], [0, 7]]
>>> carla_reduced_lookup()[np.array([6, 7, 10, 1])].tolist()  # RoadLines count as road
[1, 1, 2, 0]
>>> pets_trimap_lookup("binary")[np.array([1, 2, 3, 0])].tolist()  # 0 is no trimap value: flagged
[1, 0, 255, 256]
>>> from pixelwise.data.presets import get_preset
>>> get_preset("cityscapes").num_classes, get_preset("cityscapes").names[:3]
(19, ['road', 'sidewalk', 'building'])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pixelwise.core.constants import MASK_IGNORE, UNKNOWN_VALUE
from pixelwise.core.errors import ConfigError
from pixelwise.data.classes import ClassSpec, register_preset

__all__ = [
    "CARLA_CLASSES",
    "CARLA_REDUCED_NAMES",
    "CITYSCAPES_CATEGORIES",
    "CITYSCAPES_LABELS",
    "IGNORE",
    "PETS_BORDER_CHOICES",
    "PETS_INVALID",
    "PETS_MODES",
    "CityscapesLabel",
    "carla_reduced_lookup",
    "cityscapes_id_to_category",
    "cityscapes_id_to_train_id",
    "pets_trimap_lookup",
]

# The pipeline's uint8 "ignore" value (see classes.MAX_CLASSES); lookups use it for "no class".
IGNORE = MASK_IGNORE

Color = tuple[int, int, int]


# ---------------------------------------------------------------------------------------------------
# Cityscapes
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CityscapesLabel:
    """One row of the official Cityscapes label table (field names as in ``cityscapesscripts``)."""

    name: str
    id: int  # the value in *_labelIds.png; -1 for 'license plate', which never appears in those files
    trainId: int  # camelCase: the official field names, so rows compare 1:1 with labels.py
    category: str
    categoryId: int  # the labels.py header comment calls this column 'catId'; see the alias below
    hasInstances: bool
    ignoreInEval: bool
    color: Color

    @property
    def catId(self) -> int:  # the short name in labels.py's table header
        return self.categoryId


_L = CityscapesLabel

# Copied by hand from cityscapesscripts/helpers/labels.py (cityscapesScripts 2.3.0) rather than imported:
# that package drags in matplotlib/requests/pyquaternion and is only a test-time reference
# (tests/test_label_tables.py compares every field of every row with it).
#
# Equal colours in the official table, which nearest-colour decoding of colour composites
# (pixelwise.data.colors) cannot tell apart — expected, since they are ignored in evaluation anyway:
#   - ids 0..4 (unlabeled, ego vehicle, rectification border, out of roi, static) are all (0, 0, 0);
#     ids 5 'dynamic' and 6 'ground' have their own colours;
#   - 'pole' (17) and 'polegroup' (18) are both (153, 153, 153);
#   - 'license plate' (-1) reuses the colour of 'car' (0, 0, 142).
CITYSCAPES_LABELS: tuple[CityscapesLabel, ...] = (
    #  name                     id  trainId  category     categoryId hasInst ignoreInEval  color
    _L("unlabeled",              0,     255, "void",             0, False,  True,  (0, 0, 0)),
    _L("ego vehicle",            1,     255, "void",             0, False,  True,  (0, 0, 0)),
    _L("rectification border",   2,     255, "void",             0, False,  True,  (0, 0, 0)),
    _L("out of roi",             3,     255, "void",             0, False,  True,  (0, 0, 0)),
    _L("static",                 4,     255, "void",             0, False,  True,  (0, 0, 0)),
    _L("dynamic",                5,     255, "void",             0, False,  True,  (111, 74, 0)),
    _L("ground",                 6,     255, "void",             0, False,  True,  (81, 0, 81)),
    _L("road",                   7,       0, "flat",             1, False,  False, (128, 64, 128)),
    _L("sidewalk",               8,       1, "flat",             1, False,  False, (244, 35, 232)),
    _L("parking",                9,     255, "flat",             1, False,  True,  (250, 170, 160)),
    _L("rail track",            10,     255, "flat",             1, False,  True,  (230, 150, 140)),
    _L("building",              11,       2, "construction",     2, False,  False, (70, 70, 70)),
    _L("wall",                  12,       3, "construction",     2, False,  False, (102, 102, 156)),
    _L("fence",                 13,       4, "construction",     2, False,  False, (190, 153, 153)),
    _L("guard rail",            14,     255, "construction",     2, False,  True,  (180, 165, 180)),
    _L("bridge",                15,     255, "construction",     2, False,  True,  (150, 100, 100)),
    _L("tunnel",                16,     255, "construction",     2, False,  True,  (150, 120, 90)),
    _L("pole",                  17,       5, "object",           3, False,  False, (153, 153, 153)),
    _L("polegroup",             18,     255, "object",           3, False,  True,  (153, 153, 153)),
    _L("traffic light",         19,       6, "object",           3, False,  False, (250, 170, 30)),
    _L("traffic sign",          20,       7, "object",           3, False,  False, (220, 220, 0)),
    _L("vegetation",            21,       8, "nature",           4, False,  False, (107, 142, 35)),
    _L("terrain",               22,       9, "nature",           4, False,  False, (152, 251, 152)),
    _L("sky",                   23,      10, "sky",              5, False,  False, (70, 130, 180)),
    _L("person",                24,      11, "human",            6, True,   False, (220, 20, 60)),
    _L("rider",                 25,      12, "human",            6, True,   False, (255, 0, 0)),
    _L("car",                   26,      13, "vehicle",          7, True,   False, (0, 0, 142)),
    _L("truck",                 27,      14, "vehicle",          7, True,   False, (0, 0, 70)),
    _L("bus",                   28,      15, "vehicle",          7, True,   False, (0, 60, 100)),
    _L("caravan",               29,     255, "vehicle",          7, True,   True,  (0, 0, 90)),
    _L("trailer",               30,     255, "vehicle",          7, True,   True,  (0, 0, 110)),
    _L("train",                 31,      16, "vehicle",          7, True,   False, (0, 80, 100)),
    _L("motorcycle",            32,      17, "vehicle",          7, True,   False, (0, 0, 230)),
    _L("bicycle",               33,      18, "vehicle",          7, True,   False, (119, 11, 32)),
    _L("license plate",         -1,      -1, "vehicle",          7, False,  True,  (0, 0, 142)),
)  # fmt: skip

del _L

# Category names indexed by catId.
CITYSCAPES_CATEGORIES: tuple[str, ...] = (
    "void", "flat", "construction", "object", "nature", "sky", "human", "vehicle",
)  # fmt: skip

# Rows that can occur in *_labelIds.png: every id except 'license plate' (-1), which exists only for
# instance-level tooling; id k is row k.
_CITYSCAPES_BY_ID: tuple[CityscapesLabel, ...] = tuple(lb for lb in CITYSCAPES_LABELS if lb.id >= 0)


def cityscapes_id_to_train_id() -> np.ndarray:
    """Lookup ``(256,) uint8``: label id -> train id (0..18); ignored and unknown ids -> 255."""
    table = np.full(256, IGNORE, dtype=np.uint8)
    for lb in _CITYSCAPES_BY_ID:
        table[lb.id] = lb.trainId  # ignored labels already carry trainId 255
    return table


def cityscapes_id_to_category() -> np.ndarray:
    """Lookup ``(256,) uint8``: label id -> catId (0..7); ids outside 0..33 -> 255.

    'void' (catId 0, ids 0..6) is a class here, not ignored: the ``cityscapes-categories`` preset has all
    8 categories. (The official category benchmark scores only the 7 non-void ones; to reproduce it,
    treat category 0 as ignore.)
    """
    table = np.full(256, IGNORE, dtype=np.uint8)
    for lb in _CITYSCAPES_BY_ID:
        table[lb.id] = lb.categoryId
    return table


def _category_color(cat_id: int) -> Color:
    # A category is drawn in the colour of its first evaluated label (flat -> road, construction ->
    # building, object -> pole, nature -> vegetation, sky -> sky, human -> person, vehicle -> car), so
    # category maps look like train-id maps; 'void' has no evaluated label and takes 'unlabeled' (black).
    rows = [lb for lb in _CITYSCAPES_BY_ID if lb.categoryId == cat_id]
    evaluated = [lb for lb in rows if not lb.ignoreInEval]
    return (evaluated or rows)[0].color


_CITYSCAPES_TRAIN = sorted((lb for lb in _CITYSCAPES_BY_ID if lb.trainId != IGNORE), key=lambda lb: lb.trainId)

register_preset(
    "cityscapes",
    ClassSpec.from_lists([lb.name for lb in _CITYSCAPES_TRAIN], [lb.color for lb in _CITYSCAPES_TRAIN], IGNORE),
)
register_preset(
    "cityscapes-categories",
    ClassSpec.from_lists(list(CITYSCAPES_CATEGORIES), [_category_color(i) for i in range(len(CITYSCAPES_CATEGORIES))]),
)
# Raw label ids as classes (no ignore): ids 0..4 share black and 17/18 share grey, see the table comment.
register_preset(
    "cityscapes-labelids",
    ClassSpec.from_lists([lb.name for lb in _CITYSCAPES_BY_ID], [lb.color for lb in _CITYSCAPES_BY_ID]),
)


# ---------------------------------------------------------------------------------------------------
# CARLA 0.8 / Lyft-Udacity challenge
# ---------------------------------------------------------------------------------------------------

# (name, colour) for ids 0..12, as in CARLA 0.8's documentation of its semantic segmentation camera.
# The id is the red channel of a CameraSeg PNG; the colours are only for display.
CARLA_CLASSES: tuple[tuple[str, Color], ...] = (
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
)

# Reduced classes in this order so that 0 stays "nothing of interest" (like CARLA's id 0) and the two
# scored classes follow in the order the challenge names them: 0 other, 1 road, 2 vehicle.
CARLA_REDUCED_NAMES: tuple[str, ...] = ("other", "road", "vehicle")
_CARLA_ROAD_IDS = (6, 7)  # RoadLines + Roads: the challenge scores lane markings as road
_CARLA_VEHICLE_IDS = (10,)


def carla_reduced_lookup() -> np.ndarray:
    """Lookup ``(256,) uint8``: CARLA id -> 0 other / 1 road / 2 vehicle; ids >= 13 -> 255.

    Only the id mapping: the challenge also relabels the ego car's bonnet (vehicle pixels in the bottom
    rows of each 800x600 frame) as other, which depends on position and is left to the caller.
    """
    table = np.full(256, IGNORE, dtype=np.uint8)
    table[: len(CARLA_CLASSES)] = 0
    table[list(_CARLA_ROAD_IDS)] = 1
    table[list(_CARLA_VEHICLE_IDS)] = 2
    return table


# No ignore_index: an id the lookup maps to 255 is a data error to report, not a pixel to skip.
register_preset("carla", ClassSpec.from_lists([n for n, _ in CARLA_CLASSES], [c for _, c in CARLA_CLASSES]))
register_preset(
    "carla-reduced",
    ClassSpec.from_lists(list(CARLA_REDUCED_NAMES), [(0, 0, 0), CARLA_CLASSES[7][1], CARLA_CLASSES[10][1]]),
)


# ---------------------------------------------------------------------------------------------------
# Oxford-IIIT Pet trimaps
# ---------------------------------------------------------------------------------------------------

PETS_MODES: tuple[str, ...] = ("binary", "trimap")
PETS_BORDER_CHOICES: tuple[str, ...] = ("ignore", "pet", "background")
# Marks a byte that is no trimap value (only 1, 2, 3 are): one past uint8 so it can never be a class id.
PETS_INVALID = UNKNOWN_VALUE
_PET, _BACKGROUND, _BORDER = 1, 2, 3  # trimap values on disk


def pets_trimap_lookup(mode: str, border: str = "ignore") -> np.ndarray:
    """Lookup ``(256,) uint16`` from trimap values to class ids; bytes other than 1..3 -> 256.

    ``mode="binary"``: classes [background, pet] (preset ``pets``); the border band becomes 255 (ignored,
    the usual choice: it is the uncertain outline), 1 (``border="pet"``) or 0 (``border="background"``).
    ``mode="trimap"``: classes [pet, background, border] = trimap value - 1 (preset ``pets-trimap``);
    ``border`` is still validated but has no effect.

    The table is uint16 so invalid bytes are distinguishable from every uint8 class id and from 255; cast
    to uint8 after checking ``(table[mask] == PETS_INVALID).any()``.
    """
    if mode not in PETS_MODES:
        raise ConfigError(f"unknown pets trimap mode '{mode}'; choose one of {', '.join(PETS_MODES)}")
    if border not in PETS_BORDER_CHOICES:
        raise ConfigError(f"unknown pets border handling '{border}'; choose one of {', '.join(PETS_BORDER_CHOICES)}")
    table = np.full(256, PETS_INVALID, dtype=np.uint16)
    if mode == "trimap":
        table[[_PET, _BACKGROUND, _BORDER]] = [0, 1, 2]
    else:
        table[_PET] = 1
        table[_BACKGROUND] = 0
        table[_BORDER] = {"ignore": IGNORE, "pet": 1, "background": 0}[border]
    return table


# Colours: black background and white pet, matching the built-in ``binary`` preset; border mid-grey.
register_preset("pets", ClassSpec.from_lists(["background", "pet"], [(0, 0, 0), (255, 255, 255)], IGNORE))
register_preset(
    "pets-trimap",
    ClassSpec.from_lists(["pet", "background", "border"], [(255, 255, 255), (0, 0, 0), (128, 128, 128)]),
)
