"""Tests for pixelwise.training.losses: ignored pixels, class weights, Dice extremes and building by name."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pixelwise.core.errors import ConfigError
from pixelwise.core.registry import Registry
from pixelwise.training.losses import LOSSES, SumLoss, build_loss, list_losses, register_loss
from pixelwise.training.losses import base as losses_base
from pixelwise.training.losses.ce import CrossEntropyLoss
from pixelwise.training.losses.dice import DiceLoss


def batch(seed: int = 0, n: int = 2, c: int = 3, h: int = 4, w: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, h, w, generator=gen)
    target = torch.randint(0, c, (n, h, w), generator=gen)
    target[0, 0, :3] = -1
    target[-1, 2:, 4] = -1
    return logits, target


def confident(target: torch.Tensor, num_classes: int, scale: float = 30.0) -> torch.Tensor:
    """Logits that put (almost) all probability on ``target``'s class at every pixel."""
    return F.one_hot(target.clamp(min=0), num_classes).permute(0, 3, 1, 2).float() * scale


def test_ce_ignores_minus_one_pixels():
    logits, target = batch()
    valid = target >= 0
    flat_logits = logits.permute(0, 2, 3, 1)[valid]  # (P, C) of the valid pixels only
    expected = F.cross_entropy(flat_logits, target[valid])
    assert float(CrossEntropyLoss()(logits, target)) == pytest.approx(float(expected), rel=1e-6)


def test_ce_value_does_not_depend_on_logits_at_ignored_pixels():
    logits, target = batch()
    changed = logits.clone()
    changed[0, :, 0, :3] = torch.tensor([100.0, -100.0, 0.0])[:, None]
    loss = CrossEntropyLoss()
    assert float(loss(changed, target)) == pytest.approx(float(loss(logits, target)), rel=1e-6)


def test_ce_class_weights_match_functional():
    logits, target = batch(seed=1)
    weights = [0.2, 1.0, 3.0]
    expected = F.cross_entropy(logits, target, weight=torch.tensor(weights), ignore_index=-1)
    unweighted = F.cross_entropy(logits, target, ignore_index=-1)
    got = CrossEntropyLoss(weights)(logits, target)
    assert float(got) == pytest.approx(float(expected), rel=1e-6)
    assert abs(float(got) - float(unweighted)) > 1e-3


def test_ce_accepts_half_logits():
    logits, target = batch(seed=2)
    got = CrossEntropyLoss()(logits.half(), target)
    assert got.dtype == torch.float32
    expected = F.cross_entropy(logits.half().float(), target, ignore_index=-1)
    assert float(got) == pytest.approx(float(expected), rel=1e-6)


def test_dice_perfect_prediction_is_near_zero():
    _, target = batch()
    target = target.clamp(min=0)
    loss = DiceLoss()(confident(target, 3), target)
    assert float(loss) == pytest.approx(0.0, abs=1e-5)


def test_dice_wrong_prediction_is_near_one():
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    wrong = torch.ones(1, 8, 8, dtype=torch.long)
    loss = DiceLoss()(confident(wrong, 2), target)
    # only class 0 is in the truth: 1 - (2*0 + 1) / (0 + 64 + 1)
    assert float(loss) == pytest.approx(1 - 1 / 65, abs=1e-5)
    assert float(loss) > 0.95


def test_dice_hand_computed_uniform_prediction():
    # uniform probabilities 1/2 everywhere, truth: 3 pixels of class 0 and 1 of class 1
    target = torch.tensor([[[0, 0], [0, 1]]])
    logits = torch.zeros(1, 2, 2, 2)
    dice0 = (2 * 1.5 + 1) / (2 + 3 + 1)
    dice1 = (2 * 0.5 + 1) / (2 + 1 + 1)
    expected = 1 - (dice0 + dice1) / 2
    assert float(DiceLoss()(logits, target)) == pytest.approx(expected, rel=1e-6)


def test_dice_ignores_minus_one_pixels():
    logits, target = batch(seed=3, n=1, w=6)
    target[0, :, 4:] = -1
    full = DiceLoss()(logits, target)
    cropped = DiceLoss()(logits[..., :4], target[..., :4])
    assert float(full) == pytest.approx(float(cropped), rel=1e-6)
    # and what the logits say at ignored pixels does not matter
    changed = logits.clone()
    changed[..., 4:] = torch.randn(1, 3, 4, 2) * 10
    assert float(DiceLoss()(changed, target)) == pytest.approx(float(full), rel=1e-6)


def test_build_single_losses():
    assert isinstance(build_loss("ce", 3), CrossEntropyLoss)
    assert isinstance(build_loss(" dice ", 3), DiceLoss)


def test_build_ce_plus_dice_is_sum():
    logits, target = batch(seed=4)
    loss = build_loss("ce+dice", 3)
    assert isinstance(loss, SumLoss)
    expected = CrossEntropyLoss()(logits, target) + DiceLoss()(logits, target)
    assert float(loss(logits, target)) == pytest.approx(float(expected), rel=1e-6)


