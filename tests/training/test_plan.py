"""The planner's rules, each on a fingerprint built to trigger it; given values beat planned ones; a dataset's
name never matters; `pixelwise plan` writes a recipe that `pixelwise train --config` runs."""

from __future__ import annotations

import shutil

import pytest
import yaml

from pixelwise.data.fingerprint import ClassStats, Fingerprint
from pixelwise.testing import run_cli
from pixelwise.training.config import TrainConfig
from pixelwise.training.plan import ENCODERS, MachineFacts, make_plan
from pixelwise.training.plan_dataset import plan_dataset

ALL_ENCODERS = list(ENCODERS)


def fingerprint(n=400, size=(360, 480), channels="rgb", classes=None) -> Fingerprint:
    classes = classes or [ClassStats("road", 0.6, 1.0, 20.0, 100.0, 5e4), ClassStats("car", 0.3, 0.9, 8.0, 30.0, 1e4),
                          ClassStats("pole", 0.1, 0.9, 1.0, 3.0, 400.0)]
    return Fingerprint(num_images=n, sampled_images=min(n, 100), median_size=size, min_size=size, max_size=size,
                       aspect=size[1] / size[0], channels=channels, mean=(0.4,) * 3, std=(0.3,) * 3,
                       ignore_share=0.0, classes=classes)


def machine(speed=0.4, ram=24.0, pretrained=ALL_ENCODERS) -> MachineFacts:
    speeds = {"unet": 2 * speed, "efficientnet_lite0": speed, "efficientnet_lite1": 0.9 * speed,
              "efficientnet_lite2": 0.8 * speed}
    return MachineFacts(speeds=speeds, pretrained=list(pretrained), ram_gib=ram)


def test_thin_structures_set_the_smallest_training_size():
    thin = make_plan(fingerprint(), machine(), budget_s=3600)
    assert thin.value("img_size") == (240, 320)  # the 3 px pole stays 2 px wide
    coarse = fingerprint(classes=[ClassStats("a", 0.5, 1.0, 30.0, 60.0, 1e4),
                                  ClassStats("b", 0.5, 1.0, 30.0, 60.0, 1e4)])
    small = make_plan(coarse, machine(speed=0.1), budget_s=3600)
    assert small.value("img_size")[0] < 240  # nothing thin: a smaller size buys epochs


def test_a_faster_machine_or_longer_budget_buys_a_larger_encoder_then_resolution():
    assert make_plan(fingerprint(), machine(speed=0.4), 3600).value("encoder") == "efficientnet_lite0"
    fast = make_plan(fingerprint(), machine(speed=2.0), 3600)
    assert fast.value("encoder") == "efficientnet_lite2"
    assert make_plan(fingerprint(n=40), machine(speed=2.0), 3600).value("encoder") == "efficientnet_lite0"  # few
    assert fast.value("img_size") == (360, 480)  # up to the images' own size


def test_too_little_time_shrinks_below_the_thin_size_and_says_so():
    rushed = make_plan(fingerprint(), machine(speed=0.4), budget_s=300)
    assert rushed.value("img_size")[0] < 240
    assert "too few epochs" in rushed.choices["img_size"].reason


def test_pretrained_only_when_found_offline_and_like_imagenet():
    assert make_plan(fingerprint(), machine(pretrained=[]), 3600).value("encoder") is None
    many_grey = fingerprint(n=5000, channels="grey")
    assert make_plan(many_grey, machine(speed=50.0), 3600).value("encoder") is None
    few_grey = fingerprint(n=30, channels="grey")
    assert make_plan(few_grey, machine(), 900).value("encoder_weights") == "imagenet"


def test_loss_and_class_weights_follow_the_balance():
    binary = fingerprint(classes=[ClassStats("bg", 0.85, 1.0, 50.0, 90.0, 1e5),
                                  ClassStats("fg", 0.15, 1.0, 6.0, 17.0, 2e3)])
    assert make_plan(binary, machine(), 900).value("loss") == "ce+dice"
    skewed = make_plan(fingerprint(classes=[ClassStats("road", 0.97, 1.0, 90.0, 100.0, 5e4),
                                            ClassStats("car", 0.02, 0.9, 8.0, 30.0, 1e4),
                                            ClassStats("bike", 0.01, 0.5, 5.0, 12.0, 2e3)]), machine(), 3600)
    assert skewed.value("loss") == "ce+lovasz" and skewed.value("class_weights") == "auto"
    assert make_plan(fingerprint(), machine(), 3600).value("class_weights") is None  # 6x: balanced enough


