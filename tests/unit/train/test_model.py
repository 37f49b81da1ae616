"""Model builder: backbones, head swap, keypoint head, weights (offline error, local checkpoint)."""

from __future__ import annotations

import pytest
import torch

from workbench.train.model import WeightsUnavailableError, build_model, load_matching


def _targets(h=64, w=96, k=3):
    masks = torch.zeros(2, h, w, dtype=torch.uint8)
    masks[0, 5:30, 5:40] = 1
    masks[1, 30:60, 50:90] = 1
    with_kps = {
        "boxes": torch.tensor([[5.0, 5, 40, 30], [50, 30, 90, 60]]),
        "labels": torch.tensor([3, 1]),  # a class with keypoints and one without
        "masks": masks,
        "keypoints": torch.tensor([[[8.0, 25, 2], [35, 25, 2], [20, 8, 2]], [[0, 0, 0]] * 3]),
    }
    empty = {
        "boxes": torch.zeros(0, 4),
        "labels": torch.zeros(0, dtype=torch.int64),
        "masks": torch.zeros(0, h, w, dtype=torch.uint8),
        "keypoints": torch.zeros(0, k, 3),
    }
    return [torch.rand(3, h, w), torch.rand(3, h, w)], [with_kps, empty]


def test_masks_and_keypoints_model_trains_on_a_mixed_batch():
    torch.manual_seed(0)
    model = build_model("tiny", num_classes=4, num_keypoints=3)
    assert model.roi_heads.has_keypoint() and model.roi_heads.has_mask()
    images, targets = _targets()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(3):
        loss_dict = model(images, targets)
        assert set(loss_dict) >= {"loss_mask", "loss_keypoint", "loss_classifier"}
        loss = sum(loss_dict.values())
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        assert model.roi_heads.keypoint_predictor.kps_score_lowres.weight.grad.abs().sum() > 0
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    out = model(images)
    assert {"masks", "keypoints", "boxes"} <= set(out[0])


@pytest.mark.parametrize("backbone", ["resnet50_fpn_v2", "resnet50_fpn", "mobilenet_v3_large_fpn"])
def test_full_size_backbones_build_with_replaced_heads(backbone):
    model = build_model(backbone, num_classes=5, num_keypoints=2, weights="none")
    assert model.roi_heads.box_predictor.cls_score.out_features == 5
    assert model.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 5
    assert model.roi_heads.keypoint_predictor.kps_score_lowres.out_channels == 2


def test_no_keypoint_head_without_schema():
    assert not build_model("tiny", num_classes=2).roi_heads.has_keypoint()


@pytest.mark.parametrize("weights", ["coco", "imagenet"])
def test_offline_pretrained_weights_name_the_file_to_place(tmp_path, monkeypatch, weights):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as err:
        build_model("resnet50_fpn_v2", num_classes=3, weights=weights)
    msg = str(err.value)
    assert str(tmp_path / "hub" / "checkpoints") in msg and ".pth" in msg


def test_local_checkpoint_loads_matching_tensors(tmp_path):
    torch.manual_seed(1)
    a = build_model("tiny", num_classes=3)
    path = tmp_path / "w.pt"
    torch.save({"model": a.state_dict()}, path)
    b = build_model("tiny", num_classes=3, weights=str(path))
    key = "backbone.body.conv1.weight"
    assert torch.equal(a.state_dict()[key], b.state_dict()[key])
    # Another class count: the backbone loads, the predictors keep their own shapes.
    c = build_model("tiny", num_classes=5)
    loaded, skipped = load_matching(c, a.state_dict())
    assert loaded > 0 and any("box_predictor" in k for k in skipped)
    with pytest.raises(WeightsUnavailableError, match="no such checkpoint"):
        build_model("tiny", num_classes=3, weights=str(tmp_path / "missing.pt"))
