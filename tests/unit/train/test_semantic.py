"""The semantic task: losses and targets against hand-made maps, every architecture's train and eval
step (random weights), the config's errors, and a short run through the real Trainer."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from workbench.domain import IGNORE_LABEL, AnnotatedImage, Category, ImageRecord, Instance
from workbench.formats.labelmaps import binary_label_maps, semantic_index_map
from workbench.train.config import ConfigError, TrainConfig
from workbench.train.tasks import TASKS, UnknownTaskError, get_task, task_spec
from workbench.train.tasks.semantic_data import SemanticDataset
from workbench.train.tasks.semantic_loss import bce_loss, ce_loss, dice_loss, semantic_losses
from workbench.train.tasks.semantic_models import build_semantic_model


def _bce(x: float, y: float) -> float:
    p = 1 / (1 + math.exp(-x))
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_bce_sums_over_classes_and_averages_over_non_ignored_pixels() -> None:
    logits = torch.tensor([[[[2.0, -1.0], [0.5, 3.0]], [[-2.0, 1.0], [0.0, -3.0]]]])  # 1 x 2 x 2 x 2
    binary = torch.tensor([[[[1, 0], [1, 1]], [[1, 1], [0, 0]]]], dtype=torch.uint8)  # pixel (0,0): both classes
    valid = torch.tensor([[[True, True], [True, False]]])  # pixel (1,1) is ignore
    pix = [(0, 0), (0, 1), (1, 0)]
    per_pixel = [sum(_bce(float(logits[0, c, i, j]), float(binary[0, c, i, j])) for c in range(2)) for i, j in pix]
    assert float(bce_loss(logits, binary, valid)) == pytest.approx(sum(per_pixel) / 3, rel=1e-6)
    assert float(bce_loss(logits, binary, valid, reduction="mean")) == pytest.approx(sum(per_pixel) / 6, rel=1e-6)


def test_ce_ignores_255_and_is_zero_not_nan_when_everything_is_ignored() -> None:
    logits = torch.tensor([[[[1.0, 0.0]], [[0.0, 2.0]], [[0.5, 0.5]]]])  # 1 x 3 x 1 x 2
    index = torch.tensor([[[2, 255]]])
    ref = -math.log(math.exp(0.5) / (math.exp(1.0) + 1 + math.exp(0.5)))
    assert float(ce_loss(logits, index)) == pytest.approx(ref, rel=1e-6)
    empty = ce_loss(logits.requires_grad_(), torch.full((1, 1, 2), 255))
    assert float(empty.detach()) == 0.0 and empty.requires_grad


def test_dice_is_zero_for_a_perfect_prediction_and_skips_ignore() -> None:
    target = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    valid = torch.tensor([[[True, True], [True, False]]])
    assert float(dice_loss(target.clone(), target, valid, eps=1e-6)) == pytest.approx(0.0, abs=1e-5)
    wrong = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])  # the (1,1) miss is ignored, (1,0) is a false positive
    assert float(dice_loss(wrong, target, valid, eps=0.0)) == pytest.approx(1 - 2 * 1 / (2 + 1))


def _item() -> tuple[AnnotatedImage, list[Category]]:
    cats = [Category("road", id=1), Category("wet", id=2), Category(IGNORE_LABEL, id=3)]
    sq = lambda x0, y0, x1, y1: ((x0, y0, x1, y0, x1, y1, x0, y1),)  # noqa: E731
    insts = (
        Instance("road", polygons=sq(0, 0, 10, 8)),
        Instance("wet", polygons=sq(5, 4, 14, 12)),  # overlaps road
        Instance(IGNORE_LABEL, polygons=sq(12, 0, 16, 3)),
    )
    return AnnotatedImage(ImageRecord("a.png", 16, 12, id=7), insts), cats


def test_targets_are_the_exports_label_maps(tmp_path) -> None:  # noqa: ANN001
    from PIL import Image

    item, cats = _item()
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(tmp_path / "a.png")
    item = AnnotatedImage(ImageRecord(str(tmp_path / "a.png"), 16, 12, id=7), item.instances)
    ds = SemanticDataset([item], cats, 16, full_index=True)  # 16: only the width changes (nearest)
    image, target = ds[0]
    assert image.shape == (3, 16, 16) and target["binary"].shape == (2, 16, 16)
    assert int(target["image_id"]) == 7
    np.testing.assert_array_equal(target["full_index"].numpy(), semantic_index_map(item, cats))
    assert binary_label_maps(item, cats)[:, 5, 6].tolist() == [1, 1]  # overlapping classes both set
    assert set(np.unique(target["index"].numpy())) == {0, 1, 2, 255}
    # the binary maps and the index map moved together through the resize
    idx, binary = target["index"].numpy(), target["binary"].numpy()
    assert (binary[0][idx == 1] == 1).all() and (binary[1][idx == 2] == 1).all()


def test_the_loss_dict_names_its_parts_and_aux_counts() -> None:
    out = torch.zeros(2, 2, 4, 4, requires_grad=True)
    index = torch.zeros(2, 4, 4, dtype=torch.long)
    binary = torch.zeros(2, 2, 4, 4, dtype=torch.uint8)
    got = {k: v.detach() for k, v in semantic_losses(out, out * 2, index, binary, mode="bce", dice_weight=1.0, aux_weight=0.5).items()}
    assert set(got) == {"loss_bce", "loss_dice", "loss_aux"}
    assert float(got["loss_aux"]) == pytest.approx(0.5 * float(got["loss_bce"]))
    ce = semantic_losses(torch.zeros(2, 3, 4, 4), None, index, binary, mode="ce")
    assert set(ce) == {"loss_ce"}


ARCHS = [
    ("unet", "resnet18", "bce"),
    ("pspnet", "resnet18", "ce"),
    ("lraspp", "mobilenet_v3_large", "bce"),
    ("fcn", "resnet50", "ce"),
    ("deeplabv3", "resnet50", "bce"),
]


@pytest.mark.parametrize(("arch", "encoder", "mode"), ARCHS)
def test_every_arch_trains_a_step_and_predicts(arch: str, encoder: str, mode: str) -> None:
    torch.manual_seed(0)
    model = build_semantic_model(arch, num_classes=2, encoder=encoder, weights="none", mode=mode, dice_weight=0.5)
    images = [torch.rand(3, 64, 64), torch.rand(3, 64, 64)]
    index = torch.zeros(2, 64, 64, dtype=torch.long)
    index[0, 10:30, 10:30] = 1
    index[0, 40:, :8] = 255  # image 1 has no annotation at all: all background
    binary = torch.zeros(2, 2, 64, 64, dtype=torch.uint8)
    binary[0, 0, 10:30, 10:30] = 1
    targets = [{"index": index[i], "binary": binary[i]} for i in range(2)]
    model.train()
    losses = model(images, targets)
    assert f"loss_{mode}" in losses and "loss_dice" in losses
    assert ("loss_aux" in losses) == (arch in ("fcn", "deeplabv3"))
    total = sum(losses.values())
    assert torch.isfinite(total)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    opt.zero_grad()
    total.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    opt.step()
    model.eval()
    with torch.no_grad():
        logits = model(images)
    assert logits.shape == (2, 2 if mode == "bce" else 3, 64, 64)


def test_config_errors_name_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"task 'depth' is not one of \[.*'semantic'"):
        TrainConfig(task="depth")
    with pytest.raises(ConfigError, match="arch 'yolo' is not one of"):
        TrainConfig(task="semantic", arch="yolo", weights="none")
    with pytest.raises(ConfigError, match="encoder 'resnet18' is not one of"):
        TrainConfig(task="semantic", arch="fcn", encoder="resnet18", weights="none")
    with pytest.raises(ConfigError, match="weights 'coco' are for fcn"):
        TrainConfig(task="semantic", arch="unet")
    with pytest.raises(ConfigError, match="image_size must be a multiple of 32"):
        TrainConfig(task="semantic", weights="none", image_size=100)
    with pytest.raises(ConfigError, match="seg_loss 'focal'"):
        TrainConfig(task="semantic", weights="none", seg_loss="focal")
    with pytest.raises(ConfigError, match="dice_weight must be a number >= 0"):
        TrainConfig(task="semantic", weights="none", dice_weight=-1)
    with pytest.raises(ConfigError, match="arch is not a setting of task instance"):
        TrainConfig(arch="unet")
    with pytest.raises(ConfigError, match="not an encoder of segmentation-models-pytorch"):
        build_semantic_model("unet", num_classes=2, encoder="resnet_nope")
    with pytest.raises(UnknownTaskError, match="not one of"):
        task_spec("nope")
    assert TASKS["semantic"].primary_metric == get_task("semantic").primary_metric == "mean_iou"
    assert get_task("instance").primary_metric == "segm_ap"


def test_a_semantic_run_through_the_trainer_writes_a_model_and_metrics(make_run) -> None:  # noqa: ANN001
    from workbench.train.hooks import read_metrics
    from workbench.train.loop import Trainer
    from workbench.train.tasks.semantic import SemanticPredictor, load_semantic_model

    run = make_run(n_train=4, n_val=2, empty_every=3, task="semantic", arch="unet", encoder="resnet18",
                   image_size=64, epochs=2, eval_every=1, seg_loss="ce", dice_weight=0.5)
    trainer = Trainer(run)
    assert trainer.train() == "succeeded"
    rows = read_metrics(run)
    train_rows = [r for r in rows if r["type"] == "train"]
    assert train_rows and all(math.isfinite(r["loss_ce"]) and "loss_dice" in r for r in train_rows)
    val = [r for r in rows if r["type"] == "val"]
    assert len(val) == 2 and all(0 <= r["mean_iou"] <= 1 and "fw_iou" in r and "iou/background" in r for r in val)
    status = json.loads((run / "status.json").read_text())
    assert status["best_ap"] == pytest.approx(max(r["mean_iou"] for r in val))  # best = the best mean IoU
    assert (run / "checkpoints" / "best.pt").exists()
    model, info = load_semantic_model(run / "model.pt")
    assert info["task"] == "semantic" and info["model_args"]["arch"] == "unet"
    assert info["model_args"]["encoder"] == "resnet18" and info["class_names"] == ["circle", "square", "triangle"]
    maps = SemanticPredictor(run / "model.pt").predict([np.zeros((40, 70, 3), np.uint8)])
    assert maps[0].shape == (40, 70) and maps[0].dtype == np.uint8 and maps[0].max() <= 3
    # the model file's validation agrees with a fresh prediction on the val split's confusion
    assert model.mode == "ce"


def test_a_semantic_run_resumes_from_its_last_checkpoint(make_run) -> None:  # noqa: ANN001
    from workbench.train.config import load_config, save_config
    from workbench.train.loop import Trainer

    run = make_run(n_train=4, task="semantic", arch="unet", encoder="resnet18", image_size=32, epochs=1, eval_every=1)
    assert Trainer(run).train() == "succeeded"
    first = json.loads((run / "status.json").read_text())
    cfg = load_config(run / "config.json")
    save_config(TrainConfig.from_dict({**cfg.to_dict(), "epochs": 2}), run / "config.json")
    again = Trainer(run, resume=True)
    assert again.train() == "succeeded"
    status = json.loads((run / "status.json").read_text())
    assert status["resumed_from_step"] == first["step"] == 2 and status["step"] == 4 and status["epoch"] == 2
    assert again.task.name == "semantic" and "mean_iou" in status["last_val"]


def test_the_augmentation_moves_the_maps_with_the_image() -> None:
    from workbench.augment import Augmenter

    image = np.zeros((8, 10, 3), np.uint8)
    image[:, :3] = 200  # the left three columns are bright
    maps = np.zeros((2, 8, 10), np.uint8)
    maps[0, :, :3] = 1
    maps[1, :2, :] = 255  # an ignore band along the top
    flip = Augmenter([{"name": "HorizontalFlip", "params": {"p": 1.0}}])
    img, out = flip.apply_maps(image, maps)
    assert (img[:, -3:] == 200).all() and (out[0, :, -3:] == 1).all() and out[0, :, :7].sum() == 0
    assert (out[1, :2] == 255).all() and out[1, 2:].sum() == 0  # values kept exactly, nothing dropped
    assert Augmenter("none").apply_maps(image, maps)[1] is maps


def test_pretrained_weights_offline_say_where_the_file_goes(monkeypatch, tmp_path) -> None:  # noqa: ANN001
    from workbench.train.model import WeightsUnavailableError

    monkeypatch.setenv("WORKBENCH_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailableError, match=r"lraspp_mobilenet_v3_large.*place the file at .*hub/checkpoints"):
        build_semantic_model("lraspp", num_classes=2, weights="coco")
    with pytest.raises(WeightsUnavailableError, match="resnet18 encoder weights are not available offline"):
        build_semantic_model("unet", num_classes=2, encoder="resnet18", weights="imagenet")
