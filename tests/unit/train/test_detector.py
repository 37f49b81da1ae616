"""The designed Mask R-CNN (issue 16): every setting builds a model that trains and predicts, RoIPool and
RoIAlign against values computed by hand, model files keep the architecture, bad settings are named."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from workbench.train.checkpoint import save_atomic
from workbench.train.config import ConfigError, TrainConfig
from workbench.train.detector import BACKBONE_ANCHOR_SIZES, DetectorConfig, DetectorConfigError
from workbench.train.detector_build import MaskPredictor, MultiScaleRoI
from workbench.train.model import build_model, load_trained_model, model_args, model_file_payload

H, W = 64, 80


def _batch(num_keypoints: int = 0) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Two images: one with two objects (one with keypoints when K > 0), one without any."""
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, H, W, generator=g), torch.rand(3, H, W, generator=g)]
    masks = torch.zeros(2, H, W, dtype=torch.uint8)
    masks[0, 10:30, 8:40] = 1
    masks[1, 36:60, 50:58] = 1  # a thin one
    full = {"boxes": torch.tensor([[8.0, 10.0, 40.0, 30.0], [50.0, 36.0, 58.0, 60.0]]),
            "labels": torch.tensor([1, 2]), "masks": masks}
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
             "masks": torch.zeros(0, H, W, dtype=torch.uint8)}
    if num_keypoints:
        kps = torch.zeros(2, num_keypoints, 3)
        kps[0, :, 0], kps[0, :, 1], kps[0, :, 2] = torch.linspace(10, 38, num_keypoints), 20.0, 2.0
        full["keypoints"] = kps
        empty["keypoints"] = torch.zeros(0, num_keypoints, 3)
    return images, [full, empty]


def _mask_logit_side(model: nn.Module) -> list[int]:
    seen: list[int] = []
    model.roi_heads.mask_predictor.register_forward_hook(lambda m, i, o: seen.append(o.shape[-1]))
    return seen


SETTINGS = [
    ({"anchor_sizes": [[8, 12], [24, 32], [48, 64], [96, 128]], "aspect_ratios": [0.25, 1, 4]}, "anchors"),
    ({"aspect_ratios": [0.2, 0.5, 1, 2, 5]}, "ratios"),
    ({"roi_pooling": "roi_pool"}, "roi_pool"),
    ({"aligned": True, "sampling_ratio": 0}, "aligned"),
    ({"box_roi_size": 5, "mask_roi_size": 7}, "roi_sizes"),
    ({"mask_resolution": 14}, "mask14"),
    ({"mask_resolution": 56}, "mask56"),
    ({"mask_head_depth": 4, "class_agnostic_masks": True}, "deep_agnostic"),
    ({"mask_head_depth": 1, "mask_resolution": 56, "class_agnostic_masks": True}, "shallow_agnostic56"),
    ({"rpn_nms_thresh": 0.5, "box_nms_thresh": 0.3, "box_score_thresh": 0.0, "detections_per_img": 5}, "nms"),
]


