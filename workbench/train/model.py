"""Mask R-CNN builder over torchvision: backbones, head swap, keypoint head, weights, model file.

One model predicts boxes, masks and (when any class has a keypoint schema) keypoints: torchvision's
RoIHeads runs the keypoint branch in the same forward when ``keypoint_roi_pool``, ``keypoint_head``
and ``keypoint_predictor`` are set. The keypoint head is class-agnostic with K = the largest schema;
instances of classes without keypoints carry v=0 and add nothing to its loss.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models import (
    MobileNet_V3_Large_Weights,
    ResNet50_Weights,
    mobilenet_v3_large,
    resnet18,
    resnet50,
)
from torchvision.models.detection import (
    FasterRCNN_MobileNet_V3_Large_FPN_Weights,
    MaskRCNN,
    MaskRCNN_ResNet50_FPN_V2_Weights,
    MaskRCNN_ResNet50_FPN_Weights,
)
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import (
    BackboneWithFPN,
    _mobilenet_extractor,
    _resnet_fpn_extractor,
)
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.keypoint_rcnn import KeypointRCNNHeads, KeypointRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import misc as misc_nn_ops
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from workbench.domain import ValidationError
from workbench.train.checkpoint import read_torch_file, unreadable
from workbench.train.config import TrainConfig
from workbench.train.detector import DEFAULT_SIZES, DetectorConfig, DetectorConfigError
from workbench.train.detector_build import customise, customise_keypoints

MODEL_FORMAT = "workbench-maskrcnn/1"

_COCO_WEIGHTS = {
    "resnet50_fpn_v2": MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1,
    "resnet50_fpn": MaskRCNN_ResNet50_FPN_Weights.COCO_V1,
    "mobilenet_v3_large_fpn": FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1,
}
_IMAGENET_WEIGHTS = {
    "resnet50_fpn_v2": ResNet50_Weights.IMAGENET1K_V1,
    "resnet50_fpn": ResNet50_Weights.IMAGENET1K_V1,
    "mobilenet_v3_large_fpn": MobileNet_V3_Large_Weights.IMAGENET1K_V1,
}


class WeightsUnavailableError(ValidationError):
    """Pretrained weights that are neither on disk nor downloadable (offline machine)."""


def weights_file(url: str) -> Path:
    """Where torch.hub keeps (and looks for) a downloaded weights file: TORCH_HOME/hub/checkpoints."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def cached_weights(backbone: str) -> str | None:
    """'coco' or 'imagenet' when that weights file is already in TORCH_HOME (no network needed)."""
    for name, table in (("coco", _COCO_WEIGHTS), ("imagenet", _IMAGENET_WEIGHTS)):
        w = table.get(backbone)
        if w is not None and weights_file(w.url).exists():
            return name
    return None


