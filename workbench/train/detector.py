"""DetectorConfig: the Mask R-CNN parts a user designs (anchors, RoI pooling, heads, NMS), as plain JSON.

Torch-free, so the config, the CLI and the anchor report read it without loading torch; the model is
built from it in :mod:`workbench.train.detector_build`. Every default reproduces the model as the
backbone builds it (``None`` means "the backbone's own"), so a config or model file without the
``detector`` key builds the same model as before these settings existed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from workbench.domain import ValidationError

ROI_POOLINGS = ("roi_align", "roi_pool")
MASK_RESOLUTIONS = (14, 28, 56)

BACKBONE_ANCHOR_SIZES: dict[str, tuple[tuple[float, ...], ...]] = {
    "tiny": ((16,), (32,), (64,), (128,)),
    "resnet50_fpn": ((32,), (64,), (128,), (256,), (512,)),
    "resnet50_fpn_v2": ((32,), (64,), (128,), (256,), (512,)),
    "mobilenet_v3_large_fpn": ((32, 64, 128, 256, 512),) * 3,
}
"""Each backbone's anchor sizes per FPN level, as :mod:`workbench.train.model` builds it (a test
checks this table against the built models)."""
BACKBONE_STRIDES: dict[str, tuple[int, ...]] = {
    "tiny": (8, 16, 32, 64),
    "resnet50_fpn": (4, 8, 16, 32, 64),
    "resnet50_fpn_v2": (4, 8, 16, 32, 64),
    "mobilenet_v3_large_fpn": (16, 32, 64),
}
"""The pixel stride of each FPN level's grid, where its anchors sit."""
DEFAULT_ASPECT_RATIOS: tuple[float, ...] = (0.5, 1.0, 2.0)
"""Height / width, torchvision's convention, the same at every level."""
BACKBONE_MASK_HEAD_DEPTH = {"tiny": 2}
"""Convs in the mask head; 4 (the paper's) for every other backbone."""
DEFAULT_SIZES = {"tiny": (160, 320)}
"""(min_size, max_size) the model resizes to; (800, 1333) for every other backbone."""


class DetectorConfigError(ValidationError):
    """A detector setting that cannot build a model; the message names the setting."""


