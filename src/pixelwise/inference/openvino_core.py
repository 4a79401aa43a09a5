"""The one OpenVINO ``Core`` of the process, shared by the OpenVINO exporter (reading an IR's metadata)
and the OpenVINO backend (compiling it).

A compiled model must not outlive the Core that loaded its plugin: with a throwaway ``Core()`` the
process crashed later, at a random point (SIGSEGV), once the plugin's code had been unloaded. So the
Core is made once and never destroyed.

>>> from pixelwise.core.optional import is_installed
>>> not is_installed("openvino") or openvino_core() is openvino_core()
True
"""

from __future__ import annotations

from typing import Any

from pixelwise.core.optional import import_optional

_CORE: Any = None


def openvino_core(purpose: str = "OpenVINO") -> Any:
    """The process's ``openvino.Core``; without openvino installed, one ConfigError line naming ``purpose``."""
    global _CORE
    if _CORE is None:
        ov = import_optional("openvino", extra="openvino", purpose=purpose)
        _CORE = ov.Core()
    return _CORE