def fetch_state_dict(url: str, what: str) -> dict[str, torch.Tensor]:
    """The weights at ``url`` from torch.hub's cache, downloading them only when online."""
    path = weights_file(url)
    if not path.exists():
        if os.environ.get("WORKBENCH_OFFLINE") != "1":
            try:
                return torch.hub.load_state_dict_from_url(url, progress=False, weights_only=True)
            except Exception as exc:  # URLError, timeouts, HTTP errors: all mean "not available here"
                reason = f" ({type(exc).__name__}: {exc})"
        else:
            reason = " (WORKBENCH_OFFLINE=1)"
        raise WeightsUnavailableError(
            f"{what} weights are not available offline{reason}: download {url} on a connected machine and "
            f"place the file at {path} (TORCH_HOME/hub/checkpoints), or choose weights 'imagenet' or 'none'"
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def _feature_names(model: MaskRCNN) -> list[str]:
    return list(model.roi_heads.mask_roi_pool.featmap_names)


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(8, channels)


def _build_tiny(num_classes: int, *, head_norm: str = "none", **kwargs: Any) -> MaskRCNN:
    """ResNet-18 with GroupNorm (batch-size independent, trains from scratch) and a 64-channel FPN.

    ``head_norm="gn"``: a 4-conv box head and a mask head with GroupNorm (Detectron2's GN recipe for
    Mask R-CNN from scratch); the default keeps the 2-layer MLP box head and plain mask convs.
    """
    body = resnet18(weights=None, norm_layer=_group_norm)
    backbone = BackboneWithFPN(
        body,
        return_layers={"layer2": "0", "layer3": "1", "layer4": "2"},
        in_channels_list=[128, 256, 512],
        out_channels=64,
        extra_blocks=LastLevelMaxPool(),
    )
    names = ["0", "1", "2"]
    anchors = AnchorGenerator(((16,), (32,), (64,), (128,)), ((0.5, 1.0, 2.0),) * 4)
    defaults: dict[str, Any] = {
        "rpn_pre_nms_top_n_train": 600,
        "rpn_post_nms_top_n_train": 300,
        "rpn_pre_nms_top_n_test": 300,
        "rpn_post_nms_top_n_test": 150,
        "box_batch_size_per_image": 128,
    }
    defaults.update(kwargs)
    if head_norm == "gn":
        box_head: nn.Module = FastRCNNConvFCHead((64, 7, 7), [64] * 4, [256], norm_layer=_group_norm)
        mask_head = MaskRCNNHeads(64, [64, 64], 1, norm_layer=_group_norm)
    else:
        box_head, mask_head = TwoMLPHead(64 * 7 * 7, 256), MaskRCNNHeads(64, [64, 64], 1)
    return MaskRCNN(
        backbone,
        num_classes=None,
        rpn_anchor_generator=anchors,
        rpn_head=RPNHead(64, 3),
        box_roi_pool=MultiScaleRoIAlign(names, 7, 2),
        box_head=box_head,
        box_predictor=FastRCNNPredictor(256, num_classes),
        mask_roi_pool=MultiScaleRoIAlign(names, 14, 2),
        mask_head=mask_head,
        mask_predictor=MaskRCNNPredictor(64, 64, num_classes),
        **defaults,
    )


def _build_arch(
    backbone: str,
    num_classes: int,
    *,
    pretrained: bool,
    trainable_layers: int | None,
    imagenet: bool,
    head_norm: str = "none",
    **kwargs: Any,
) -> MaskRCNN:
    """The architecture as torchvision builds it, loading ImageNet backbone weights when asked."""
    if backbone == "tiny":
        return _build_tiny(num_classes, head_norm=head_norm, **kwargs)
    if head_norm != "none":
        raise ValidationError(f"head_norm {head_norm!r} is for the tiny backbone; {backbone} has its own heads")
    layers_max = 6 if backbone == "mobilenet_v3_large_fpn" else 5
    trainable = trainable_layers if trainable_layers is not None else (3 if pretrained else layers_max)
    trainable = max(0, min(trainable, layers_max))
    if backbone in ("resnet50_fpn", "resnet50_fpn_v2"):
        v2 = backbone == "resnet50_fpn_v2"
        norm = nn.BatchNorm2d if (v2 or not pretrained) else misc_nn_ops.FrozenBatchNorm2d
        body = resnet50(weights=None, norm_layer=norm)
        if imagenet:
            body.load_state_dict(fetch_state_dict(_IMAGENET_WEIGHTS[backbone].url, "ImageNet ResNet-50"))
        if not v2:
            return MaskRCNN(_resnet_fpn_extractor(body, trainable), num_classes=num_classes, **kwargs)
        fpn = _resnet_fpn_extractor(body, trainable, norm_layer=nn.BatchNorm2d)
        anchors = AnchorGenerator(((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5)
        return MaskRCNN(
            fpn,
            num_classes=num_classes,
            rpn_anchor_generator=anchors,
            rpn_head=RPNHead(fpn.out_channels, anchors.num_anchors_per_location()[0], conv_depth=2),
            box_head=FastRCNNConvFCHead((fpn.out_channels, 7, 7), [256] * 4, [1024], norm_layer=nn.BatchNorm2d),
            mask_head=MaskRCNNHeads(fpn.out_channels, [256] * 4, 1, norm_layer=nn.BatchNorm2d),
            **kwargs,
        )
    if backbone == "mobilenet_v3_large_fpn":
        norm = misc_nn_ops.FrozenBatchNorm2d if pretrained else nn.BatchNorm2d
        body = mobilenet_v3_large(weights=None, norm_layer=norm)
        if imagenet:
            body.load_state_dict(fetch_state_dict(_IMAGENET_WEIGHTS[backbone].url, "ImageNet MobileNetV3"))
        fpn = _mobilenet_extractor(body, True, trainable)
        anchors = AnchorGenerator(((32, 64, 128, 256, 512),) * 3, ((0.5, 1.0, 2.0),) * 3)
        kwargs.setdefault("rpn_score_thresh", 0.05)
        return MaskRCNN(fpn, num_classes=num_classes, rpn_anchor_generator=anchors, **kwargs)
    raise ValidationError(f"unknown backbone {backbone!r}")


def replace_heads(model: MaskRCNN, num_classes: int) -> None:
    """New box and mask predictors sized for the project's classes (background included)."""
    box_in = model.roi_heads.box_predictor.cls_score.in_features
    model.roi_heads.box_predictor = FastRCNNPredictor(box_in, num_classes)
    mask_pred = model.roi_heads.mask_predictor
    if not isinstance(mask_pred, MaskRCNNPredictor):  # a designed one (detector_build): sized already
        return
    model.roi_heads.mask_predictor = MaskRCNNPredictor(
        mask_pred.conv5_mask.in_channels, mask_pred.conv5_mask.out_channels, num_classes
    )


def add_keypoint_head(model: MaskRCNN, num_keypoints: int, *, small: bool = False) -> None:
    channels = model.backbone.out_channels
    layers = (64,) * 4 if small else (512,) * 8
    model.roi_heads.keypoint_roi_pool = MultiScaleRoIAlign(_feature_names(model), 14, 2)
    model.roi_heads.keypoint_head = KeypointRCNNHeads(channels, layers)
    model.roi_heads.keypoint_predictor = KeypointRCNNPredictor(layers[-1], num_keypoints)


def load_matching(model: nn.Module, state: Mapping[str, torch.Tensor]) -> tuple[int, list[str]]:
    """Load the tensors whose names and shapes match; return (count loaded, names skipped)."""
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(k for k in state if k not in usable)
    model.load_state_dict(usable, strict=False)
    return len(usable), skipped


def _checkpoint_state(path: Path) -> Mapping[str, torch.Tensor]:
    if not Path(path).is_file():
        raise WeightsUnavailableError(f"{path}: no such checkpoint file")
    obj = read_torch_file(path)
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise unreadable(Path(path), f"not a state dict of tensors but a {type(obj).__name__}")


def check_weights_file(path: Path) -> None:
    """Refuse, before a run is queued, a ``--weights`` file that training could not load."""
    _checkpoint_state(Path(path))


def build_model(
    backbone: str = "resnet50_fpn_v2",
    *,
    num_classes: int,
    num_keypoints: int = 0,
    weights: str = "none",
    min_size: int | None = None,
    max_size: int | None = None,
    trainable_backbone_layers: int | None = None,
    head_norm: str = "none",
    detector_kwargs: Mapping[str, Any] | None = None,
    detector: DetectorConfig | Mapping[str, Any] | None = None,
) -> MaskRCNN:
    """A Mask R-CNN for ``num_classes`` (background included), with a keypoint head when K > 0.

    ``detector_kwargs``: torchvision MaskRCNN settings over the backbone's defaults (the RPN and RoI
    sampling of :meth:`TrainConfig.detector_kwargs`; its ``detector`` entry, like ``detector``, is
    the designed architecture: anchors, RoI pooling, heads, NMS, see :mod:`workbench.train.detector`).
    """
    if num_classes < 2:
        raise ValidationError(f"num_classes counts background, so it must be at least 2, got {num_classes}")
    kwargs: dict[str, Any] = dict(detector_kwargs or {})
    det = DetectorConfig.from_dict(kwargs.pop("detector", detector))
    bad_levels = det.problems(backbone)
    if bad_levels:
        raise DetectorConfigError("; ".join(bad_levels))
    default_min, default_max = DEFAULT_SIZES.get(backbone, (800, 1333))
    kwargs["min_size"] = min_size or default_min
    kwargs["max_size"] = max_size or max(default_max, kwargs["min_size"])
    coco = weights == "coco"
    if coco and backbone not in _COCO_WEIGHTS:
        raise ValidationError(f"backbone {backbone!r} has no COCO weights; use 'imagenet' or 'none'")
    if weights == "imagenet" and backbone not in _IMAGENET_WEIGHTS:
        raise ValidationError(f"backbone {backbone!r} has no ImageNet weights; use 'none'")
    pretrained = weights in ("coco", "imagenet")
    model = _build_arch(
        backbone,
        91 if coco else num_classes,
        pretrained=pretrained,
        trainable_layers=trainable_backbone_layers,
        imagenet=weights == "imagenet",
        head_norm=head_norm,
        **kwargs,
    )
    customise(model, det, num_classes=num_classes)  # before the weights: the tensors that still fit load
    if coco:
        state = fetch_state_dict(_COCO_WEIGHTS[backbone].url, f"COCO {backbone}")
        load_matching(model, state)
        replace_heads(model, num_classes)
    if num_keypoints > 0:
        add_keypoint_head(model, num_keypoints, small=backbone == "tiny")
        customise_keypoints(model, det)
    if weights not in ("coco", "imagenet", "none"):
        loaded, _ = load_matching(model, _checkpoint_state(Path(weights)))
        if loaded == 0:
            raise WeightsUnavailableError(f"{weights}: no tensor of this checkpoint fits a {backbone} model")
    return model


def model_args(config: TrainConfig, num_classes: int, num_keypoints: int) -> dict[str, Any]:
    """What :func:`build_model` needs to rebuild the architecture (no weights) at load time."""
    return {
        "backbone": config.backbone,
        "num_classes": num_classes,
        "num_keypoints": num_keypoints,
        "min_size": config.min_size,
        "max_size": config.max_size,
        "head_norm": config.head_norm,
        "detector": config.detector.to_dict(),
    }


@contextmanager
def detection_limits(model: nn.Module, *, score_thresh: float, detections_per_img: int) -> Iterator[nn.Module]:
    """The model keeps detections down to ``score_thresh``, at most ``detections_per_img`` per image,
    inside the block (COCO AP: 0.001 and 100; torchvision's 0.05 drops low-score detections that
    still add recall), and its own settings again after it."""
    heads = unwrap(model).roi_heads
    saved = heads.score_thresh, heads.detections_per_img
    heads.score_thresh, heads.detections_per_img = float(score_thresh), int(detections_per_img)
    try:
        yield model
    finally:
        heads.score_thresh, heads.detections_per_img = saved


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def model_file_payload(
    model: nn.Module, args: dict[str, Any], config: dict[str, Any], schema: dict[str, Any]
) -> dict[str, Any]:
    """The single-file model: tensors and plain Python only, so weights_only=True loads it."""
    return {
        "format": MODEL_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()},
        "model_args": dict(args),
        "config": dict(config),
        "class_names": list(schema["class_names"]),
        "schema": schema,
    }


def load_trained_model(path: Path, device: str | torch.device = "cpu") -> tuple[MaskRCNN, dict[str, Any]]:
    """Load a run's model.pt for prediction: (model in eval mode, payload without the state dict)."""
    path = Path(path)
    payload = read_torch_file(path)
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise unreadable(path, f"not a workbench model file of format {MODEL_FORMAT}")
    try:
        args = payload["model_args"]
        model = build_model(
            args["backbone"],
            num_classes=args["num_classes"],
            num_keypoints=args["num_keypoints"],
            weights="none",
            min_size=args.get("min_size"),
            max_size=args.get("max_size"),
            head_norm=args.get("head_norm", "none"),
            detector=args.get("detector"),  # absent in a model file from before the designed detector
        )
        model.load_state_dict(payload["state_dict"])
    except ValidationError as exc:
        raise unreadable(path, f"its architecture cannot be built ({exc})") from None
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise unreadable(path, f"its weights do not fit the model it describes ({type(exc).__name__})") from None
    model.to(device).eval()
    info = {k: v for k, v in payload.items() if k != "state_dict"}
    return model, info