@pytest.mark.parametrize(("settings", "kind"), SETTINGS, ids=[k for _, k in SETTINGS])
def test_every_setting_builds_a_model_that_trains_and_predicts(settings, kind):
    torch.manual_seed(0)
    det = DetectorConfig.from_dict(settings)
    model = build_model("tiny", num_classes=3, min_size=H, max_size=W, detector=det)
    heads = model.roi_heads
    sides = _mask_logit_side(model)
    images, targets = _batch()
    model.train()
    losses = model(images, targets)
    assert {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.roi_heads.mask_predictor.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    torch.optim.SGD(model.parameters(), lr=0.01).step()
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert len(out) == 2 and all(o["masks"].shape[1:] == (1, H, W) for o in out)
    assert sides and set(sides) == {det.mask_resolution}  # train and eval logits at the chosen resolution
    # the setting is in the built model
    sizes, ratios = det.anchors_for("tiny")
    assert model.rpn.anchor_generator.sizes == tuple(tuple(float(s) for s in lv) for lv in sizes) or \
        det.anchor_sizes is None
    assert model.rpn.head.cls_logits.out_channels == len(sizes[0]) * len(ratios)
    assert model.rpn.anchor_generator.aspect_ratios[0] == tuple(ratios)
    assert heads.box_roi_pool.output_size == (det.box_roi_size,) * 2
    assert heads.mask_roi_pool.output_size == (det.mask_roi_size,) * 2
    custom_pool = det.roi_pooling == "roi_pool" or det.aligned
    assert isinstance(heads.box_roi_pool, MultiScaleRoI) == custom_pool
    assert len(heads.mask_head) == (det.mask_head_depth or 2)
    assert isinstance(heads.mask_predictor, MaskPredictor) == (det.upsampling_stages() != 1 or det.class_agnostic_masks)
    if det.class_agnostic_masks:
        assert heads.mask_predictor.mask_fcn_logits.out_channels == 1
    assert (model.rpn.nms_thresh, heads.nms_thresh) == (det.rpn_nms_thresh, det.box_nms_thresh)
    assert (heads.score_thresh, heads.detections_per_img) == (det.box_score_thresh, det.detections_per_img)
    assert all(len(o["scores"]) <= det.detections_per_img for o in out)


def test_keypoint_branch_and_group_norm_heads_follow_the_settings():
    det = DetectorConfig(roi_pooling="roi_pool", keypoint_roi_size=7, mask_head_depth=3)
    model = build_model("tiny", num_classes=3, num_keypoints=3, min_size=H, max_size=W, head_norm="gn", detector=det)
    pool = model.roi_heads.keypoint_roi_pool
    assert isinstance(pool, MultiScaleRoI) and pool.mode == "roi_pool" and pool.output_size == (7, 7)
    assert len(model.roi_heads.mask_head) == 3
    assert sum(isinstance(m, nn.GroupNorm) for m in model.roi_heads.mask_head.modules()) == 3
    images, targets = _batch(num_keypoints=3)
    model.train()
    losses = model(images, targets)
    assert "loss_keypoint" in losses and torch.isfinite(sum(losses.values()))
    sum(losses.values()).backward()
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert all(o["keypoints"].shape[1:] == (3, 3) for o in out)


def _ramp_pool(mode: str, box: list[float], aligned: bool = False) -> list[list[float]]:
    """The 2x2 pooling (row-major) of one box on the 8x8 map f(x, y) = x + 10 y (one level, scale 1)."""
    ys, xs = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    feats = {"0": (xs + 10 * ys)[None, None]}
    pool = MultiScaleRoI(["0"], 2, 1, mode=mode, aligned=aligned)
    return pool(feats, [torch.tensor([box])], [(8, 8)])[0, 0].flatten().tolist()


def test_roi_pool_quantises_and_roi_align_interpolates_as_computed_by_hand():
    box, shifted = [1.2, 2.2, 5.2, 6.2], [1.4, 2.4, 5.4, 6.4]
    # RoIAlign, one sample per bin at its centre: bins of 2 px from (1.2, 2.2), samples at x = 2.2, 4.2 and
    # y = 3.2, 5.2; bilinear interpolation of a linear map is exact: f = x + 10 y
    assert _ramp_pool("roi_align", box) == pytest.approx([34.2, 36.2, 54.2, 56.2])
    # aligned: pixel centres at +0.5, so every sample sits half a pixel lower: x 1.7, 3.7 and y 2.7, 4.7
    assert _ramp_pool("roi_align", box, aligned=True) == pytest.approx([28.7, 30.7, 48.7, 50.7])
    # a sub-pixel shift moves every RoIAlign value by 0.2 + 10 * 0.2
    assert _ramp_pool("roi_align", shifted) == pytest.approx([36.4, 38.4, 56.4, 58.4])
    # RoIPool rounds the box to pixels 1..5 x 2..6 (5 x 5), bins of 2.5 px taken as floor..ceil:
    # columns 1-3 | 3-5, rows 2-4 | 4-6, and the max of each: x + 10 y at its bottom-right pixel
    assert _ramp_pool("roi_pool", box) == [43.0, 45.0, 63.0, 65.0]
    # ... the same for any box inside the same quantised cells: the sub-pixel shift is lost
    assert _ramp_pool("roi_pool", shifted) == _ramp_pool("roi_pool", box)


def test_the_built_models_match_the_torch_free_tables():
    # the anchor report and the settings table read these without building a model
    for backbone in ("tiny", "resnet50_fpn", "mobilenet_v3_large_fpn"):
        model = build_model(backbone, num_classes=2)
        assert model.rpn.anchor_generator.sizes == BACKBONE_ANCHOR_SIZES[backbone]
        assert model.rpn.anchor_generator.aspect_ratios[0] == (0.5, 1.0, 2.0)


def test_the_model_file_round_trips_the_architecture(tmp_path):
    cfg = TrainConfig(backbone="tiny", weights="none", min_size=H, max_size=W, detector={
        "anchor_sizes": [[8], [16], [32], [64]], "aspect_ratios": [0.3, 1, 3], "roi_pooling": "roi_pool",
        "mask_resolution": 56, "class_agnostic_masks": True, "detections_per_img": 7, "box_nms_thresh": 0.4})
    args = model_args(cfg, num_classes=3, num_keypoints=0)
    model = build_model(**args, weights="none").eval()
    schema = {"class_names": ["a", "b"], "keypoints": {}}
    save_atomic(model_file_payload(model, args, cfg.to_dict(), schema), tmp_path / "model.pt")
    loaded, info = load_trained_model(tmp_path / "model.pt")
    assert DetectorConfig.from_dict(info["model_args"]["detector"]) == cfg.detector
    assert loaded.rpn.anchor_generator.sizes == ((8.0,), (16.0,), (32.0,), (64.0,))
    assert isinstance(loaded.roi_heads.mask_roi_pool, MultiScaleRoI)
    assert (loaded.roi_heads.detections_per_img, loaded.roi_heads.nms_thresh) == (7, 0.4)
    image = [torch.rand(3, H, W, generator=torch.Generator().manual_seed(1))]
    with torch.no_grad():
        a, b = model(image)[0], loaded(image)[0]
    assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["masks"], b["masks"])
    # the config (run folder, resume) carries it as JSON and back
    assert TrainConfig.from_dict(cfg.to_dict()).detector == cfg.detector


