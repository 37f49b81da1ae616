"""Prediction with a run's ``model.pt``: images in, domain Instances (RLE masks, boxes, keypoints) out.

The model file is loaded with ``weights_only=True`` (see :func:`workbench.train.model.load_trained_model`),
so a model file cannot run code. Masks are thresholded at 0.5 (torchvision pastes them as
probabilities at image size) and encoded as COCO RLE; keypoints are kept only for classes whose
schema they fit, since the keypoint head is class-agnostic.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.domain import ImageRecord, Instance, ValidationError
from workbench.geometry import mask_to_rle
from workbench.train.config import EVAL_DETECTIONS_PER_IMG, EVAL_SCORE_THRESH
from workbench.train.dataset import TrainingSchema
from workbench.train.model import detection_limits, load_trained_model

MASK_THRESHOLD = 0.5


def output_to_instances(
    output: dict[str, torch.Tensor],
    schema: TrainingSchema,
    size_wh: tuple[int, int],
    *,
    score_threshold: float = 0.0,
    mask_threshold: float = MASK_THRESHOLD,
) -> list[Instance]:
    """One torchvision detection output (eval mode) as Instances, highest score first.

    Detections whose mask is empty after thresholding are dropped (nothing to review); labels
    outside the schema (0 = background) are refused since they mean a model of another project.
    """
    w, h = int(size_wh[0]), int(size_wh[1])
    scores = output["scores"].detach().cpu().numpy().astype(np.float64)
    labels = output["labels"].detach().cpu().numpy().astype(np.int64)
    boxes = output["boxes"].detach().cpu().numpy().astype(np.float64)
    masks = None
    if "masks" in output:
        m = output["masks"].detach().cpu()
        if m.ndim == 4:
            m = m[:, 0]
        if len(m) and tuple(m.shape[-2:]) != (h, w):
            raise ValidationError(
                f"model masks are {tuple(m.shape[-2:])} (h, w) but the image is {w}x{h} (w x h)"
            )
        masks = (m > mask_threshold).numpy()
    kps = output["keypoints"].detach().cpu().numpy().astype(np.float64) if "keypoints" in output else None
    out: list[Instance] = []
    for i in np.argsort(-scores, kind="stable"):
        score = float(scores[i])
        if score < score_threshold:
            continue
        label = int(labels[i])
        if not 1 <= label <= len(schema.class_names):
            raise ValidationError(
                f"the model predicted label {label}; it knows {len(schema.class_names)} classes"
            )
        name = schema.class_names[label - 1]
        x0, y0, x1, y1 = (float(v) for v in boxes[i])
        x0, x1 = min(max(x0, 0.0), w), min(max(x1, 0.0), w)
        y0, y1 = min(max(y0, 0.0), h), min(max(y1, 0.0), h)
        rle = None
        if masks is not None:
            if not masks[i].any():
                continue
            rle = mask_to_rle(masks[i])
        keypoints = None
        kp_schema = schema.schema_of(name)
        if kps is not None and kp_schema is not None and kps.shape[1] >= kp_schema.num_keypoints:
            pts = kps[i, : kp_schema.num_keypoints]
            flat: list[float] = []
            for x, y, _v in pts:
                # torchvision marks every predicted keypoint visible; keep them all, inside the image
                flat += [float(min(max(x, 0.0), w)), float(min(max(y, 0.0), h)), 2]
            keypoints = tuple(flat)
        out.append(
            Instance(
                category=name,
                rle=rle,
                bbox_xywh=(x0, y0, max(x1 - x0, 0.0), max(y1 - y0, 0.0)),
                keypoints=keypoints,
                score=score,
                source="predicted",
            )
        )
    return out


def _writable(a: np.ndarray) -> np.ndarray:
    """torch refuses to wrap a read-only array (PIL's buffers are) without a warning; copy those."""
    a = np.ascontiguousarray(a)
    return a if a.flags.writeable else a.copy()



def image_batches(images: Iterable[np.ndarray], batch_size: int) -> Iterator[list[np.ndarray]]:
    """The images to predict in batches of ``batch_size``, each checked to be H x W x 3 uint8 first."""
    batch: list[np.ndarray] = []
    for arr in images:
        a = np.asarray(arr)
        if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
            raise ValidationError(f"an image to predict must be H x W x 3 uint8, got {a.shape} {a.dtype}")
        batch.append(a)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch

class Predictor:
    """A loaded model with its schema; call :meth:`predict` on H x W x 3 uint8 arrays."""

    def __init__(self, model_path: Path | str, *, device: str = "cpu") -> None:
        self.model_path = Path(model_path)
        self.device = torch.device(device)
        self.model, self.info = load_trained_model(self.model_path, self.device)
        self.schema = TrainingSchema.from_dict(self.info["schema"])

    @torch.no_grad()
    def predict(
        self,
        images: Iterable[np.ndarray],
        *,
        score_threshold: float = 0.0,
        batch_size: int = 2,
    ) -> list[list[Instance]]:
        """Instances per image, in the order given, with a score of at least ``score_threshold``.

        The model itself keeps detections down to that score (never below COCO's 0.001), at most 100
        per image: an evaluation that asks for 0.001 gets the low-score detections AP counts, which
        torchvision's own 0.05 would drop; a display threshold (Review's slider) drops the rest before
        their masks are pasted. Asked for 0, the floor is 0.001.
        """
        floor = max(float(score_threshold), EVAL_SCORE_THRESH)
        results: list[list[Instance]] = []
        for batch in image_batches(images, batch_size):
            tensors = [torch.from_numpy(_writable(a)).permute(2, 0, 1).float().div(255) for a in batch]
            with detection_limits(self.model, score_thresh=floor, detections_per_img=EVAL_DETECTIONS_PER_IMG):
                outputs = self.model([t.to(self.device) for t in tensors])
            for arr, output in zip(batch, outputs, strict=True):
                results.append(
                    output_to_instances(
                        output, self.schema, (arr.shape[1], arr.shape[0]), score_threshold=score_threshold
                    )
                )
        return results

    def predict_records(
        self, records: Sequence[ImageRecord], *, score_threshold: float = 0.0, batch_size: int = 2
    ) -> dict[int, list[Instance]]:
        """Predict stored images (``path`` absolute, as services.review hands them), upright."""
        from workbench.images.decode import image_to_rgb, load_upright

        def arrays() -> Iterable[np.ndarray]:
            for rec in records:
                if not rec.path:
                    raise ValidationError(f"{rec.file_name}: no image file to predict")
                try:
                    img = load_upright(Path(rec.path))
                except FileNotFoundError as exc:
                    raise ValidationError(f"{rec.file_name}: image file {rec.path} is missing") from exc
                arr = np.ascontiguousarray(np.asarray(image_to_rgb(img), dtype=np.uint8))
                if (arr.shape[1], arr.shape[0]) != (rec.width, rec.height):
                    raise ValidationError(
                        f"{rec.file_name}: the file is {arr.shape[1]}x{arr.shape[0]}, the store says "
                        f"{rec.width}x{rec.height}"
                    )
                yield arr

        out = self.predict(arrays(), score_threshold=score_threshold, batch_size=batch_size)
        return {int(rec.id): inst for rec, inst in zip(records, out, strict=True)}  # type: ignore[arg-type]


def predictor_info(predictor: Predictor) -> dict[str, Any]:
    """What the model file says about itself (classes, keypoints, config), for messages and the UI."""
    return {"model": str(predictor.model_path), **predictor.info}
