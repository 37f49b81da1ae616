"""The torchvision Mask R-CNN reshaped by a :class:`DetectorConfig`: anchors, RoI pooling, heads, NMS.

:func:`customise` changes only what a setting changes from the backbone's build (a default config
leaves the model as it was, module for module), so the weights of every part it keeps still load
from COCO or a checkpoint.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import MultiScaleRoIAlign, roi_align, roi_pool
from torchvision.ops.poolers import _convert_to_roi_format, _filter_input, _setup_scales

from workbench.train.detector import DetectorConfig


class MultiScaleRoI(MultiScaleRoIAlign):
    """torchvision's MultiScaleRoIAlign (same FPN level mapping) with RoIPool or aligned RoIAlign.

    RoIPool (Fast R-CNN) rounds the box to the feature grid and takes the max of each rounded cell;
    RoIAlign (Mask R-CNN) averages bilinear samples at exact positions; ``aligned`` shifts the box by
    half a pixel so that a pixel's centre is where its value is (Detectron2's ROIAlignV2).
    """

    def __init__(self, featmap_names: list[str], output_size: int, sampling_ratio: int, *,
                 mode: str = "roi_align", aligned: bool = False) -> None:
        super().__init__(featmap_names, output_size, sampling_ratio)
        self.mode, self.aligned = mode, aligned

    def _pool(self, x: Tensor, rois: Tensor, scale: float) -> Tensor:
        if self.mode == "roi_pool":
            return roi_pool(x, rois, self.output_size, scale)
        return roi_align(x, rois, self.output_size, scale, self.sampling_ratio, self.aligned)

    def forward(self, x: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]) -> Tensor:
        feats = _filter_input(x, self.featmap_names)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(feats, image_shapes, self.canonical_scale, self.canonical_level)
        rois = _convert_to_roi_format(boxes)
        if len(feats) == 1:
            return self._pool(feats[0], rois, self.scales[0])
        levels = self.map_levels(boxes)
        result = torch.zeros((len(rois), feats[0].shape[1], *self.output_size), dtype=feats[0].dtype,
                             device=feats[0].device)
        for level, (feat, scale) in enumerate(zip(feats, self.scales, strict=True)):
            idx = torch.where(levels == level)[0]
            result[idx] = self._pool(feat, rois[idx], scale).to(result.dtype)
        return result

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(featmap_names={self.featmap_names}, output_size={self.output_size}, "
                f"mode={self.mode}, sampling_ratio={self.sampling_ratio}, aligned={self.aligned})")


class MaskPredictor(nn.Sequential):
    """Mask logits after 0, 1 or 2 2x-upsampling stages; class-agnostic: one mask repeated per class
    (torchvision's loss and post-processing pick the mask of the RoI's class, which is then that one).

    The first stage is named ``conv5_mask`` as in torchvision's MaskRCNNPredictor, so its COCO
    weights load where the shapes match."""

    def __init__(self, in_channels: int, dim: int, num_classes: int, *, stages: int, agnostic: bool) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c = in_channels
        for i in range(stages):
            layers["conv5_mask" if i == 0 else f"conv5_mask_{i + 1}"] = nn.ConvTranspose2d(c, dim, 2, 2, 0)
            layers[f"relu{i + 1}"] = nn.ReLU(inplace=True)
            c = dim
        layers["mask_fcn_logits"] = nn.Conv2d(c, 1 if agnostic else num_classes, 1, 1, 0)
        super().__init__(layers)
        self.num_classes, self.agnostic = num_classes, agnostic
        for name, param in self.named_parameters():
            if "weight" in name:
                nn.init.kaiming_normal_(param, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        y = super().forward(x)
        return y.expand(-1, self.num_classes, -1, -1) if self.agnostic else y


def _pooler(old: MultiScaleRoIAlign, size: int, det: DetectorConfig) -> nn.Module:
    names = list(old.featmap_names)
    if det.roi_pooling == "roi_align" and not det.aligned:
        return MultiScaleRoIAlign(names, size, det.sampling_ratio)
    return MultiScaleRoI(names, size, det.sampling_ratio, mode=det.roi_pooling, aligned=det.aligned)


def _norm_layer(module: nn.Module) -> Any:
    """The norm a head was built with (a GroupNorm keeps its group count), None without one."""
    for m in module.modules():
        if isinstance(m, nn.GroupNorm):
            groups = m.num_groups
            return lambda c: nn.GroupNorm(groups, c)
        if isinstance(m, nn.BatchNorm2d):
            return nn.BatchNorm2d
    return None


def _first_linear(head: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    for parent in head.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Linear):
                return parent, name, child
    raise ValueError("the box head has no linear layer")


def customise(model: nn.Module, det: DetectorConfig | Mapping[str, Any] | None, *, num_classes: int) -> None:
    """Reshape ``model`` (a MaskRCNN as :mod:`workbench.train.model` builds it) to ``det``, before its
    weights load. The keypoint branch comes later: :func:`customise_keypoints`."""
    det = DetectorConfig.from_dict(det)
    rpn, heads = model.rpn, model.roi_heads
    old_gen = rpn.anchor_generator
    sizes = det.anchor_sizes if det.anchor_sizes is not None else old_gen.sizes
    ratios = det.aspect_ratios if det.aspect_ratios is not None else None
    if det.anchor_sizes is not None or ratios is not None:
        levels = len(sizes)
        ratio_levels = (tuple(ratios),) * levels if ratios is not None else old_gen.aspect_ratios
        if len(ratio_levels) != levels:  # the old ratios were per level: the same first ones at each
            ratio_levels = (tuple(old_gen.aspect_ratios[0]),) * levels
        gen = AnchorGenerator(tuple(tuple(float(s) for s in lv) for lv in sizes), ratio_levels)
        rpn.anchor_generator = gen
        per_loc = gen.num_anchors_per_location()[0]
        if per_loc != old_gen.num_anchors_per_location()[0]:
            convs = rpn.head.conv
            conv_depth = len(convs)
            in_channels = rpn.head.cls_logits.in_channels
            rpn.head = RPNHead(in_channels, per_loc, conv_depth=conv_depth)
    rpn.nms_thresh = float(det.rpn_nms_thresh)
    heads.nms_thresh = float(det.box_nms_thresh)
    heads.score_thresh = float(det.box_score_thresh)
    heads.detections_per_img = int(det.detections_per_img)
    channels = model.backbone.out_channels
    if det.box_roi_size != heads.box_roi_pool.output_size[0]:
        parent, name, fc = _first_linear(heads.box_head)
        setattr(parent, name, nn.Linear(channels * det.box_roi_size**2, fc.out_features))
    heads.box_roi_pool = _pooler(heads.box_roi_pool, det.box_roi_size, det)
    heads.mask_roi_pool = _pooler(heads.mask_roi_pool, det.mask_roi_size, det)
    mask_head = heads.mask_head
    width = mask_head[0][0].out_channels
    if det.mask_head_depth is not None and det.mask_head_depth != len(mask_head):
        norm = _norm_layer(mask_head)
        heads.mask_head = MaskRCNNHeads(channels, [width] * det.mask_head_depth, 1, norm_layer=norm)
    stages = det.upsampling_stages()
    if stages != 1 or det.class_agnostic_masks:
        pred = heads.mask_predictor
        dim = pred.conv5_mask.out_channels if isinstance(pred, MaskRCNNPredictor) else width
        heads.mask_predictor = MaskPredictor(width, dim, num_classes, stages=stages or 0,
                                             agnostic=det.class_agnostic_masks)


def customise_keypoints(model: nn.Module, det: DetectorConfig | Mapping[str, Any] | None) -> None:
    """The keypoint branch's RoI pooling (when the model has one)."""
    det = DetectorConfig.from_dict(det)
    heads = model.roi_heads
    if heads.keypoint_roi_pool is not None:
        heads.keypoint_roi_pool = _pooler(heads.keypoint_roi_pool, det.keypoint_roi_size, det)
