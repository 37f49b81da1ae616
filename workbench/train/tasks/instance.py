"""The instance task: Mask R-CNN on the run's COCO files (boxes, masks, keypoints), as the trainer
always ran it; its parts moved here from the loop unchanged."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from torch import nn

from workbench.augment import Augmenter
from workbench.domain import WorkbenchError
from workbench.train.config import TrainConfig
from workbench.train.dataset import (
    MaskRCNNDataset,
    load_run_splits,
    make_loader,
    mix_policy,
    schema_from_categories,
)
from workbench.train.model import build_model, model_args, model_file_payload
from workbench.train.sampler import GroupedBatchSampler
from workbench.train.validation import evaluate_model

if TYPE_CHECKING:
    from workbench.train.loop import Trainer


class InstanceTask:
    name = "instance"
    primary_metric = "segm_ap"

    def check_config(self, config: TrainConfig) -> list[str]:
        return []

    def setup_data(self, trainer: Trainer) -> None:
        cfg = trainer.config
        data_dir = trainer.run_dir / "dataset"
        train_ds, val_ds = load_run_splits(data_dir)
        val_path = data_dir / "coco_val.json"
        trainer.schema = schema_from_categories(train_ds.categories)
        if not train_ds.items:
            raise WorkbenchError(f"{data_dir / 'coco_train.json'}: no training images")
        augmenter = Augmenter(cfg.augmentation, min_area_px=cfg.min_instance_area)
        trainer.train_set = MaskRCNNDataset(train_ds.items, trainer.schema, augmenter, seed=cfg.seed, mix=mix_policy(cfg))
        trainer.sampler = GroupedBatchSampler(
            trainer.train_set.aspect_ratios(),
            cfg.batch_size,
            seed=cfg.seed,
            group=cfg.aspect_ratio_grouping,
            rank=trainer.rank,
            world_size=trainer.world_size,
        )
        pin = trainer.device.type == "cuda"
        trainer.train_loader = make_loader(trainer.train_set, trainer.sampler, num_workers=cfg.num_workers, pin_memory=pin)
        # Validate on val when there is one, else on the (unaugmented) training images.
        if val_ds is not None and val_ds.items:
            trainer.val_gt = json.loads(val_path.read_text())
            val_items, trainer.val_on = val_ds.items, "val"
        else:
            trainer.val_gt = json.loads((data_dir / "coco_train.json").read_text())
            val_items, trainer.val_on = train_ds.items, "train"
        trainer.val_set = MaskRCNNDataset(val_items, trainer.schema, None, seed=cfg.seed)
        trainer.val_loader = make_loader(
            trainer.val_set, None, num_workers=min(cfg.num_workers, 2), pin_memory=pin, batch_size=cfg.batch_size
        )

    def build_model(self, trainer: Trainer) -> nn.Module:
        cfg, schema = trainer.config, trainer.schema
        trainer.model_args = model_args(cfg, schema.num_classes, schema.num_keypoints)
        return build_model(
            cfg.backbone,
            num_classes=schema.num_classes,
            num_keypoints=schema.num_keypoints,
            weights=cfg.weights,
            min_size=cfg.min_size,
            max_size=cfg.max_size,
            trainable_backbone_layers=cfg.trainable_backbone_layers,
            head_norm=cfg.head_norm,
            detector_kwargs=cfg.detector_kwargs(),
        ).to(trainer.device)

    def validate(self, trainer: Trainer, model: nn.Module) -> dict[str, float]:
        cfg = trainer.config
        return evaluate_model(
            model, trainer.val_loader, trainer.val_gt, trainer.schema, trainer.device,
            score_thresh=cfg.eval_score_thresh, detections_per_img=cfg.eval_detections_per_img,
        )

    def model_file_payload(self, trainer: Trainer) -> dict[str, Any]:
        return model_file_payload(trainer.model, trainer.model_args, trainer.config.to_dict(), trainer.schema.to_dict())


TASK = InstanceTask()
