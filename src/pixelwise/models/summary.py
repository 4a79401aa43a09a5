"""A model summary in torchinfo's style, built on PyTorch alone: layer table, parameters and GFLOPs.

One forward pass on zeros (eval mode, no grad) records every module call with forward hooks, in
execution order, indented by call depth. FLOPs come from :class:`torch.utils.flop_counter.FlopCounterMode`
during the same pass; it counts convolutions (grouped and transposed included), linear layers and
matmuls on the aten level, as 2 FLOPs per multiply-add. Norms, activations, pooling and interpolation
are not counted (the usual convention, as fvcore and torchinfo).

>>> import torch.nn as nn
>>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))
>>> summary = summarize_model(net, size=(10, 10))
>>> summary.total_params, summary.flops  # 8*3*9 + 8 + 2*8 + 2 params; 2 * (8*3*9 + 2*8) * 100 FLOPs
(242, 46400)
>>> print(summary.format_table())
Layer (type:depth-idx)  Output Shape    Param #
===============================================
Sequential              [1, 2, 10, 10]       --
├─Conv2d: 1-1           [1, 8, 10, 10]      224
├─ReLU: 1-2             [1, 8, 10, 10]       --
└─Conv2d: 1-3           [1, 2, 10, 10]       18
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

if TYPE_CHECKING:  # imported where it counts: its import pulls in triton, slowing every command's start-up
    from torch.utils.flop_counter import FlopCounterMode

DEFAULT_DEPTH = 3  # torchinfo's default


@dataclass
class LayerRow:
    """One module call: its place in the call tree, its output shape and the parameters it adds."""

    type_name: str
    depth: int  # 0 for the model itself
    index: int  # 1-based position among the calls of its parent
    parent: int | None  # row number of the calling module
    output_shape: str
    params: int | None = None  # None: the module was shown before (a repeated call)
    is_last: bool = True  # the last visible call of its parent (draws └─ instead of ├─)


@dataclass
class ModelSummary:
    input_shape: tuple[int, ...]
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    flops: int  # 2 x multiply-adds of conv / linear / matmul
    param_bytes: int
    depth: int = DEFAULT_DEPTH

    @property
    def gflops(self) -> float:
        return self.flops / 1e9

    @property
    def input_text(self) -> str:
        return "x".join(str(n) for n in self.input_shape)

    def format_table(self) -> str:
        header = ("Layer (type:depth-idx)", "Output Shape", "Param #")
        lines = [(self.tree_label(i), row.output_shape, format_params(row.params)) for i, row in enumerate(self.rows)]
        widths = [max(len(cells[c]) for cells in [header, *lines]) for c in range(3)]
        rule = "=" * (sum(widths) + 4)

        def line(cells: tuple[str, str, str]) -> str:
            return f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  {cells[2]:>{widths[2]}}"

        return "\n".join([line(header), rule, *(line(cells) for cells in lines)])

    def format_totals(self) -> str:
        return "\n".join([
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.total_params - self.trainable_params:,}",
            f"GFLOPs (2 x multiply-adds of conv/linear/matmul) at {self.input_text}: {self.gflops:.2f}",
            f"Params size (MB): {self.param_bytes / 1e6:.2f}",
        ])

    def format(self) -> str:
        table = self.format_table()
        rule = "=" * len(table.splitlines()[1])
        return f"{table}\n{rule}\n{self.format_totals()}\n{rule}"

    __str__ = format

    def tree_label(self, i: int) -> str:
        """``├─Conv2d: 2-3`` with a ``│`` for every ancestor that has more calls below (as ``tree`` draws)."""
        row = self.rows[i]
        if row.parent is None:
            return row.type_name
        prefix = ""
        ancestor = self.rows[row.parent]
        while ancestor.parent is not None:
            prefix = ("    " if ancestor.is_last else "│   ") + prefix
            ancestor = self.rows[ancestor.parent]
        return f"{prefix}{'└─' if row.is_last else '├─'}{row.type_name}: {row.depth}-{row.index}"


def format_params(params: int | None) -> str:
    if params is None:
        return "(recursive)"  # torchinfo's mark for a module called again; its parameters were counted once
    return f"{params:,}" if params else "--"


def summarize_model(model: nn.Module, size: tuple[int, int] = (256, 256), in_channels: int = 3,
                    depth: int = DEFAULT_DEPTH) -> ModelSummary:
    """Run ``model`` once on zeros of ``1 x in_channels x H x W`` and summarise it.

    The table shows calls up to ``depth`` levels below the model; a row at the last shown level counts
    the parameters of everything below it. Every parameter is counted once, on the first row that owns
    it, so the ``Param #`` column adds up to the total. The totals always cover the whole model.
    """
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    x = torch.zeros(1, in_channels, *size, device=device, dtype=dtype)

    calls, modules, counter = record_calls(model, x)
    rows = visible_rows(calls, modules, depth)
    params = {id(p): p for p in model.parameters()}.values()  # tied weights once
    return ModelSummary(
        input_shape=tuple(x.shape),
        rows=rows,
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        flops=int(counter.get_total_flops()),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        depth=depth,
    )


def record_calls(model: nn.Module, x: torch.Tensor) -> tuple[list[LayerRow], list[nn.Module], FlopCounterMode]:
    """Every module call of one forward pass as a row (in call order, params unset), the module of each
    call, and the FLOP counter that watched the pass."""
    calls: list[LayerRow] = []
    modules: list[nn.Module] = []
    stack: list[int] = []  # rows of the calls still running: the last one is the caller of the next
    children: dict[int | None, int] = {}

    def before(module: nn.Module, args: Any) -> None:
        parent = stack[-1] if stack else None
        children[parent] = children.get(parent, 0) + 1
        calls.append(LayerRow(type(module).__name__, len(stack), children[parent], parent, "--"))
        modules.append(module)
        stack.append(len(calls) - 1)

    def after(module: nn.Module, args: Any, output: Any) -> None:
        calls[stack.pop()].output_shape = format_shapes(output)

    # modules() yields a shared module once, so each call is seen once even if it is reachable twice.
    handles = [h for m in model.modules()
               for h in (m.register_forward_pre_hook(before), m.register_forward_hook(after))]
    from torch.utils.flop_counter import FlopCounterMode  # here: see the import note at the top

    was_training = model.training
    try:
        model.eval()  # dropout off, batch norm on running stats: the model as it predicts
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return calls, modules, counter


def visible_rows(calls: list[LayerRow], modules: list[nn.Module], depth: int) -> list[LayerRow]:
    """The calls down to ``depth``, renumbered, each with the parameters it adds to the rows above it."""
    keep = [i for i, row in enumerate(calls) if row.depth <= depth]
    new_number = {old: new for new, old in enumerate(keep)}
    has_children = {row.parent for row in calls}
    seen_params: set[int] = set()
    seen_modules: set[int] = set()
    rows = []
    for i in keep:
        row, module = calls[i], modules[i]
        parent = new_number[row.parent] if row.parent is not None else None
        out = LayerRow(row.type_name, row.depth, row.index, parent, row.output_shape)
        if id(module) in seen_modules:
            # Called again: its weights were counted at the first call. A shared pool or activation is just --.
            out.params = None if next(module.parameters(), None) is not None else 0
        else:
            seen_modules.add(id(module))
            # The last shown level stands for everything below it; a module whose children never ran
            # (weights used functionally) counts them too, so no parameter falls between the rows.
            recurse = row.depth == depth or i not in has_children
            out.params = count_new_params(module, recurse, seen_params)
        rows.append(out)
    last_child = {row.parent: n for n, row in enumerate(rows)}
    for n, row in enumerate(rows):
        row.is_last = last_child[row.parent] == n
    return rows


def count_new_params(module: nn.Module, recurse: bool, seen: set[int]) -> int:
    """Parameters of ``module`` not counted on an earlier row (shared or tied ones), marking them seen."""
    count = 0
    for p in module.parameters(recurse=recurse):
        if id(p) not in seen:
            seen.add(id(p))
            count += p.numel()
    return count


def format_shapes(output: Any) -> str:
    """``[1, 16, 64, 96]`` for a tensor; the first and last shapes and a count for several."""
    shapes = [list(t.shape) for t in iter_tensors(output)]
    if not shapes:
        return "--"
    if len(shapes) <= 2:
        return ", ".join(str(s) for s in shapes)
    return f"{shapes[0]} ... {shapes[-1]} ({len(shapes)} tensors)"


def iter_tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from iter_tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from iter_tensors(item)
