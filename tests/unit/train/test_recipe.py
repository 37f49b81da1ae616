"""The training recipe's knobs (issue 17): EMA, lr per batch size, short-run warmup, RoI/RPN sampling,
COCO evaluation limits, GroupNorm heads. Each against a hand computation or the built model."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tests.support.training import tiny_config
from workbench.train.config import ConfigError, TrainConfig
from workbench.train.ema import ModelEMA
from workbench.train.hooks import read_metrics
from workbench.train.loop import Trainer, lr_factor
from workbench.train.model import build_model, detection_limits


class _Tiny(nn.Module):
    """A parameter, a float buffer and an integer buffer: what the EMA averages and what it copies."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.register_buffer("running", torch.zeros(2))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))


def _set(model: _Tiny, w: float, b: float, running: float, count: int) -> None:
    with torch.no_grad():
        model.lin.weight.fill_(w)
        model.lin.bias.fill_(b)
        model.running.fill_(running)
        model.count.fill_(count)


def test_ema_update_matches_a_hand_computation():
    model = _Tiny()
    _set(model, 1.0, -1.0, 0.0, 0)
    ema = ModelEMA(model, decay=0.9, tau=2.0)
    assert ema.updates == 0 and not any(p.requires_grad for p in ema.module.parameters())
    expected_w, expected_b = 1.0, -1.0
    for step, (w, b) in enumerate([(3.0, 5.0), (-2.0, 0.5), (4.0, 4.0)], start=1):
        _set(model, w, b, running=10.0 * step, count=step)
        ema.update(model)
        d = 0.9 * (1 - math.exp(-step / 2.0))  # Ultralytics: decay * (1 - exp(-updates / tau))
        expected_w = d * expected_w + (1 - d) * w
        expected_b = d * expected_b + (1 - d) * b
        assert ema.updates == step and ema.decay(step) == pytest.approx(d)
        assert ema.module.lin.weight.detach().flatten().tolist() == pytest.approx([expected_w, expected_w])
        assert float(ema.module.lin.bias) == pytest.approx(expected_b)
        # buffers are the model's own, copied (not averaged)
        assert ema.module.running.tolist() == [10.0 * step] * 2 and int(ema.module.count) == step
    # the model's own weights are untouched, and the average restores from its state
    assert float(model.lin.bias.detach()) == 4.0
    other = ModelEMA(_Tiny(), decay=0.9, tau=2.0)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 3 and float(other.module.lin.bias) == pytest.approx(expected_b)


def test_ema_run_validates_and_saves_the_average_and_resumes_it(make_run):
    # one step an epoch, 10 detections an image: the test is about the weights, not the AP
    run = make_run(n_train=2, n_val=2, epochs=2, eval_every=1, ema=True, ema_tau=3.0, eval_detections_per_img=10)
    assert Trainer(run).train() == "succeeded"
    best = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert last["ema"]["updates"] == last["state"]["global_step"] == 2
    assert best["ema"]["updates"] == best["state"]["epoch"]
    # best.pt is chosen on the val split: the first epoch of the highest val mask AP
    vals = [r for r in read_metrics(run) if r["type"] == "val"]
    assert [v["on"] for v in vals] == ["val", "val"]
    top = max(v["segm_ap"] for v in vals)
    assert best["state"]["best_epoch"] == next(v["epoch"] for v in vals if v["segm_ap"] == top)
    payload = torch.load(run / "model.pt", weights_only=True)
    # model.pt holds the average that validated best, not the raw weights of that epoch
    key = "roi_heads.box_predictor.cls_score.weight"
    assert torch.equal(payload["state_dict"][key], best["ema"]["state_dict"][key])
    assert not torch.equal(best["model"][key], best["ema"]["state_dict"][key])
    # a resumed run continues the same average: its update count goes on from the checkpoint
    longer = TrainConfig.from_dict({**last["config"], "epochs": 3})
    trainer = Trainer(run, longer, resume=True)
    assert trainer.train() == "succeeded"
    assert trainer.ema is not None and trainer.ema.updates == 3


