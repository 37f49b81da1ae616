"""Prediction with a heatmap run's ``model.pt``: an image and the boxes of its keypoint-class
instances in, one Instance per box out (the box, the class, the decoded keypoints, the mean score).

Top-down: the model predicts keypoints inside boxes it is given (the stored annotations' boxes, as
the metrics use ground-truth boxes), it does not find objects. A predicted keypoint is marked
visible (v = 2) and kept inside the image, as the Mask R-CNN predictor does; its score is the
heatmap maximum, the instance's score their mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from workbench.domain import ImageRecord, Instance, ValidationError
from workbench.train.heatmap.config import HeatmapConfig
from workbench.train.heatmap.crops import CropTransform
from workbench.train.heatmap.decode import decode_heatmaps
from workbench.train.heatmap.layout import ChannelLayout
from workbench.train.heatmap.task import load_heatmap_model, predict_heatmaps

BATCH = 16


def is_heatmap_model(path: Path | str) -> bool:
    """Whether ``path`` is a heatmap model file (read with weights_only, as every model file)."""
    from workbench.train.checkpoint import read_torch_file
    from workbench.train.heatmap.task import MODEL_FORMAT

    payload = read_torch_file(Path(path))
    return isinstance(payload, dict) and payload.get("format") == MODEL_FORMAT


class HeatmapPredictor:
    """A loaded heatmap model with its channel layout and crop settings."""

    def __init__(self, model_path: Path | str, *, device: str = "cpu") -> None:
        self.model_path = Path(model_path)
        self.device = torch.device(device)
        self.model, self.info = load_heatmap_model(self.model_path, self.device)
        self.layout = ChannelLayout.from_dict(self.info["layout"])
        self.cfg = HeatmapConfig.from_dict(self.info["config"].get("heatmap"))
        self.stride = int(self.info["model_args"]["stride"])

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.layout.class_names

    def boxes_of(self, instances: Iterable[Instance]) -> list[tuple[Instance, tuple[float, float, float, float]]]:
        """The instances this model predicts keypoints for (its classes, with a box), with the box."""
        out = []
        for inst in instances:
            if inst.iscrowd or inst.category not in self.layout.class_names or inst.bbox_xywh is None:
                continue
            x, y, w, h = (float(v) for v in inst.bbox_xywh)
            if w > 0 and h > 0:
                out.append((inst, (x, y, w, h)))
        return out

    @torch.no_grad()
    def predict(self, image: np.ndarray, instances: Sequence[Instance]) -> list[Instance]:
        """One predicted Instance per box of a keypoint class in ``instances``, in their order."""
        a = np.asarray(image)
        if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
            raise ValidationError(f"an image to predict must be H x W x 3 uint8, got {a.shape} {a.dtype}")
        h, w = a.shape[:2]
        todo = self.boxes_of(instances)
        perm = self.layout.channel_flip_permutation() if self.cfg.flip_test else None
        out: list[Instance] = []
        for start in range(0, len(todo), BATCH):
            part = todo[start : start + BATCH]
            transforms = [CropTransform.from_box(box, self.cfg.input_size, padding=self.cfg.padding) for _, box in part]
            crops = np.stack([t.warp(a) for t in transforms])
            batch = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div_(255.0).to(self.device)
            hms = predict_heatmaps(self.model, batch, perm)
            for (inst, box), t, hm in zip(part, transforms, hms, strict=True):
                kp = decode_heatmaps(hm[self.layout.channels(inst.category)], t, self.stride, method=self.cfg.decoding)
                flat: list[float] = []
                for x, y, _s in kp:
                    flat += [float(min(max(x, 0.0), w)), float(min(max(y, 0.0), h)), 2]
                out.append(Instance(
                    category=inst.category, bbox_xywh=box, keypoints=tuple(flat),
                    score=float(np.clip(kp[:, 2].mean(), 0.0, 1.0)), source="predicted",
                ))
        return out

    def predict_records(
        self, records: Sequence[ImageRecord], instances: Mapping[int, Sequence[Instance]]
    ) -> dict[int, list[Instance]]:
        """Predict stored images (``path`` absolute), each on the boxes of its own instances."""
        from workbench.images.decode import image_to_rgb, load_upright

        out: dict[int, list[Instance]] = {}
        for rec in records:
            boxes = instances.get(int(rec.id), ())  # type: ignore[arg-type]
            if not self.boxes_of(boxes):
                out[int(rec.id)] = []  # type: ignore[arg-type]
                continue
            if not rec.path:
                raise ValidationError(f"{rec.file_name}: no image file to predict")
            try:
                img = load_upright(Path(rec.path))
            except FileNotFoundError as exc:
                raise ValidationError(f"{rec.file_name}: image file {rec.path} is missing") from exc
            arr = np.ascontiguousarray(np.asarray(image_to_rgb(img), dtype=np.uint8))
            out[int(rec.id)] = self.predict(arr, boxes)  # type: ignore[arg-type]
        return out
