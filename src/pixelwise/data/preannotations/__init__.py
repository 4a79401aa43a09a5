"""Pre-annotation writers (``predict --to cvat|label-studio|coco``); see :mod:`.base`.

Importing this package imports every module in it, so a new writer is one new file.
"""

from __future__ import annotations

import importlib
import pkgutil

from pixelwise.data.preannotations.base import (
    PREANNOTATION_WRITERS,
    PreAnnotationWriter,
    create_preannotation_writer,
    list_preannotation_formats,
    register_preannotation_writer,
)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["PREANNOTATION_WRITERS", "PreAnnotationWriter", "create_preannotation_writer",
           "list_preannotation_formats", "register_preannotation_writer"]
