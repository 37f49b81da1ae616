"""Semantic-segmentation networks: torchvision's FCN / DeepLabV3 / LR-ASPP and
segmentation-models-pytorch's U-Net / PSPNet, wrapped as :class:`SemanticNet`.

The wrapper takes the trainer's list of 0..1 images (all resized to one size by the dataset),
normalises them with ImageNet's mean and std and, in training mode, returns the loss dict (as
torchvision's detection models do, so the loop's step is the same for every task); in eval mode
it returns the logits at the input size. Output channels: C (one per class) for the binary loss,
C + 1 (background first) for cross-entropy.

Weights: ``imagenet`` (the encoder's), ``coco`` (torchvision's COCO-with-VOC-labels weights of the
whole net but its last layer; fcn, deeplabv3, lraspp), ``none``, or a checkpoint path; files come
from torch.hub's cache under the same offline rules and messages as Mask R-CNN's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models import (
    MobileNet_V3_Large_Weights,
    ResNet50_Weights,
    ResNet101_Weights,
)
from torchvision.models import segmentation as tvseg

from workbench.train.config import ConfigError
from workbench.train.model import WeightsUnavailableError, _checkpoint_state, fetch_state_dict, load_matching
from workbench.train.tasks import SEMANTIC_ENCODERS, SMP_ARCHS
from workbench.train.tasks.semantic_loss import semantic_losses

DEFAULT_ENCODERS = {"fcn": "resnet50", "deeplabv3": "resnet50", "lraspp": "mobilenet_v3_large",
                    "unet": "resnet34", "pspnet": "resnet34"}
_TV_BUILDERS = {
    ("fcn", "resnet50"): (tvseg.fcn_resnet50, tvseg.FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1),
    ("fcn", "resnet101"): (tvseg.fcn_resnet101, tvseg.FCN_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1),
    ("deeplabv3", "resnet50"): (tvseg.deeplabv3_resnet50, tvseg.DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1),
    ("deeplabv3", "resnet101"): (tvseg.deeplabv3_resnet101, tvseg.DeepLabV3_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1),
    ("deeplabv3", "mobilenet_v3_large"): (
        tvseg.deeplabv3_mobilenet_v3_large, tvseg.DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1),
    ("lraspp", "mobilenet_v3_large"): (
        tvseg.lraspp_mobilenet_v3_large, tvseg.LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1),
}
_TV_IMAGENET = {"resnet50": ResNet50_Weights.IMAGENET1K_V1, "resnet101": ResNet101_Weights.IMAGENET1K_V1,
                "mobilenet_v3_large": MobileNet_V3_Large_Weights.IMAGENET1K_V1}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resolve_encoder(arch: str, encoder: str | None) -> str:
    return encoder or DEFAULT_ENCODERS[arch]


def _torchvision_net(arch: str, encoder: str, outputs: int, weights: str, aux: bool) -> nn.Module:
    builder, coco = _TV_BUILDERS[(arch, encoder)]
    kwargs: dict[str, Any] = {"weights": None, "weights_backbone": None, "num_classes": outputs}
    if arch != "lraspp":
        kwargs["aux_loss"] = aux
    net = builder(**kwargs)
    if weights == "coco":
        load_matching(net, fetch_state_dict(coco.url, f"COCO-VOC {arch} {encoder}"))
    elif weights == "imagenet":
        state = fetch_state_dict(_TV_IMAGENET[encoder].url, f"ImageNet {encoder}")
        if encoder.startswith("mobilenet"):  # the net's backbone is mobilenet's `features`
            state = {k.removeprefix("features."): v for k, v in state.items()}
        loaded, _ = load_matching(net.backbone, state)
        if loaded == 0:
            raise WeightsUnavailableError(f"ImageNet {encoder} weights do not fit the {arch} backbone")
    return net


def _smp_net(arch: str, encoder: str, outputs: int, weights: str) -> nn.Module:
    import segmentation_models_pytorch as smp

    cls = {"unet": smp.Unet, "pspnet": smp.PSPNet}[arch]
    enc_weights = "imagenet" if weights == "imagenet" else None
    if enc_weights and os.environ.get("WORKBENCH_OFFLINE") == "1":
        raise WeightsUnavailableError(
            f"ImageNet {encoder} encoder weights are not available offline (WORKBENCH_OFFLINE=1): "
            "segmentation-models-pytorch fetches them from the Hugging Face hub into HF_HOME; "
            "fetch them once on a connected machine (or copy that cache here), or choose weights 'none'"
        )
    try:
        return cls(encoder_name=encoder, encoder_weights=enc_weights, classes=outputs)
    except KeyError as exc:
        known = ", ".join(sorted(smp.encoders.get_encoder_names())[:12])
        raise ConfigError(
            f"encoder {encoder!r} is not an encoder of segmentation-models-pytorch ({known}, ..., "
            f"or tu-<timm model name>): {exc.args[0] if exc.args else exc}"[:400]
        ) from None
    except (OSError, RuntimeError, ValueError) as exc:
        if enc_weights is None:
            raise
        raise WeightsUnavailableError(
            f"ImageNet {encoder} encoder weights are not available ({type(exc).__name__}: {str(exc)[:200]}); "
            "fetch them on a connected machine into HF_HOME, or choose weights 'none'"
        ) from None


class SemanticNet(nn.Module):
    """A segmentation network with the trainer's interface (see the module docstring)."""

    def __init__(
        self,
        net: nn.Module,
        *,
        num_classes: int,
        mode: str = "bce",
        class_reduction: str = "sum",
        dice_weight: float = 0.0,
        aux_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.net = net
        self.num_classes = int(num_classes)
        self.mode = mode
        self.class_reduction = class_reduction
        self.dice_weight = float(dice_weight)
        self.aux_weight = float(aux_weight)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def _logits(self, images: Sequence[torch.Tensor] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = images if isinstance(images, torch.Tensor) else torch.stack(list(images))
        x = (x - self.mean) / self.std
        out = self.net(x)
        if isinstance(out, Mapping):
            return out["out"], out.get("aux")
        return out, None

    def forward(
        self, images: Sequence[torch.Tensor] | torch.Tensor, targets: Sequence[Mapping[str, torch.Tensor]] | None = None
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        out, aux = self._logits(images)
        if not self.training:
            return out
        if targets is None:
            raise ValueError("in training mode SemanticNet needs targets")
        index = torch.stack([t["index"] for t in targets]).long()
        binary = torch.stack([t["binary"] for t in targets])
        return semantic_losses(
            out, aux, index, binary, mode=self.mode, class_reduction=self.class_reduction,
            dice_weight=self.dice_weight, aux_weight=self.aux_weight,
        )


def build_semantic_model(
    arch: str,
    *,
    num_classes: int,
    encoder: str | None = None,
    weights: str = "none",
    mode: str = "bce",
    class_reduction: str = "sum",
    dice_weight: float = 0.0,
    aux_weight: float = 0.5,
) -> SemanticNet:
    """The network for ``num_classes`` project classes (background not counted)."""
    if num_classes < 1:
        raise ConfigError(f"a semantic model needs at least one class, got {num_classes}")
    encoder = resolve_encoder(arch, encoder)
    outputs = num_classes if mode == "bce" else num_classes + 1
    if arch in SEMANTIC_ENCODERS:
        if encoder not in SEMANTIC_ENCODERS[arch]:
            raise ConfigError(f"encoder {encoder!r} is not one of {list(SEMANTIC_ENCODERS[arch])} for arch {arch}")
        has_aux = arch != "lraspp" and aux_weight > 0
        net = _torchvision_net(arch, encoder, outputs, weights if weights in ("coco", "imagenet") else "none", has_aux)
    elif arch in SMP_ARCHS:
        if weights == "coco":
            raise ConfigError(f"weights 'coco' are for fcn, deeplabv3 and lraspp; {arch} takes 'imagenet' or 'none'")
        has_aux = False
        net = _smp_net(arch, encoder, outputs, weights)
    else:
        raise ConfigError(f"arch {arch!r} is not one of {list(SEMANTIC_ENCODERS) + list(SMP_ARCHS)}")
    model = SemanticNet(net, num_classes=num_classes, mode=mode, class_reduction=class_reduction,
                        dice_weight=dice_weight, aux_weight=aux_weight if has_aux else 0.0)
    if weights not in ("coco", "imagenet", "none"):
        loaded, _ = load_matching(model, _checkpoint_state(Path(weights)))
        if loaded == 0:
            raise WeightsUnavailableError(f"{weights}: no tensor of this checkpoint fits a {arch} model")
    return model


def cached_semantic_weights(arch: str, encoder: str | None = None) -> str | None:
    """'coco' or 'imagenet' when that torchvision weights file is already on disk (no network needed)."""
    from workbench.train.model import weights_file

    encoder = resolve_encoder(arch, encoder)
    built = _TV_BUILDERS.get((arch, encoder))
    if built is not None and weights_file(built[1].url).exists():
        return "coco"
    if encoder in _TV_IMAGENET and weights_file(_TV_IMAGENET[encoder].url).exists():
        return "imagenet"
    return None