def input_size(backbone: str, min_size: int | None, max_size: int | None) -> tuple[int, int]:
    """(shorter side, longest side cap) of the model's resize, as :func:`build_model` sets them."""
    default_min, default_max = DEFAULT_SIZES.get(backbone, (800, 1333))
    lo = int(min_size or default_min)
    return lo, int(max_size or max(default_max, lo))


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    anchor_sizes: tuple[tuple[float, ...], ...] | None = None
    """Anchor sizes (sqrt of the area, pixels of the resized image) per FPN level, finest first; the
    same count at every level. None: the backbone's (tiny 16..128, ResNet 32..512)."""
    aspect_ratios: tuple[float, ...] | None = None
    """Anchor height / width, the same at every level; None: (0.5, 1, 2)."""
    roi_pooling: str = "roi_align"
    """roi_align (bilinear samples of the grid, Mask R-CNN's) or roi_pool (Fast R-CNN's max over cells
    rounded to the grid), for the box, mask and keypoint branches."""
    sampling_ratio: int = 2
    """RoIAlign's sample points per bin side; 0: adaptive (ceil(roi / output size))."""
    aligned: bool = False
    """RoIAlign with the half-pixel offset (Detectron2's ROIAlignV2); torchvision's models use False."""
    box_roi_size: int = 7
    mask_roi_size: int = 14
    keypoint_roi_size: int = 14
    mask_head_depth: int | None = None
    """Convs in the mask FCN; None: the backbone's (4, tiny 2)."""
    mask_resolution: int = 28
    """Mask logits per side: ``mask_roi_size`` times 1, 2 or 4 (0, 1 or 2 upsampling stages)."""
    class_agnostic_masks: bool = False
    """One mask per RoI for every class (fewer weights, Detectron2's CLS_AGNOSTIC_MASK) instead of one per class."""
    rpn_nms_thresh: float = 0.7
    box_nms_thresh: float = 0.5
    box_score_thresh: float = 0.05
    """Lowest score a prediction keeps (evaluation uses 0.001 for AP, whatever this says)."""
    detections_per_img: int = 100

    def __post_init__(self) -> None:
        # JSON lists (or a caller's lists) become tuples: the config is frozen and hashable
        if isinstance(self.anchor_sizes, list | tuple):
            sizes = tuple(tuple(lv) if isinstance(lv, list | tuple) else lv for lv in self.anchor_sizes)
            object.__setattr__(self, "anchor_sizes", sizes)
        if isinstance(self.aspect_ratios, list | tuple):
            object.__setattr__(self, "aspect_ratios", tuple(self.aspect_ratios))
        problems = self.problems()
        if problems:
            raise DetectorConfigError("; ".join(problems))

    def problems(self, backbone: str | None = None) -> list[str]:
        """Each invalid setting in one phrase naming it (``detector.<name>``); with ``backbone``, also
        the anchor levels against its FPN levels."""
        out: list[str] = []

        def bad(name: str, why: str) -> None:
            out.append(f"detector.{name}: {why}")

        if self.anchor_sizes is not None:
            levels = self.anchor_sizes
            if not levels or not all(isinstance(lv, tuple) and lv for lv in levels):
                bad("anchor_sizes", "one non-empty list of sizes per FPN level, e.g. [[16], [32], [64], [128]]")
            else:
                for lv in levels:
                    for s in lv:
                        if not (_number(s) and s > 0):
                            bad("anchor_sizes", f"{s!r} is not > 0")
                if len({len(lv) for lv in levels}) > 1:
                    bad("anchor_sizes", f"every level needs the same number of sizes, got {[len(lv) for lv in levels]}")
                if backbone in BACKBONE_STRIDES and len(levels) != len(BACKBONE_STRIDES[backbone]):
                    bad("anchor_sizes", f"{len(levels)} levels given, the {backbone} backbone has "
                        f"{len(BACKBONE_STRIDES[backbone])} FPN levels")
        if self.aspect_ratios is not None:
            if not self.aspect_ratios:
                bad("aspect_ratios", "at least one ratio")
            for r in self.aspect_ratios:
                if not (_number(r) and r > 0):
                    bad("aspect_ratios", f"{r!r} is not > 0")
        if self.roi_pooling not in ROI_POOLINGS:
            bad("roi_pooling", f"{self.roi_pooling!r} is not one of {list(ROI_POOLINGS)}")
        if not _integer(self.sampling_ratio) or self.sampling_ratio < 0:
            bad("sampling_ratio", f"{self.sampling_ratio!r} is not an integer >= 0")
        if not isinstance(self.aligned, bool):
            bad("aligned", f"{self.aligned!r} is not true or false")
        if not isinstance(self.class_agnostic_masks, bool):
            bad("class_agnostic_masks", f"{self.class_agnostic_masks!r} is not true or false")
        for name in ("box_roi_size", "mask_roi_size", "keypoint_roi_size", "detections_per_img"):
            v = getattr(self, name)
            if not _integer(v) or v < 1:
                bad(name, f"{v!r} is not an integer >= 1")
        if self.mask_head_depth is not None and (not _integer(self.mask_head_depth) or self.mask_head_depth < 1):
            bad("mask_head_depth", f"{self.mask_head_depth!r} is not an integer >= 1 (or null)")
        if self.mask_resolution not in MASK_RESOLUTIONS:
            bad("mask_resolution", f"{self.mask_resolution!r} is not one of {list(MASK_RESOLUTIONS)}")
        elif _integer(self.mask_roi_size) and self.mask_roi_size >= 1 and self.upsampling_stages() is None:
            bad("mask_resolution", f"{self.mask_resolution} is not mask_roi_size ({self.mask_roi_size}) x 1, 2 or 4")
        for name in ("rpn_nms_thresh", "box_nms_thresh"):
            v = getattr(self, name)
            if not (_number(v) and 0 < v <= 1):
                bad(name, f"{v!r} is not an IoU in (0, 1]")
        if not (_number(self.box_score_thresh) and 0 <= self.box_score_thresh < 1):
            bad("box_score_thresh", f"{self.box_score_thresh!r} is not a score in [0, 1)")
        return out

    def upsampling_stages(self) -> int | None:
        """2x upsampling stages from the mask RoI to the mask logits (0, 1 or 2), None when not a power."""
        ratio = self.mask_resolution / self.mask_roi_size
        stages = {1.0: 0, 2.0: 1, 4.0: 2}
        return stages.get(ratio)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["anchor_sizes"] = None if self.anchor_sizes is None else [list(lv) for lv in self.anchor_sizes]
        d["aspect_ratios"] = None if self.aspect_ratios is None else list(self.aspect_ratios)
        return d

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "detector") -> DetectorConfig:
        """From JSON (lists for tuples); an unknown key or bad value names ``detector.<key>``."""
        if isinstance(data, DetectorConfig):
            return data
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise DetectorConfigError(f"{where}: an object of detector settings, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise DetectorConfigError(
                f"{where}.{unknown[0]}: unknown detector setting" + (f" (also {unknown[1:]})" if unknown[1:] else "")
                + f"; known: {sorted(names)}"
            )
        for name, what in (("anchor_sizes", "a list of sizes per FPN level"), ("aspect_ratios", "a list of ratios")):
            if data.get(name) is not None and not isinstance(data[name], list | tuple):
                raise DetectorConfigError(f"{where}.{name}: {what}, got {data[name]!r}")
        return cls(**data)

    def resolved(self, backbone: str) -> dict[str, Any]:
        """Every setting with the backbone's own value where this one says None (reports, plots)."""
        d = self.to_dict()
        d["anchor_sizes"] = [list(lv) for lv in self.anchors_for(backbone)[0]]
        d["aspect_ratios"] = list(self.anchors_for(backbone)[1])
        if self.mask_head_depth is None:
            d["mask_head_depth"] = BACKBONE_MASK_HEAD_DEPTH.get(backbone, 4)
        return d

    def anchors_for(self, backbone: str) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...]]:
        """(sizes per level, aspect ratios) in force for ``backbone``."""
        sizes = self.anchor_sizes if self.anchor_sizes is not None else BACKBONE_ANCHOR_SIZES[backbone]
        return sizes, self.aspect_ratios if self.aspect_ratios is not None else DEFAULT_ASPECT_RATIOS


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


