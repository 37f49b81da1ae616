"""The polygon and keypoint annotator component."""

from workbench.ui.components.annotator.annotator import (
    ANNOTATOR_KEY,
    annotator,
    category_to_payload,
    instance_to_payload,
    payload_to_indexed_instances,
    payload_to_instances,
)

__all__ = [
    "ANNOTATOR_KEY",
    "annotator",
    "category_to_payload",
    "instance_to_payload",
    "payload_to_indexed_instances",
    "payload_to_instances",
]
