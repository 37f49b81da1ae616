"""Geometry: polygons, RLE and masks in COCO pixel coordinates, with pycocotools semantics."""

from __future__ import annotations

from workbench.geometry.masks import (
    covers_no_pixel,
    instance_bbox_area,
    instance_to_mask,
    instance_to_rle,
    mask_to_bbox_xywh,
    mask_to_polygons,
    polygons_may_cover_no_pixel,
    polygons_to_mask,
    with_bbox_area,
)
from workbench.geometry.polygons import clip_polygon, polygon_area, polygons_bbox_xywh, validate_polygon
from workbench.geometry.rle import (
    coco_rle_to_rle,
    mask_to_rle,
    merge_rles,
    polygons_to_rle,
    rle_area,
    rle_bbox_xywh,
    rle_iou,
    rle_to_mask,
)

__all__ = [
    "clip_polygon",
    "coco_rle_to_rle",
    "covers_no_pixel",
    "instance_bbox_area",
    "instance_to_mask",
    "instance_to_rle",
    "mask_to_bbox_xywh",
    "mask_to_polygons",
    "mask_to_rle",
    "merge_rles",
    "polygon_area",
    "polygons_bbox_xywh",
    "polygons_may_cover_no_pixel",
    "polygons_to_mask",
    "polygons_to_rle",
    "rle_area",
    "rle_bbox_xywh",
    "rle_iou",
    "rle_to_mask",
    "validate_polygon",
    "with_bbox_area",
]