def test_lr_scales_with_the_batch_size_by_the_rule():
    # today's automatic lr: SGD linear from 0.02 at 16 images (torchvision's reference), AdamW 1e-4 flat
    for batch in (1, 2, 8, 32):
        assert TrainConfig(optimizer="sgd", batch_size=batch).base_lr == pytest.approx(0.02 * batch / 16)
        assert TrainConfig(optimizer="adamw", batch_size=batch).base_lr == pytest.approx(1e-4)
    # an explicit lr is used as given unless a rule is named
    assert TrainConfig(optimizer="sgd", lr=0.01, batch_size=4).base_lr == pytest.approx(0.01)
    sqrt = TrainConfig(optimizer="adamw", lr=2e-3, lr_scaling="sqrt", lr_reference_batch=2, batch_size=8)
    assert sqrt.base_lr == pytest.approx(2e-3 * 2.0)  # sqrt(8 / 2)
    lin = TrainConfig(optimizer="adamw", lr=1e-3, lr_scaling="linear", lr_reference_batch=4, batch_size=2)
    assert lin.base_lr == pytest.approx(5e-4)
    assert TrainConfig(optimizer="sgd", lr_scaling="none", batch_size=2).base_lr == pytest.approx(0.02)
    with pytest.raises(ConfigError, match="lr_scaling 'cubic'"):
        TrainConfig(lr_scaling="cubic")


def test_the_trainer_steps_at_the_scaled_lr(make_run):
    run = make_run(n_train=4, epochs=1, optimizer="adamw", lr=1e-3, lr_scaling="sqrt", lr_reference_batch=8,
                   batch_size=2, warmup_iters=0, scheduler="step")
    trainer = Trainer(run)
    trainer._setup_data()
    trainer._setup_model()
    trainer.state.total_steps = 2
    trainer._set_lr()
    assert isinstance(trainer.optimizer, torch.optim.AdamW)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * math.sqrt(2 / 8))


def test_warmup_fits_a_short_run():
    cfg = TrainConfig(warmup_iters=200, warmup_fraction=0.1, warmup_factor=0.001)
    assert cfg.warmup_steps(100) == 10 and cfg.warmup_steps(10_000) == 200
    f = [lr_factor(s, 100, cfg) for s in range(100)]
    assert f[0] == pytest.approx(0.001) and f[5] < f[9] < f[10]
    assert f[10] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.1)))  # warm from step 10: cosine alone
    # without the cap a 100-step run never leaves its warmup (what the cap is for)
    uncapped = TrainConfig(warmup_iters=200, warmup_factor=0.001)
    assert uncapped.warmup_steps(100) == 200 and lr_factor(99, 100, uncapped) < 0.5 * f[50]
    with pytest.raises(ConfigError, match="warmup_fraction"):
        TrainConfig(warmup_fraction=1.5)


def test_rpn_and_roi_sampling_reach_the_built_model(make_run):
    run = make_run(n_train=2, rpn_batch_size_per_image=64, rpn_positive_fraction=0.25,
                   box_batch_size_per_image=32, box_positive_fraction=0.5, rpn_post_nms_top_n_train=100)
    trainer = Trainer(run)
    trainer._setup_data()
    trainer._setup_model()
    model = trainer.model
    assert model.rpn.fg_bg_sampler.batch_size_per_image == 64
    assert model.rpn.fg_bg_sampler.positive_fraction == 0.25
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == 32
    assert model.roi_heads.fg_bg_sampler.positive_fraction == 0.5
    assert model.rpn._post_nms_top_n["training"] == 100
    # unset: the backbone's own (tiny: 128 RoIs, torchvision's 256 anchors), as before
    default = build_model("tiny", num_classes=3, detector_kwargs=tiny_config().detector_kwargs())
    assert default.roi_heads.fg_bg_sampler.batch_size_per_image == 128
    assert default.rpn.fg_bg_sampler.batch_size_per_image == 256
    with pytest.raises(ConfigError, match="box_batch_size_per_image must be at least 1"):
        TrainConfig(box_batch_size_per_image=0)


