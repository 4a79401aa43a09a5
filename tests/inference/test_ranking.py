"""The rank scores on probabilities of known uncertainty, and rank_images on checkpoints (pixelwise.inference.ranking).

That a trained model's ambiguous image is ranked first, end to end, is tests/cli/test_rank.py's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

import pixelwise
from pixelwise.core.errors import ConfigError, DataError
from pixelwise.data.classes import ClassSpec
from pixelwise.inference.predictor import Predictor
from pixelwise.inference.ranking import (
    SCORES,
    RankedImage,
    check_score,
    image_scores,
    rank_images,
    ranking_csv,
)
from pixelwise.inference.soft_outputs import uncertainty_image
from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint


def pixels(*columns: list[float]) -> torch.Tensor:
    """One model's ``(1, C, 1, W)`` probabilities, one column of class probabilities per pixel."""
    return torch.tensor(columns, dtype=torch.float32).T[None, :, None, :]


def score(name: str, probs: torch.Tensor) -> list[float]:
    return [round(v, 4) for v in SCORES.get(name)(probs).flatten().tolist()]


def test_entropy_and_margin_of_known_probabilities():
    probs = pixels([0.25] * 4, [1, 0, 0, 0], [0.6, 0.3, 0.1, 0.0], [0.4, 0.4, 0.1, 0.1])
    h = -(0.6 * math.log(0.6) + 0.3 * math.log(0.3) + 0.1 * math.log(0.1)) / math.log(4)
    h2 = -(2 * 0.4 * math.log(0.4) + 2 * 0.1 * math.log(0.1)) / math.log(4)
    assert score("entropy", probs) == [1.0, 0.0, round(h, 4), round(h2, 4)]
    # 1 - (p1 - p2): a tie of the two likeliest classes is 1 however sure they are together; 1 - p1 would say 0.6.
    assert score("margin", probs) == [1.0, 0.0, 0.7, 1.0]
    two = pixels([0.9, 0.1], [0.5, 0.5])
    assert score("entropy", two) == [round(-(0.9 * math.log(0.9) + 0.1 * math.log(0.1)) / math.log(2), 4), 1.0]
    assert score("margin", two) == [0.2, 1.0]


def test_disagreement_is_the_mean_kl_divergence_to_the_mean_over_log_classes():
    sure_opposite = torch.cat([pixels([1, 0]), pixels([0, 1])])
    unsure_alike = torch.cat([pixels([0.5, 0.5]), pixels([0.5, 0.5])])
    assert score("disagreement", sure_opposite) == [1.0] and score("entropy", sure_opposite) == [1.0]
    # Both models unsure in the same way: as uncertain as can be, but no disagreement (more models won't help).
    assert score("disagreement", unsure_alike) == [0.0] and score("entropy", unsure_alike) == [1.0]
    # Against the definition, on random probabilities of 3 models, 5 classes and 6 pixels.
    rng = np.random.default_rng(0)
    members = rng.dirichlet(np.ones(5), size=(3, 6)).transpose(0, 2, 1)[:, :, None, :]  # (M, C, 1, W)
    mean = members.mean(0)
    kl = (members * np.log(members / mean)).sum(1).mean(0) / math.log(5)
    assert np.allclose(SCORES.get("disagreement")(torch.from_numpy(members).float()).numpy(), kl, atol=1e-5)
    assert kl.min() > 0.01  # not trivially zero


def test_an_image_score_is_the_mean_of_its_map_and_only_scores_the_checkpoints_allow():
    probs = pixels([0.5, 0.5], [0.5, 0.5], [1, 0], [0, 1])
    scores, maps = image_scores(probs)
    assert scores == pytest.approx({"entropy": 0.5, "margin": 0.5}) and maps["entropy"].shape == (1, 4)
    pair, _ = image_scores(torch.cat([probs, pixels([0.5, 0.5], [0.5, 0.5], [0, 1], [0, 1])]))
    assert set(pair) == {"entropy", "margin", "disagreement"}
    assert pair["disagreement"] == pytest.approx(0.25, abs=1e-6)  # the one pixel of four where they oppose


def test_a_score_is_checked_before_any_work():
    with pytest.raises(ConfigError, match="choose one of disagreement, entropy, margin"):
        check_score("variance", 1)
    with pytest.raises(ConfigError, match="at least 2"):
        check_score("disagreement", 1)
    check_score("disagreement", 2)
    with pytest.raises(ConfigError, match="at least two"):
        SCORES.get("disagreement")(pixels([0.5, 0.5]))


