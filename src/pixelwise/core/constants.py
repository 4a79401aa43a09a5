"""The marker values of the pipeline, named once.

Masks travel as uint8 class ids; 255 there means "ignore this pixel" (so at most 255 classes). The
loss and the metrics take int64 targets in which the ignore marker is -1, out of every class's range,
so that ``cross_entropy(ignore_index=-1)`` and ``bincount`` can skip it without a lookup. Tables that
map stored mask values to class ids use 256, a value no uint8 id can take, for "not defined".

>>> MASK_IGNORE, TARGET_IGNORE, UNKNOWN_VALUE
(255, -1, 256)
"""

MASK_IGNORE = 255  # ignored pixel in a uint8 class-id mask
MAX_CLASSES = MASK_IGNORE  # ids 0..254: the ignore marker must stay free
TARGET_IGNORE = -1  # ignored pixel in the int64 targets of losses and metrics
UNKNOWN_VALUE = 256  # a stored mask value a lookup table does not define (an error naming the file)

# Colour masks: a pixel farther than this (Euclidean RGB distance) from every palette colour is ignored
# and counted. 30 covers JPEG's smearing of saturated colours at quality >= 75 while keeping palettes
# whose colours are 40+ apart (Cityscapes', CamVid's) unambiguous.
COLOR_TOLERANCE = 30.0

# ImageNet statistics: pretrained encoders expect inputs normalised with them, and scratch models
# train as well with them as with per-dataset ones.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
