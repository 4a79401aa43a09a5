"""Reading the YAML files users write (recipes, classes.yaml) with one-line errors naming the file.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "r.yaml")
>>> _ = open(path, "w").write("lr: 0.01\\n")
>>> read_yaml(path, ValueError, "recipe file not found")
{'lr': 0.01}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: str | Path, error: type[Exception], missing: str) -> Any:
    """The parsed file; a missing file raises ``error("<path>: <missing>")``, bad YAML names its first problem."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a text file (YAML is UTF-8 text)") from None
    except yaml.YAMLError as e:
        raise error(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
