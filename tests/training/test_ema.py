"""The EMA of the weights forgets the random initial weights within a short run."""

import torch

from pixelwise.training.ema import WeightAverage


def test_a_short_run_leaves_little_of_the_initial_weights():
    model = torch.nn.Linear(4, 2)
    ema = WeightAverage(model, decay=0.999)
    ema.update(model)  # the initial weights
    with torch.no_grad():
        model.weight.add_(1.0)  # the weights move away from them and stay there for 200 steps
    before = ema.module.weight.detach().clone()
    for _ in range(200):
        ema.update(model)
    moved = (ema.module.weight - before).mean().item()
    # A fixed decay of 0.999 would have moved 1 - 0.999^200 = 18% of the way; the warmed-up decay (at most
    # (1 + t) / (10 + t)) leaves about (10 / 210) = 5% of the start.
    assert moved > 0.9, moved