def test_batch_from_memory_and_dataset_size_and_augmentation_from_dataset_size():
    assert make_plan(fingerprint(), machine(), 3600).value("batch_size") == 8
    assert make_plan(fingerprint(), machine(ram=1.0), 3600).value("batch_size") == 2
    assert make_plan(fingerprint(n=30), machine(), 900).value("batch_size") == 4  # BatchNorm wants 4 at least
    small = make_plan(fingerprint(n=30), machine(), 900).value("augment")
    assert small["color_jitter"] == 0.3 and small["scale"] == (0.75, 1.5)  # strong colour; zoom kept for thin things
    assert make_plan(fingerprint(n=5000), machine(), 900).value("augment")["scale"] == (0.9, 1.25)


def test_large_images_train_on_crops_at_their_own_size_and_predict_by_tiles():
    coarse = [ClassStats("bg", 0.8, 1.0, 60.0, 200.0, 1e5), ClassStats("fg", 0.2, 1.0, 20.0, 60.0, 1e4)]
    small = make_plan(fingerprint(n=40, size=(512, 512), classes=coarse), machine(speed=4.0), 900)
    assert small.value("crop_size") is None and small.value("img_size") == (512, 512)
    # 20 satellite-like tiles of 2000x3000 with 4 px roads, on a fast machine: native resolution, 512 crops
    roads = [ClassStats("bg", 0.9, 1.0, 60.0, 200.0, 1e5), ClassStats("road", 0.1, 1.0, 3.0, 4.0, 1e4)]
    large = make_plan(fingerprint(n=20, size=(2000, 3000), classes=roads), machine(speed=40.0), 3600)
    assert large.value("img_size") is None and large.value("crop_size") == (512, 512)
    assert "tiles" in large.choices["crop_size"].reason
    assert large.value("batch_size") == 4  # the batch is sized for the crop, not the 6-megapixel image
    # A slow machine: the thin roads still keep 2 px (crops bound a step's cost), the images are resized
    slow = make_plan(fingerprint(n=20, size=(2000, 3000), classes=roads), machine(speed=0.4), 3600)
    assert slow.value("crop_size") == (512, 512)
    assert slow.value("img_size") == (1008, 1504)  # half size: the 4 px roads stay 2 px wide
    assert "predicted whole" in slow.choices["crop_size"].reason


def test_binary_problems_are_scored_on_the_foreground_class():
    binary = fingerprint(classes=[ClassStats("background", 0.85, 1.0, 50.0, 90.0, 1e5),
                                  ClassStats("crack", 0.15, 1.0, 6.0, 17.0, 2e3)])
    assert make_plan(binary, machine(), 900).value("score_class") == "crack"
    assert make_plan(fingerprint(), machine(), 3600).value("score_class") is None  # several classes: mIoU


def test_given_values_beat_the_plan_and_are_marked():
    plan = make_plan(fingerprint(), machine(), 3600, given={"img_size": (64, 64), "lr": 0.01})
    assert plan.value("img_size") == (64, 64) and plan.value("lr") == 0.01
    assert plan.choices["lr"].source == "given" and plan.choices["batch_size"].source == "planned"
    assert "# given" in plan.to_yaml().splitlines()[0]


def test_the_plan_never_reads_the_dataset_name(tiny_data, tmp_path):
    renamed = shutil.copytree(tiny_data, tmp_path / "some-other-name")
    facts = machine()
    first, second = plan_dataset(tiny_data, budget_s=600, machine=facts), plan_dataset(renamed, budget_s=600,
                                                                                      machine=facts)
    assert {k: v for k, v in first.recipe().items() if k != "data"} == \
           {k: v for k, v in second.recipe().items() if k != "data"}


@pytest.mark.slow
def test_cli_plan_writes_a_recipe_that_trains(tiny_data, tmp_path):
    recipe = tmp_path / "plan.yaml"
    planned = run_cli("plan", str(tiny_data), "--time-budget", "20s", "--out", str(recipe))
    assert planned.returncode == 0, planned.stderr
    assert "img_size" in planned.stdout and "thick" in planned.stdout  # the plan and the fingerprint
    values = yaml.safe_load(recipe.read_text())
    assert values["data"] == str(tiny_data) and values["time_budget"] == "20s"
    run = tmp_path / "run"
    trained = run_cli("train", "--config", str(recipe), "--out", str(run), "--no-progress", "--img-size", "32x48")
    assert trained.returncode == 0, trained.stderr
    assert (run / "best.safetensors").is_file()


