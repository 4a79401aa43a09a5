"""OpenVINO export: OpenVINO's own PyTorch converter where it gives PyTorch's logits, the ONNX route otherwise;
every registered model, dynamic batch/height/width, the same logits as PyTorch."""

from __future__ import annotations

import pytest
import torch

import pixelwise
from pixelwise.data.presets import get_preset
from pixelwise.models.checkpoint import CheckpointMeta
from pixelwise.testing import MODEL_VARIANTS as VARIANTS

ov = pytest.importorskip("openvino", reason="pip install 'pixelwise[openvino]'")
pytest.importorskip("onnxscript", reason="pip install 'pixelwise[onnx]'")

from pixelwise.inference.compare import compare_with_runtime  # noqa: E402
from pixelwise.inference.export import export_openvino, read_openvino_meta  # noqa: E402
from pixelwise.inference.export.openvino_ir import convert_traced  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs", VARIANTS, ids=lambda v: str(v))
def test_every_model_exports_to_openvino_and_matches_pytorch(name, kwargs, tmp_path):
    torch.manual_seed(0)
    model = pixelwise.create_model(name, num_classes=3, **kwargs).eval()
    meta = CheckpointMeta.for_model(model, get_preset("binary"), input_size=(64, 96))
    path = export_openvino(model, meta, tmp_path / "m.xml")
    assert read_openvino_meta(path).model == name
    # Sizes other than the traced 2x3x64x96: odd ones that need padding, another batch, a tall one.
    for shape in [(1, 3, 67, 93), (3, 3, 40, 52), (1, 3, 130, 33)]:
        assert compare_with_runtime(model, path, shape) < 1e-4, shape
    compiled = ov.Core().compile_model(str(path), "CPU")
    assert compiled.input(0).get_any_name() == "image" and compiled.output(0).get_any_name() == "logits"


def test_the_traced_route_is_taken_where_it_is_right():
    torch.manual_seed(0)
    unet = pixelwise.create_model("unet", num_classes=3, base_filters=4, depth=3).eval()
    assert convert_traced(ov, unet) is not None  # the cheap route
    segnet = pixelwise.create_model("segnet", num_classes=3, base_filters=8).eval()
    assert convert_traced(ov, segnet) is None  # max-unpooling cannot be traced: the ONNX route


def test_a_traced_graph_that_differs_from_pytorch_is_refused(monkeypatch):
    unet = pixelwise.create_model("unet", num_classes=3, base_filters=4, depth=3).eval()
    traced = convert_traced(ov, unet)
    assert traced is not None

    class Other(torch.nn.Module):  # stands for a trace that froze a shape: other logits at other sizes
        def __init__(self):
            super().__init__()
            self.inner = unet

        def forward(self, x):
            return self.inner(x) + 1.0

    monkeypatch.setattr(ov, "convert_model", lambda *args, **kwargs: traced)  # the converter returns the old graph
    assert convert_traced(ov, Other().eval()) is None