def test_ranking_csv_is_sorted_as_given_and_cut_at_top():
    ranked = [RankedImage("b.png", {"entropy": 0.75, "margin": 0.5}),
              RankedImage("a.png", {"entropy": 0.25, "margin": 0.125})]
    assert ranking_csv(ranked, "margin", top=1).splitlines() == ["rank,image,score,entropy,margin",
                                                                 "1,b.png,0.500000,0.750000,0.500000"]
    assert len(ranking_csv(ranked, "entropy").splitlines()) == 3


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two untrained models of one task (rank_images needs no trained one to be compared with predict)."""
    folder = tmp_path_factory.mktemp("rank")
    paths = []
    for seed in range(2):
        torch.manual_seed(seed)
        model = pixelwise.create_model("unet", num_classes=3, base_filters=4, depth=2)
        with torch.no_grad():  # an untrained head is near uniform everywhere: make it sure of some pixels
            model.head.weight.mul_(300)
        paths.append(folder / f"m{seed}.safetensors")
        save_checkpoint(paths[-1], model, CheckpointMeta.for_model(model, ClassSpec.from_lists(["a", "b", "c"]),
                                                                   input_size=(32, 48)))
    return paths


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(3)
    for k in range(4):
        Image.fromarray(rng.integers(0, 256, (30 + 5 * k, 45, 3), dtype=np.uint8)).save(folder / f"img{k}.png")
    return sorted(folder.iterdir())


@pytest.mark.parametrize("by", ["entropy", "margin"])
def test_rank_images_scores_the_predictors_probabilities(checkpoints, images, tmp_path, by):
    ranked = rank_images(checkpoints[0], images, by, maps_dir=tmp_path, precision="fp32", backend="torch")
    predictor = Predictor(checkpoints[0], precision="fp32", backend="torch")
    expected = {}
    for image in images:
        _, probs = predictor.predict(image, return_probs=True)
        assert set(image_scores(torch.from_numpy(probs)[None])[0]) == {"entropy", "margin"}
        expected[image] = image_scores(torch.from_numpy(probs)[None])[0][by]
        saved = np.array(Image.open(tmp_path / f"{image.stem}_uncertainty.png"))
        if by == "entropy":  # the very map predict --save-uncertainty writes
            assert np.array_equal(saved, uncertainty_image(probs, "entropy"))
        else:
            # Rounded to 8 bits: half a step apart at most, plus float noise (a value at x.5 may round either way).
            assert np.abs(saved - SCORES.get("margin")(torch.from_numpy(probs)[None]).numpy() * 255).max() <= 0.501
    assert [r.image for r in ranked] == sorted(images, key=lambda p: -expected[p])
    assert [r.scores[by] for r in ranked] == pytest.approx(sorted(expected.values(), reverse=True), abs=1e-6)
    assert len(set(expected.values())) == len(images)  # the order above is not the input order by accident


def test_disagreement_runs_each_checkpoint_alone(checkpoints, images):
    ranked = rank_images(checkpoints, images[:2], "disagreement", precision="fp32", backend="torch")
    probs = [Predictor(path, precision="fp32", backend="torch").predict(images[0], return_probs=True)[1]
             for path in checkpoints]
    expected = float(SCORES.get("disagreement")(torch.from_numpy(np.stack(probs))).double().mean())
    assert {r.image: r.scores["disagreement"] for r in ranked}[images[0]] == pytest.approx(expected, abs=1e-6)
    assert all(r.scores["disagreement"] > 0.01 for r in ranked)


def test_rank_images_refuses_what_it_cannot_compare(checkpoints, images, tmp_path):
    model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2)
    other = tmp_path / "binary.safetensors"
    save_checkpoint(other, model, CheckpointMeta.for_model(model, ClassSpec.from_lists(["a", "x"])))
    with pytest.raises(ConfigError, match="predict different classes") as error:
        rank_images([checkpoints[0], other], images, "disagreement")
    assert str(other) in str(error.value) and str(checkpoints[0]) in str(error.value)
    with pytest.raises(ConfigError, match="named twice"):
        rank_images([checkpoints[0], checkpoints[0]], images, "disagreement")
    with pytest.raises(DataError, match="no such file"):
        rank_images(checkpoints[0], [tmp_path / "missing.png"])
