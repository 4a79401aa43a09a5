"""The README's tables of formats, models, losses, backends and class presets, generated from the registries.

Each table stands between two marker comments in README.md, which this module rewrites (``make readme``)
or compares (``--check``, exit 1 when a table differs; tests/test_readme_tables.py runs it)::

    python -m pixelwise.cli.readme [--check] [README.md]

A table's text comes from the entries themselves: the first line of a model's, loss's or backend's
docstring, a format's ``description`` and the first paragraph of its ``open`` function's docstring, a
preset's class names. Plugins are not loaded here: the README lists what pixelwise itself ships.

>>> print(markdown_table(["name", "what"], [["a|b", "``<code>`` <split>/"]]))
| name | what |
| --- | --- |
| a\\|b | `<code>` &lt;split&gt;/ |
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from pixelwise.core.errors import ConfigError
from pixelwise.core.files import write_text
from pixelwise.data.formats import FORMATS, list_formats
from pixelwise.data.presets import get_preset, list_presets
from pixelwise.inference.backends import BACKENDS, list_backends
from pixelwise.models.base import init_parameters
from pixelwise.models.registry import MODELS, describe_model, list_models
from pixelwise.training.losses import LOSSES, list_losses

# Options every model takes; the table lists the others.
COMMON_MODEL_OPTIONS = ("num_classes", "in_channels")


def cell(text: str) -> str:
    """Docstring text as one Markdown table cell: one line, reST ````code```` as ```code```, ``|`` escaped,
    and ``<`` ``>`` outside code as entities (else ``<split>`` would read as an HTML tag and vanish)."""
    parts = " ".join(text.replace("``", "`").replace("|", "\\|").split()).split("`")
    for i in range(0, len(parts), 2):  # the even parts are outside code spans
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *([cell(c) for c in row] for row in rows)]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def first_paragraph(doc: str | None) -> str:
    """A docstring's text up to its first blank line, joined into one line."""
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def yaml_value(value: object) -> str:
    """A default as a recipe (YAML) or ``--model-option`` writes it: ``true``, ``null``, ``16``."""
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)


def formats_table() -> str:
    rows = [[f"``{name}``", FORMATS.get(name).description, first_paragraph(FORMATS.get(name).open.__doc__)]
            for name in sorted(list_formats())]
    return markdown_table(["`--format`", "layout", "classes and options"], rows)


def models_table() -> str:
    rows = []
    for name in list_models():
        options = [f"``{key}={yaml_value(p.default)}``" for key, p in init_parameters(MODELS.get(name)).items()
                   if key not in COMMON_MODEL_OPTIONS]
        rows.append([f"``{name}``", describe_model(name), ", ".join(options)])
    return markdown_table(["`--model`", "what", "options (defaults)"], rows)


def losses_table() -> str:
    return markdown_table(["`--loss`", "what"], [[f"``{name}``", LOSSES.describe(name)] for name in list_losses()])


def backends_table() -> str:
    rows = []
    for name in list_backends():
        backend = BACKENDS.get(name)
        if backend.export_format is None:
            runs = "checkpoints"
        else:
            runs = f"{', '.join(f'``{s}``' for s in backend.suffixes())} files; checkpoints after a one-time export"
        rows.append([f"``{name}``", runs + (" (CPU only)" if backend.cpu_only else ""), BACKENDS.describe(name)])
    return markdown_table(["`--backend`", "runs", "what"], rows)


def presets_table() -> str:
    rows = []
    for name in list_presets():
        spec = get_preset(name)
        text = f"{spec.num_classes}: {', '.join(spec.names)}"
        if spec.ignore_index is not None:
            text += f"; mask value {spec.ignore_index} ignored"
        if spec.values is not None:
            text += f"; stored as {', '.join(map(str, spec.values))}"
        rows.append([f"``{name}``", text])
    return markdown_table(["`--classes`", "classes"], rows)


TABLES: dict[str, Callable[[], str]] = {
    "formats": formats_table,
    "models": models_table,
    "losses": losses_table,
    "backends": backends_table,
    "presets": presets_table,
}


def markers(name: str) -> tuple[str, str]:
    return f"<!-- table:{name} -->", f"<!-- /table:{name} -->"


def table_text(text: str, name: str) -> str:
    """What stands between a table's markers in ``text``; missing markers are an error saying what to add."""
    start, end = markers(name)
    _, found, rest = text.partition(start)
    if not found or end not in rest:
        raise ConfigError(f"the README has no '{start}' ... '{end}' markers; add them where the table goes")
    return rest.partition(end)[0]


def update_tables(text: str) -> str:
    """``text`` with every table between its markers replaced by the generated one."""
    for name, make_table in TABLES.items():
        start, end = markers(name)
        text = text.replace(start + table_text(text, name) + end, f"{start}\n{make_table()}\n{end}", 1)
    return text


def stale_tables(old: str, new: str) -> list[str]:
    """The names of the tables that differ between two versions of the README."""
    return [name for name in TABLES if table_text(old, name) != table_text(new, name)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pixelwise.cli.readme", description=__doc__.split("\n")[0])
    parser.add_argument("readme", nargs="?", type=Path, default=Path("README.md"))
    parser.add_argument("--check", action="store_true", help="Only compare; exit 1 when a table is out of date.")
    args = parser.parse_args(argv)
    try:
        old = args.readme.read_text(encoding="utf-8")
        new = update_tables(old)
    except (OSError, ConfigError) as e:
        print(f"error: {args.readme}: {e}", file=sys.stderr)
        return 2
    stale = stale_tables(old, new)
    if args.check:
        if stale:
            print(f"{args.readme}: out of date: {', '.join(stale)}; run `make readme`", file=sys.stderr)
        return 1 if stale else 0
    if stale:
        write_text(args.readme, new)
    print(f"{args.readme}: rewrote {', '.join(stale)}" if stale else f"{args.readme}: tables up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