@pytest.mark.parametrize(("detector", "message"), [
    ({"aspect_ratios": [0.5, 0, 2]}, "detector.aspect_ratios: 0 is not > 0"),
    ({"anchor_sizes": [[16], [32, 48], [64], [128]]}, "detector.anchor_sizes: every level needs the same number"),
    ({"anchor_sizes": [[16], [32], [64]]}, "detector.anchor_sizes: 3 levels given, the tiny backbone has 4"),
    ({"anchor_sizes": [[16], [-2], [64], [128]]}, "detector.anchor_sizes: -2 is not > 0"),
    ({"roi_pooling": "roi_warp"}, "detector.roi_pooling: 'roi_warp' is not one of"),
    ({"mask_resolution": 42}, "detector.mask_resolution: 42 is not one of"),
    ({"mask_roi_size": 10}, "detector.mask_resolution: 28 is not mask_roi_size (10)"),
    ({"box_nms_thresh": 0}, "detector.box_nms_thresh: 0 is not an IoU"),
    ({"sampling_ratio": -1}, "detector.sampling_ratio"),
    ({"mask_head_depth": 0}, "detector.mask_head_depth"),
    ({"anchor_size": [[16]]}, "detector.anchor_size: unknown detector setting"),
    ([1, 2], "detector: an object of detector settings"),
])
def test_invalid_settings_are_refused_with_the_setting_named(detector, message):
    with pytest.raises(ConfigError, match=f"^config: invalid training config: .*{_re(message)}"):
        TrainConfig.from_dict({"backbone": "tiny", "detector": detector})


def test_levels_are_checked_against_the_backbone_when_building_too():
    five = DetectorConfig(anchor_sizes=((32,), (64,), (128,), (256,), (512,)))
    with pytest.raises(DetectorConfigError, match="the tiny backbone has 4 FPN levels"):
        build_model("tiny", num_classes=2, detector=five)
    assert build_model("resnet50_fpn", num_classes=2, detector=five).rpn.anchor_generator.sizes[0] == (32.0,)


def _re(text: str) -> str:
    import re

    return re.escape(text)


def test_a_designed_run_trains_resumes_and_predicts_with_its_architecture(make_run):
    from workbench.train.loop import Trainer

    design = {"anchor_sizes": [[8, 16], [24, 32], [48, 64], [96, 128]], "roi_pooling": "roi_pool",
              "mask_resolution": 56, "detections_per_img": 9}
    run = make_run(n_train=2, epochs=1, eval_detections_per_img=10, detector=design)
    assert Trainer(run).train() == "succeeded"
    loaded, info = load_trained_model(run / "model.pt")
    assert loaded.rpn.head.cls_logits.out_channels == 6 and loaded.roi_heads.detections_per_img == 9
    assert isinstance(loaded.roi_heads.mask_predictor, MaskPredictor)
    # resume rebuilds the same architecture from the run's config and loads its checkpoint strictly
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert last["config"]["detector"]["anchor_sizes"] == design["anchor_sizes"]
    trainer = Trainer(run, TrainConfig.from_dict({**last["config"], "epochs": 2}), resume=True)
    assert trainer.train() == "succeeded" and trainer.state.resumed_from_step == 1


def test_the_resnet_v2_parts_keep_their_kind_when_resized():
    # v2: a 2-conv RPN head, BatchNorm conv heads; a redesigned part is built like the one it replaces
    det = DetectorConfig(anchor_sizes=((8, 16),) * 5, box_roi_size=5, mask_head_depth=2)
    model = build_model("resnet50_fpn_v2", num_classes=3, detector=det)
    assert len(model.rpn.head.conv) == 2 and model.rpn.head.cls_logits.out_channels == 6
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.roi_heads.mask_head.modules()) == 2
    linear = next(m for m in model.roi_heads.box_head.modules() if isinstance(m, nn.Linear))
    assert linear.in_features == 256 * 5 * 5
