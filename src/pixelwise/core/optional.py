"""Optional dependencies (onnx, openvino, pycocotools, ...): imported on first use, and a missing one is
one error line that says which pip extra installs it.

>>> import_optional("json", extra="none", purpose="reading JSON").dumps([1])
'[1]'
>>> try:
...     import_optional("no_such_module_here", extra="onnx", purpose="ONNX export")
... except ConfigError as e:
...     print(e)
ONNX export needs the 'no_such_module_here' package; pip install 'pixelwise[onnx]'
>>> is_installed("no_such_module_here")
False
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from pixelwise.core.errors import ConfigError


def import_optional(module: str, extra: str, purpose: str, hint: str = "") -> ModuleType:
    """``module`` imported, or ConfigError "<purpose> needs '<module>'; pip install 'pixelwise[<extra>]'<hint>"."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"{purpose} needs the '{module}' package; pip install 'pixelwise[{extra}]'{hint}") from None


def is_installed(module: str) -> bool:
    """True when ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