SAMPLING_SETTINGS = ("rpn_batch_size_per_image", "rpn_positive_fraction", "box_batch_size_per_image",
                     "box_positive_fraction", "rpn_post_nms_top_n_train")
"""TrainConfig's RPN and RoI sampling settings (part of the architecture a run reports)."""
_SAMPLING_DEFAULTS = {"rpn_batch_size_per_image": 256, "rpn_positive_fraction": 0.5, "box_positive_fraction": 0.25}
_SAMPLING_BACKBONE = {"box_batch_size_per_image": {"tiny": 128}, "rpn_post_nms_top_n_train": {"tiny": 300}}
_SAMPLING_OTHERS = {"box_batch_size_per_image": 512, "rpn_post_nms_top_n_train": 2000}


def architecture_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The settings that make a run's model, flat (``detector.anchor_sizes``...), with the backbone's
    own values filled in: what a run report lists and what two runs' comparison marks as different."""
    task = config.get("task", "instance")
    if task != "instance":  # another task's model: none of Mask R-CNN's settings apply
        return {"task": task, "arch": config.get("arch"), "encoder": config.get("encoder")}
    backbone = str(config.get("backbone", "resnet50_fpn_v2"))
    lo, hi = input_size(backbone, config.get("min_size"), config.get("max_size")) if backbone in BACKBONE_STRIDES \
        else (config.get("min_size"), config.get("max_size"))
    out: dict[str, Any] = {
        "backbone": backbone, "weights": config.get("weights"), "min_size": lo, "max_size": hi,
        "trainable_backbone_layers": config.get("trainable_backbone_layers"),
        "head_norm": config.get("head_norm", "none"),
    }
    for name in SAMPLING_SETTINGS:
        v = config.get(name)
        if v is None:
            v = _SAMPLING_DEFAULTS.get(name, _SAMPLING_BACKBONE.get(name, {}).get(backbone, _SAMPLING_OTHERS.get(name)))
        out[name] = v
    try:
        det = DetectorConfig.from_dict(config.get("detector"))
    except ValidationError:
        det = DetectorConfig()
    if backbone in BACKBONE_STRIDES:
        out.update({f"detector.{k}": v for k, v in det.resolved(backbone).items()})
    else:
        out.update({f"detector.{k}": v for k, v in det.to_dict().items()})
    return out


def settings_diff(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows (setting, A, B, differs) of two runs' :func:`architecture_settings`, differing ones first."""
    sa, sb = architecture_settings(a), architecture_settings(b)
    rows = [{"setting": k, "A": sa.get(k), "B": sb.get(k), "differs": sa.get(k) != sb.get(k)}
            for k in dict.fromkeys([*sa, *sb])]
    return sorted(rows, key=lambda r: not r["differs"])