class _Seen:
    """A forward pre-hook on the RoI heads: the detection limits in force at each call."""

    def __init__(self, model: nn.Module) -> None:
        self.calls: list[tuple[float, int, bool]] = []
        model.roi_heads.register_forward_pre_hook(self)

    def __call__(self, module: nn.Module, args: object) -> None:
        self.calls.append((module.score_thresh, module.detections_per_img, module.training))


class _Watched(Trainer):
    def _setup_model(self) -> None:
        super()._setup_model()
        self.seen = _Seen(self.model)


def test_validation_keeps_detections_down_to_the_coco_score(make_run):
    assert TrainConfig().eval_score_thresh == 0.001 and TrainConfig().eval_detections_per_img == 100
    run = make_run(n_train=2, n_val=2, epochs=1, eval_every=1, batch_size=2)
    trainer = _Watched(run)
    assert trainer.train() == "succeeded"
    evals = [c for c in trainer.seen.calls if not c[2]]
    assert evals and all(c[:2] == (0.001, 100) for c in evals)
    # outside validation the model keeps torchvision's own limits (model.pt loads with them)
    assert (trainer.model.roi_heads.score_thresh, trainer.model.roi_heads.detections_per_img) == (0.05, 100)


def test_detection_limits_restore_the_models_own():
    model = build_model("tiny", num_classes=3).eval()
    with detection_limits(model, score_thresh=0.001, detections_per_img=7):
        assert (model.roi_heads.score_thresh, model.roi_heads.detections_per_img) == (0.001, 7)
        out = model([torch.rand(3, 64, 96)])
        assert len(out[0]["scores"]) <= 7
    assert (model.roi_heads.score_thresh, model.roi_heads.detections_per_img) == (0.05, 100)


def test_group_norm_heads_build_train_and_reload(make_run):
    from workbench.train.model import load_trained_model

    model = build_model("tiny", num_classes=3, head_norm="gn")
    assert any(isinstance(m, nn.GroupNorm) for m in model.roi_heads.box_head.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in model.roi_heads.mask_head.modules())
    plain = build_model("tiny", num_classes=3)
    assert not any(isinstance(m, nn.GroupNorm) for m in plain.roi_heads.modules())
    run = make_run(n_train=2, epochs=1, head_norm="gn", eval_detections_per_img=10)
    assert Trainer(run).train() == "succeeded"
    loaded, info = load_trained_model(run / "model.pt")
    assert info["model_args"]["head_norm"] == "gn"
    assert any(isinstance(m, nn.GroupNorm) for m in loaded.roi_heads.box_head.modules())
    with pytest.raises(ConfigError, match="head_norm 'gn' is for the tiny backbone"):
        TrainConfig(backbone="resnet50_fpn", head_norm="gn")


def test_a_model_file_written_before_these_settings_still_loads(tmp_path):
    from workbench.train.checkpoint import save_atomic
    from workbench.train.model import load_trained_model, model_file_payload

    model = build_model("tiny", num_classes=3)
    args = {"backbone": "tiny", "num_classes": 3, "num_keypoints": 0, "min_size": None, "max_size": None}
    schema = {"class_names": ["a", "b"], "keypoints": {}}
    save_atomic(model_file_payload(model, args, tiny_config().to_dict(), schema), tmp_path / "model.pt")
    loaded, info = load_trained_model(tmp_path / "model.pt")
    assert "head_norm" not in info["model_args"]
    key = "roi_heads.box_head.fc6.weight"
    assert torch.equal(loaded.state_dict()[key], model.state_dict()[key])
