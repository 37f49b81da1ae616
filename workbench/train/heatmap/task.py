"""The keypoint-heatmap task for the trainer's registry (:mod:`workbench.train.tasks`).

The run folder is the one every task gets (COCO files of the train and val splits); the crops are
the instances of the classes with a keypoint schema (:mod:`.data`). Validation predicts each
ground-truth box of the val split (flip test averaged when ``heatmap.flip_test``) and reports
``pck`` (PCK@``pck_alpha`` of the box's longer side, the primary metric), ``oks_ap`` / ``oks_ap50``
/ ``oks_ap75`` / ``oks_ar`` (COCO keypoint AP on ground-truth boxes) and ``pck_<class>``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from workbench.domain import KeypointSchema, WorkbenchError
from workbench.train.heatmap.config import (
    ARCH_STRIDES,
    DEFAULT_ARCH,
    HeatmapConfig,
    config_problems,
    heatmap_config,
)
from workbench.train.heatmap.decode import decode_heatmaps, unflip_heatmaps
from workbench.train.heatmap.layout import ChannelLayout
from workbench.train.heatmap.metrics import KeypointPrediction, oks_ap, pck
from workbench.train.heatmap.models import HeatmapModel, build_network

if TYPE_CHECKING:
    from workbench.train.config import TrainConfig
    from workbench.train.heatmap.data import HeatmapDataset
    from workbench.train.loop import Trainer

TASK_NAME = "keypoints-heatmap"
MODEL_FORMAT = "workbench-heatmap/1"


def network_args(config: TrainConfig, num_channels: int) -> dict[str, Any]:
    """What rebuilds the network at load time (no weights)."""
    h = heatmap_config(config)
    arch = config.arch or DEFAULT_ARCH
    return {
        "arch": arch, "encoder": config.encoder, "num_channels": num_channels, "stacks": h.stacks, "depth": h.depth,
        "channels": h.channels, "unet_levels": h.unet_levels, "input_size": list(h.input_size),
        "stride": ARCH_STRIDES[arch],
    }


def build_heatmap_model(args: dict[str, Any], *, weights: str = "none") -> HeatmapModel:
    return HeatmapModel(build_network(args["arch"], int(args["num_channels"]), args, weights=weights))


def layout_from_categories(categories: Iterable[Any], cfg: HeatmapConfig) -> ChannelLayout:
    schemas: list[tuple[str, KeypointSchema]] = [
        (c.name, c.keypoints) for c in categories if not c.is_ignore and c.keypoints is not None
    ]
    if not schemas:
        raise WorkbenchError("task keypoints-heatmap: no class of the dataset has a keypoint schema")
    return ChannelLayout.from_schemas(schemas, cfg.flip_pairs)


@torch.no_grad()
def predict_heatmaps(
    model: nn.Module, images: torch.Tensor, flip_permutation: Sequence[int] | None
) -> np.ndarray:
    """B x C x h x w heatmaps (float32, CPU) of a batch of crops; with a permutation, the flip test's
    average of the crop and its mirror."""
    out = model(images).float()
    if flip_permutation is not None:
        mirrored = model(torch.flip(images, dims=[3])).float().cpu().numpy()
        return 0.5 * (out.cpu().numpy() + unflip_heatmaps(mirrored, flip_permutation))
    return out.cpu().numpy()


def predict_dataset(
    model: nn.Module, dataset: HeatmapDataset, loader: Iterable[Any], device: torch.device, cfg: HeatmapConfig
) -> list[KeypointPrediction]:
    """One prediction per crop of ``dataset`` (unaugmented), in natural image pixels."""
    was_training = model.training
    model.eval()
    perm = dataset.layout.channel_flip_permutation() if cfg.flip_test else None
    preds: list[KeypointPrediction] = []
    try:
        for images, targets in loader:
            batch = torch.stack([im.to(device) for im in images])
            hms = predict_heatmaps(model, batch, perm)
            for hm, tgt in zip(hms, targets, strict=True):
                i = int(tgt["index"])
                c = dataset.crops[i]
                kp = decode_heatmaps(hm[dataset.layout.channels(c.category)], dataset.transform(i), dataset.stride,
                                     method=cfg.decoding)
                preds.append(KeypointPrediction(c.image_id, c.category, c.box_xywh, c.keypoints, kp))
    finally:
        model.train(was_training)
    return preds


def keypoint_metrics(
    preds: Sequence[KeypointPrediction], gt: dict[str, Any], cfg: HeatmapConfig
) -> dict[str, float]:
    res = pck(preds, cfg.pck_alpha)
    out: dict[str, float] = {"pck": float(res["pck"] or 0.0), "num_crops": float(len(preds))}
    out.update({f"pck_{k}": float(v) for k, v in res["per_class"].items()})
    out.update(oks_ap(gt, preds, kpt_oks_sigmas=cfg.kpt_oks_sigmas))
    return out


class HeatmapTask:
    name = TASK_NAME
    primary_metric = "pck"

    def check_config(self, config: TrainConfig) -> list[str]:
        return config_problems(config)

    def setup_data(self, trainer: Trainer) -> None:
        from workbench.train.dataset import load_run_splits, make_loader, schema_from_categories
        from workbench.train.heatmap.data import HeatmapDataset
        from workbench.train.sampler import GroupedBatchSampler

        cfg = trainer.config
        hcfg = heatmap_config(cfg)
        stride = ARCH_STRIDES[cfg.arch or DEFAULT_ARCH]
        data_dir = trainer.run_dir / "dataset"
        train_ds, val_ds = load_run_splits(data_dir)
        val_path = data_dir / "coco_val.json"
        trainer.schema = schema_from_categories(train_ds.categories)
        trainer.layout = layout_from_categories(train_ds.categories, hcfg)
        trainer.train_set = HeatmapDataset(train_ds.items, trainer.layout, hcfg, stride, train=True, seed=cfg.seed)
        if not len(trainer.train_set):
            raise WorkbenchError(
                f"{data_dir / 'coco_train.json'}: no instance of a keypoint class with a labelled keypoint to train on"
            )
        trainer.sampler = GroupedBatchSampler(
            trainer.train_set.aspect_ratios(), cfg.batch_size, seed=cfg.seed, group=False,
            rank=trainer.rank, world_size=trainer.world_size,
        )
        pin = trainer.device.type == "cuda"
        trainer.train_loader = make_loader(trainer.train_set, trainer.sampler, num_workers=cfg.num_workers, pin_memory=pin)
        if val_ds is not None and any(HeatmapDataset(val_ds.items, trainer.layout, hcfg, stride, train=False).crops):
            trainer.val_gt = json.loads(val_path.read_text())
            val_items, trainer.val_on = val_ds.items, "val"
        else:  # validate on the (unaugmented) training crops
            trainer.val_gt = json.loads((data_dir / "coco_train.json").read_text())
            val_items, trainer.val_on = train_ds.items, "train"
        trainer.val_set = HeatmapDataset(val_items, trainer.layout, hcfg, stride, train=False, seed=cfg.seed)
        trainer.val_loader = make_loader(
            trainer.val_set, None, num_workers=min(cfg.num_workers, 2), pin_memory=pin, batch_size=max(cfg.batch_size, 8)
        )

    def build_model(self, trainer: Trainer) -> nn.Module:
        cfg = trainer.config
        trainer.model_args = network_args(cfg, trainer.layout.num_channels)
        weights = cfg.weights if cfg.weights in ("imagenet", "none") else "none"
        model = build_heatmap_model(trainer.model_args, weights=weights)
        if cfg.weights not in ("coco", "imagenet", "none"):
            load_weights_file(model, Path(cfg.weights))
        return model.to(trainer.device)

    def validate(self, trainer: Trainer, model: nn.Module) -> dict[str, float]:
        hcfg = heatmap_config(trainer.config)
        preds = predict_dataset(model, trainer.val_set, trainer.val_loader, trainer.device, hcfg)
        return keypoint_metrics(preds, trainer.val_gt, hcfg)

    def model_file_payload(self, trainer: Trainer) -> dict[str, Any]:
        from workbench.train.model import unwrap

        return {
            "format": MODEL_FORMAT,
            "task": TASK_NAME,
            "state_dict": {k: v.detach().cpu() for k, v in unwrap(trainer.model).state_dict().items()},
            "model_args": dict(trainer.model_args),
            "config": trainer.config.to_dict(),
            "class_names": list(trainer.schema.class_names),
            "schema": trainer.schema.to_dict(),
            "layout": trainer.layout.to_dict(),
        }


def load_weights_file(model: nn.Module, path: Path) -> None:
    """Initialise from a checkpoint or model file (weights_only); the tensors whose names and shapes fit."""
    from workbench.train.model import _checkpoint_state, load_matching

    loaded, _ = load_matching(model, _checkpoint_state(path))
    if loaded == 0:
        raise WorkbenchError(f"{path}: no tensor of this checkpoint fits the heatmap model")


def load_heatmap_model(path: Path, device: str | torch.device = "cpu") -> tuple[HeatmapModel, dict[str, Any]]:
    """A heatmap model file for prediction: (model in eval mode, payload without the state dict)."""
    from workbench.train.checkpoint import read_torch_file, unreadable

    payload = read_torch_file(Path(path))
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise unreadable(Path(path), f"not a workbench model file of format {MODEL_FORMAT}")
    try:
        model = build_heatmap_model(payload["model_args"])
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise unreadable(Path(path), f"its weights do not fit the model it describes ({type(exc).__name__})") from None
    model.to(device).eval()
    return model, {k: v for k, v in payload.items() if k != "state_dict"}


TASK = HeatmapTask()
