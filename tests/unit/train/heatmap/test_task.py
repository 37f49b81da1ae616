"""The keypoint-heatmap task through the real trainer on a tiny synthetic run folder (CPU)."""

from __future__ import annotations

import json

import pytest
import torch

from tests.support.training import tiny_config
from workbench.train.config import ConfigError
from workbench.train.heatmap.task import MODEL_FORMAT, load_heatmap_model
from workbench.train.hooks import read_metrics
from workbench.train.loop import Trainer
from workbench.train.synthetic import write_shapes_run

TINY = {
    "hourglass": {"input_size": [32, 32], "depth": 1, "stacks": 2, "channels": 16, "sigma": 4.0},
    "unet": {"input_size": [32, 32], "unet_levels": 2, "channels": 8, "sigma": 2.0},
}


def heatmap_config(arch: str, **overrides):  # noqa: ANN003, ANN201
    base = dict(task="keypoints", arch=arch, heatmap=TINY.get(arch, {}), optimizer="adamw", lr=2e-3, batch_size=4, eval_every=1)
    base.update(overrides)
    return tiny_config(**base)


@pytest.mark.parametrize("arch", ["hourglass", "unet"])
def test_a_short_run_writes_a_model_file_with_metrics(tmp_path, arch):
    run = write_shapes_run(tmp_path / "run", heatmap_config(arch), n_train=6, n_val=3, size_wh=(96, 64))
    assert Trainer(run).train() == "succeeded"
    vals = [r for r in read_metrics(run) if r["type"] == "val"]
    assert len(vals) == 2 and vals[-1]["on"] == "val"
    for key in ("pck", "oks_ap", "oks_ap50", "pck_triangle", "num_crops"):
        assert key in vals[-1], vals[-1]
    assert 0.0 <= vals[-1]["pck"] <= 1.0 and vals[-1]["num_crops"] > 0
    model, info = load_heatmap_model(run / "model.pt")
    assert info["format"] == MODEL_FORMAT and info["task"] == "keypoints-heatmap"
    assert info["model_args"]["arch"] == arch and info["config"]["task"] == "keypoints"
    assert [c["name"] for c in info["layout"]["classes"]] == ["triangle"]
    assert info["layout"]["classes"][0]["flip_pairs"] == [[0, 1]]
    stride = info["model_args"]["stride"]
    with torch.no_grad():
        out = model(torch.rand(1, 3, 32, 32))
    assert out.shape == (1, 3, 32 // stride, 32 // stride)
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "succeeded"
    _predictor_equals_validation(run)


def _predictor_equals_validation(run):  # noqa: ANN001
    """The predictor on a stored image gives the keypoints validation decoded for the same boxes."""
    import numpy as np

    from workbench.train.dataset import load_coco_split, load_image_rgb_array, make_loader
    from workbench.train.heatmap.data import HeatmapDataset
    from workbench.train.heatmap.predict import HeatmapPredictor, is_heatmap_model
    from workbench.train.heatmap.task import predict_dataset

    assert is_heatmap_model(run / "model.pt")
    pred = HeatmapPredictor(run / "model.pt")
    ds = load_coco_split(run / "dataset" / "coco_val.json", run / "dataset" / "images")
    val = HeatmapDataset(ds.items, pred.layout, pred.cfg, pred.stride, train=False)
    expected = predict_dataset(pred.model, val, make_loader(val, None, num_workers=0, pin_memory=False, batch_size=4),
                               torch.device("cpu"), pred.cfg)
    got = []
    for item in ds.items:
        image = load_image_rgb_array(item.image.path or item.image.file_name)
        for inst in pred.predict(image, [i for i in item.instances if i.num_keypoints]):
            got.append(np.asarray(inst.keypoints).reshape(-1, 3)[:, :2])
    assert len(got) == len(expected) > 0
    for g, e in zip(got, expected, strict=True):
        h, w = 64, 96
        want = np.clip(e.keypoints[:, :2], 0, [w, h])
        assert np.allclose(g, want, atol=1e-4)


def test_bad_heatmap_settings_are_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"heatmap.input_size: hourglass needs multiples of 8"):
        heatmap_config("hourglass", heatmap={**TINY["hourglass"], "input_size": [30, 32]})
    with pytest.raises(ConfigError, match="heatmap.sigmaa: unknown heatmap setting"):
        heatmap_config("hourglass", heatmap={"sigmaa": 2})
    with pytest.raises(ConfigError, match="weights 'coco' do not exist"):
        heatmap_config("unet", weights="coco")
    with pytest.raises(ConfigError, match="arch 'fcn' is not one of"):
        heatmap_config("fcn")


def test_a_stopped_run_resumes_from_its_last_checkpoint(tmp_path):
    cfg = heatmap_config("hourglass", epochs=1, eval_every=100)
    run = write_shapes_run(tmp_path / "run", cfg, n_train=6, size_wh=(96, 64))
    assert Trainer(run).train() == "succeeded"
    first = json.loads((run / "status.json").read_text())
    assert (run / "checkpoints" / "last.pt").exists() and first["step"] > 0
    longer = heatmap_config("hourglass", epochs=2, eval_every=100)
    assert Trainer(run, longer, resume=True).train() == "succeeded"
    status = json.loads((run / "status.json").read_text())
    assert status["resumed_from_step"] == first["step"] and status["step"] == 2 * first["step"]
    rows = [r for r in read_metrics(run) if r["type"] == "train"]
    assert [r["step"] for r in rows] == list(range(1, 2 * first["step"] + 1))