def test_build_passes_class_weights_to_ce():
    logits, target = batch(seed=5)
    weights = [1.0, 0.0, 2.0]
    loss = build_loss("ce + dice", 3, class_weights=weights)
    expected = (F.cross_entropy(logits, target, weight=torch.tensor(weights), ignore_index=-1)
                + DiceLoss()(logits, target))
    assert float(loss(logits, target)) == pytest.approx(float(expected), rel=1e-6)


def test_unknown_loss_is_config_error():
    with pytest.raises(ConfigError, match=r"unknown loss 'focal'"):
        build_loss("ce+focal", 3)


def test_wrong_length_class_weights_is_config_error():
    with pytest.raises(ConfigError, match=r"class_weights has 2 values for 3 classes"):
        build_loss("ce", 3, class_weights=[1.0, 2.0])


def test_each_module_of_the_package_registers_its_loss():
    assert list_losses()[:2] == ["ce", "dice"]
    assert LOSSES.get("ce") is CrossEntropyLoss and LOSSES.get("dice") is DiceLoss
    assert LOSSES.describe("dice").startswith("Soft multiclass Dice")


def test_build_loss_passes_each_loss_what_its_constructor_takes(monkeypatch):
    monkeypatch.setattr(losses_base, "LOSSES", Registry("loss"))  # a registry of this test's own

    @register_loss("takes_both")
    class TakesBoth(torch.nn.Module):
        def __init__(self, num_classes: int, class_weights: list[float] | None = None) -> None:
            super().__init__()
            self.num_classes, self.class_weights = num_classes, class_weights

    @register_loss("takes_none")
    class TakesNone(torch.nn.Module):
        def __init__(self, scale: float = 2.0) -> None:
            super().__init__()
            self.scale = scale

    loss = build_loss("takes_both+takes_none", 3, class_weights=[1.0, 2.0, 3.0])
    both, none = loss.losses
    assert (both.num_classes, both.class_weights, none.scale) == (3, [1.0, 2.0, 3.0], 2.0)
    assert build_loss("takes_both", 4).class_weights is None
    with pytest.raises(ConfigError, match="unknown loss 'ce'; choose one of takes_both, takes_none"):
        build_loss("ce", 3)  # build_loss reads the registry, not a list of its own


@pytest.mark.parametrize("name", list_losses())
def test_every_loss_ignores_ignored_pixels_and_survives_an_all_ignored_batch(name):
    loss = build_loss(name, num_classes=3)
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    target = torch.randint(0, 3, (2, 8, 8))
    target[:, :4] = -1
    changed = logits.detach().clone()
    changed[:, :, :4] += torch.randn(2, 3, 4, 8) * 5
    assert torch.allclose(loss(logits, target), loss(changed, target), atol=1e-5)
    loss(logits, target).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    empty = loss(logits, torch.full((2, 8, 8), -1))
    assert torch.isfinite(empty)


def test_lovasz_of_hard_predictions_is_the_jaccard_loss():
    """For (near) one-hot probabilities the Lovász extension equals 1 - IoU, per class, averaged."""
    from pixelwise.training.losses.lovasz import LovaszSoftmaxLoss

    target = torch.tensor([[[0, 0, 1, 1], [0, 1, 1, 1]]])
    predicted = torch.tensor([[[0, 1, 1, 1], [0, 0, 1, 1]]])
    logits = torch.nn.functional.one_hot(predicted, 2).permute(0, 3, 1, 2).float() * 50
    ious = []
    for c in (0, 1):
        inter = ((target == c) & (predicted == c)).sum().item()
        union = ((target == c) | (predicted == c)).sum().item()
        ious.append(inter / union)
    assert float(LovaszSoftmaxLoss()(logits, target)) == pytest.approx(1 - sum(ious) / 2, abs=1e-4)


def _lovasz_one_class_at_a_time(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's reference form: a loop over the present classes, each sorted on its own."""
    probs = logits.softmax(dim=1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
    labels = target.reshape(-1)
    probs, labels = probs[labels != -1], labels[labels != -1]
    losses = []
    for c in labels.unique().tolist():
        truth = (labels == c).float()
        errors, order = (truth - probs[:, c]).abs().sort(descending=True)
        truth = truth[order]
        jaccard = 1 - (truth.sum() - truth.cumsum(0)) / (truth.sum() + (1 - truth).cumsum(0))
        jaccard[1:] = jaccard[1:] - jaccard[:-1].clone()
        losses.append(torch.dot(errors, jaccard))
    return torch.stack(losses).mean()


def test_lovasz_batched_over_classes_equals_the_per_class_loop():
    """All classes sorted in one batch give the reference's value and gradient (classes 2 and 4 absent)."""
    from pixelwise.training.losses.lovasz import LovaszSoftmaxLoss

    torch.manual_seed(0)
    target = torch.randint(0, 4, (2, 12, 16))
    target[target == 2] = 3
    target[:, :3] = -1
    logits = torch.randn(2, 5, 12, 16, requires_grad=True)
    reference = logits.detach().clone().requires_grad_(True)
    loss, expected = LovaszSoftmaxLoss()(logits, target), _lovasz_one_class_at_a_time(reference, target)
    loss.backward()
    expected.backward()
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), abs=1e-6)
    assert torch.allclose(logits.grad, reference.grad, atol=1e-7)