@pytest.mark.slow
def test_train_plans_without_a_recipe_and_records_planned_and_given(tiny_data, tmp_path):
    run = tmp_path / "run"
    result = run_cli("train", "--data", str(tiny_data), "--time-budget", "15s", "--img-size", "32x48",
                     "--model", "unet", "--model-option", "base_filters=4", "--model-option", "depth=2",
                     "--out", str(run), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "plan (values planned" in result.stdout
    config = (run / "config.yaml").read_text()
    assert "img_size:" in config and "# given" in config and "# planned:" in config
    assert yaml.safe_load((run / "plan.yaml").read_text())[0]["key"]


def test_shrunk_whole_frames_finish_their_budget_at_their_own_size():
    """A quarter of the budget on frames at their own size, in batches of the same pixels, at half the lr; none
    when the frames train at their own size already, are cropped, or too few native epochs would fit."""
    shrunk = make_plan(fingerprint(), machine(), 3600)  # 360x480 trained at 240x320: ~4 native epochs fit
    assert shrunk.value("final_stage") == {"img_size": "360x480", "share": 0.25, "batch_size": 4, "lr_scale": 0.5}
    assert shrunk.value("predict_scale") == 1.5  # the native frame, enlarged as far as the zoom went
    assert TrainConfig(**shrunk.recipe()).final_stage.img_size == (360, 480)  # a recipe train reads
    native = make_plan(fingerprint(), machine(speed=2.0), 3600)
    assert native.value("final_stage") is None  # native already...
    assert native.value("batch_size") == 4  # ...in batches of 4 on a CPU: 8 native frames a step miss its caches
    gpu = machine(speed=2.0)
    gpu.device = "cuda"
    assert make_plan(fingerprint(), gpu, 3600).value("batch_size") == 8
    assert make_plan(fingerprint(), machine(), 1200).value("final_stage") is None  # ~1.4 native epochs
    roads = [ClassStats("bg", 0.9, 1.0, 60.0, 200.0, 1e5), ClassStats("road", 0.1, 1.0, 3.0, 4.0, 1e4)]
    assert make_plan(fingerprint(n=20, size=(2000, 3000), classes=roads), machine(speed=0.4),
                     3600).value("final_stage") is None  # crops
    assert make_plan(fingerprint(), machine(), 3600, given={"final_stage": None}).value("final_stage") is None


def test_rare_class_crops_for_imbalanced_many_class_data_only():
    """Half the crops centre on the rare classes when one class has > 20x another's pixels and there are more
    than two classes; balanced or binary data keep plain random crops."""
    imbalanced = [ClassStats("road", 0.7, 1.0, 20.0, 100.0, 5e4), ClassStats("car", 0.28, 0.9, 8.0, 30.0, 1e4),
                  ClassStats("pole", 0.02, 0.9, 1.0, 3.0, 400.0)]
    plan = make_plan(fingerprint(classes=imbalanced), machine(), 900)
    assert plan.value("augment")["rare_class_crops"] == 0.5
    assert "pole" in next(r["reason"] for r in plan.records() if r["key"] == "augment")
    assert "rare_class_crops" not in make_plan(fingerprint(), machine(), 900).value("augment")  # 6x: balanced
    binary = [ClassStats("background", 0.99, 1.0, 20.0, 100.0, 5e4), ClassStats("crack", 0.01, 0.9, 1.0, 3.0, 40.0)]
    assert "rare_class_crops" not in make_plan(fingerprint(classes=binary), machine(), 900).value("augment")


def test_shrunk_whole_frames_are_predicted_enlarged_as_far_as_the_zoom_went():
    shrunk = make_plan(fingerprint(), machine(), budget_s=3600)  # 360x480 trained at 240x320, zoom up to 1.5
    assert shrunk.value("img_size") == (240, 320) and shrunk.value("predict_scale") == 1.5
    native = make_plan(fingerprint(), machine(speed=2.0), 3600)  # trained at the images' own size
    assert native.value("img_size") == (360, 480) and native.value("predict_scale") is None
    roads = [ClassStats("bg", 0.9, 1.0, 60.0, 200.0, 1e5), ClassStats("road", 0.1, 1.0, 3.0, 4.0, 1e4)]
    crops = make_plan(fingerprint(n=20, size=(2000, 3000), classes=roads), machine(speed=0.4), 3600)
    assert crops.value("crop_size") == (512, 512) and crops.value("predict_scale") is None  # never saw whole frames
    mild = make_plan(fingerprint(), machine(), 3600, given={"augment": {"scale": [0.9, 1.25]}})
    assert mild.value("predict_scale") == 1.25  # no larger than the zoom the model was shown
