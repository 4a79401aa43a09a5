"""Extensions outside pixelwise's source tree: a format, model, loss or backend in a module of your own.

A plugin module registers its entries on import (``@register_model(...)``, ``@register_format(...)``, ...).
pixelwise imports, once and before the CLI reads its registries:

* every module named in the environment variable ``PIXELWISE_PLUGINS`` (comma-separated, importable from
  ``sys.path``: e.g. ``PYTHONPATH=. PIXELWISE_PLUGINS=my_format pixelwise train ...``);
* every entry point of the group ``pixelwise.plugins`` of the installed packages (a package declares
  ``[project.entry-points."pixelwise.plugins"] my_format = "my_package.my_format"``).

A module that fails to import is one error line naming it, never a traceback.

>>> import os
>>> os.environ["PIXELWISE_PLUGINS"] = "json"  # any importable module
>>> load_plugins(force=True)
['json']
>>> del os.environ["PIXELWISE_PLUGINS"]
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

from pixelwise.core.errors import ConfigError

ENV_VAR = "PIXELWISE_PLUGINS"
ENTRY_POINT_GROUP = "pixelwise.plugins"
_loaded: list[str] | None = None


def plugin_modules() -> list[str]:
    """Module names from ``PIXELWISE_PLUGINS`` and the ``pixelwise.plugins`` entry points, in that order."""
    names = [n.strip() for n in os.environ.get(ENV_VAR, "").split(",") if n.strip()]
    names += [ep.value.split(":")[0] for ep in entry_points(group=ENTRY_POINT_GROUP)]
    return list(dict.fromkeys(names))


def load_plugins(force: bool = False) -> list[str]:
    """Import the plugin modules (once per process unless ``force``); returns their names."""
    global _loaded
    if _loaded is not None and not force:
        return _loaded
    names = plugin_modules()
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as e:  # a plugin can fail in any way; the user needs its name and the reason
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ConfigError(f"plugin '{name}' (from {ENV_VAR} or the {ENTRY_POINT_GROUP} entry points) cannot "
                              f"be imported ({type(e).__name__}: {reason}); check its name and PYTHONPATH") from None
    _loaded = names
    return names