@pytest.mark.parametrize("seed", [0, 1])
def test_lovasz_histogram_ranks_like_the_sort(seed: int):
    """Large batches rank pixels by a histogram of their errors (a sort cost half a CamVid training step):
    same loss and gradient as the exact sort, with ignored pixels and an absent class (5) in the batch."""
    from pixelwise.training.losses.lovasz import LovaszSoftmaxLoss

    torch.manual_seed(seed)
    target = torch.randint(0, 5, (2, 64, 96))
    target[:, :5] = -1
    logits = (torch.randn(2, 6, 64, 96) * 3).requires_grad_(True)
    reference = logits.detach().clone().requires_grad_(True)
    binned = LovaszSoftmaxLoss(exact_up_to=0)(logits, target)
    exact = LovaszSoftmaxLoss(exact_up_to=1 << 30)(reference, target)
    binned.backward()
    exact.backward()
    assert float(binned.detach()) == pytest.approx(float(exact.detach()), rel=1e-5)
    assert torch.nn.functional.cosine_similarity(logits.grad.flatten(), reference.grad.flatten(), dim=0) > 0.9999
    assert (logits.grad - reference.grad).abs().max() < 0.01 * reference.grad.abs().max()
    assert float(reference.grad[:, 5].abs().sum()) > 0  # an absent class is still pushed down


def test_lovasz_histogram_is_exact_on_hard_predictions():
    from pixelwise.training.losses.lovasz import LovaszSoftmaxLoss

    target = torch.tensor([[[0, 1], [1, 1]]])
    perfect = torch.tensor([[[[9.0, -9.0], [-9.0, -9.0]], [[-9.0, 9.0], [9.0, 9.0]]]])
    assert float(LovaszSoftmaxLoss(exact_up_to=0)(perfect, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(LovaszSoftmaxLoss(exact_up_to=0)(-perfect, target)) == pytest.approx(1.0, abs=1e-6)


def test_ohem_averages_only_the_hardest_pixels():
    from pixelwise.training.losses.ohem import OhemCrossEntropyLoss

    logits = torch.randn(1, 3, 10, 10)
    target = torch.randint(0, 3, (1, 10, 10))
    per_pixel = torch.nn.functional.cross_entropy(logits, target, reduction="none").flatten()
    hardest = per_pixel.sort(descending=True).values[:25].mean()
    assert float(OhemCrossEntropyLoss(top_fraction=0.25, min_pixels=1)(logits, target)) == pytest.approx(float(hardest))
    everything = OhemCrossEntropyLoss(top_fraction=0.25, min_pixels=1000)(logits, target)  # min_pixels wins
    assert float(everything) == pytest.approx(float(per_pixel.mean()), rel=1e-5)


def test_edge_ce_weighs_edge_pixels_and_keeps_the_class_weighted_mean():
    from pixelwise.training.losses.edge_ce import EdgeWeightedCrossEntropy, edge_band

    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[:, :, 4:] = 1
    target[:, 0, :] = -1  # ignored: neither counted nor a boundary
    band = edge_band(target, width=1)
    assert band[0, 1:, 3:5].all() and int(band.sum()) == 14 and not band[0, 0].any()
    logits = torch.randn(1, 2, 8, 8)
    # boost 0: exactly the class-weighted CE
    plain = torch.nn.functional.cross_entropy(logits, target, weight=torch.tensor([1.0, 3.0]), ignore_index=-1)
    loss = EdgeWeightedCrossEntropy(class_weights=[1.0, 3.0], boost=0.0, width=1)(logits, target)
    assert float(loss) == pytest.approx(float(plain), rel=1e-6)
    # a wrong edge pixel costs more than the same mistake away from the edge
    confident = torch.zeros(1, 2, 8, 8)
    confident[:, 0][target == 0], confident[:, 1][target == 1] = 5.0, 5.0
    edge, inner = confident.clone(), confident.clone()
    edge[0, :, 4, 3] = torch.tensor([0.0, 5.0])  # class 0 pixel beside the change, predicted 1
    inner[0, :, 4, 0] = torch.tensor([0.0, 5.0])  # class 0 pixel far from it, predicted 1
    boundary = EdgeWeightedCrossEntropy(boost=2.0, width=1)
    assert float(boundary(edge, target)) > 2 * float(boundary(inner, target))
    assert float(boundary(torch.zeros(1, 2, 2, 2), torch.full((1, 2, 2), -1))) == 0.0
