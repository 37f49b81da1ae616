"""Train page, keypoint-heatmap task: the model's own settings (architecture, crop size, sigma,
Hourglass sizes, flip test), and which validation numbers a run of each task shows."""

from __future__ import annotations

from typing import Any

import streamlit as st

from workbench.services.pose import HEATMAP_TASKS

UNET_ENCODERS = ("built-in small U-Net", "resnet18", "resnet34", "resnet50")


def is_heatmap_task(task: str | None) -> bool:
    return str(task) in HEATMAP_TASKS


def heatmap_settings(defaults: Any) -> dict[str, Any]:
    """The heatmap task's settings as config keys (``arch``, ``encoder``, ``heatmap``); nothing for
    other tasks."""
    if not is_heatmap_task(defaults.task):
        return {}
    h = defaults.heatmap.to_dict()
    with st.expander("Keypoint heatmap model", icon=":material/accessibility_new:", expanded=True):
        c1, c2, c3 = st.columns(3)
        archs = ["hourglass", "unet"]
        arch = c1.selectbox("Architecture", archs, index=archs.index(defaults.arch or "hourglass"), key="train_hm_arch",
                            help="hourglass: stacked Hourglass (stride 4, every stack supervised); unet: a U-Net (stride 1)")
        encoder = None
        if arch == "unet":
            enc = c2.selectbox("Encoder", UNET_ENCODERS, key="train_hm_encoder",
                               help="resnet*: segmentation-models-pytorch's Unet; the built-in one needs no package")
            encoder = None if enc == UNET_ENCODERS[0] else enc
        else:
            h["stacks"] = int(c2.number_input("Stacks", 1, 8, int(h["stacks"]), key="train_hm_stacks"))
            h["depth"] = int(c3.number_input("Depth (halvings)", 1, 6, int(h["depth"]), key="train_hm_depth"))
        w = c1.number_input("Crop width (px)", 16, 1024, int(h["input_size"][0]), step=16, key="train_hm_w")
        ht = c2.number_input("Crop height (px)", 16, 1024, int(h["input_size"][1]), step=16, key="train_hm_h")
        h["input_size"] = [int(w), int(ht)]
        h["channels"] = int(c3.number_input("Channels", 4, 512, int(h["channels"]), key="train_hm_channels"))
        h["sigma"] = float(c1.number_input("Gaussian sigma (crop px)", 0.5, 64.0, float(h["sigma"]), step=0.5,
                                           key="train_hm_sigma"))
        h["flip_test"] = bool(c2.checkbox("Flip test", bool(h["flip_test"]), key="train_hm_flip_test",
                                          help="Average each prediction with the mirrored crop's (left/right swapped back)"))
    return {"arch": arch, "encoder": encoder, "heatmap": h}


def run_numbers(config: dict[str, Any] | None) -> tuple[str, tuple[str, ...] | None, str]:
    """(best-metric label, validation keys to chart or None for the default, chart caption) of a run."""
    task = (config or {}).get("task")
    if task == "semantic":
        return "Best mean IoU", ("mean_iou", "pixel_accuracy", "fw_iou"), "Validation mean IoU per epoch"
    if is_heatmap_task(task):
        return "Best PCK", ("pck", "oks_ap", "oks_ap50"), "Validation PCK and OKS AP per epoch"
    return "Best mask AP", None, "Validation AP per epoch"


def primary_metric_name(config: dict[str, Any] | None) -> str:
    """The words for the figure that picks a run's best epoch and stops it early."""
    task = (config or {}).get("task")
    return "mean IoU" if task == "semantic" else "PCK" if is_heatmap_task(task) else "mask AP"
