"""Semantic-segmentation losses over label maps; ignore pixels (index 255) count in none of them.

* :func:`bce_loss`: the per-class binary log loss: one sigmoid map per class, BCE per pixel and
  class, summed over the classes (or their mean) and averaged over the non-ignored pixels. Classes
  may overlap (a pixel can be "road" and "wet"), so this is the default.
* :func:`ce_loss`: softmax cross-entropy over the index map (0 background, class c -> c + 1) for
  mutually exclusive classes.
* :func:`dice_loss`: 1 - the soft Dice coefficient per class, averaged over the classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = 255


def bce_loss(logits: torch.Tensor, binary: torch.Tensor, valid: torch.Tensor, *, reduction: str = "sum") -> torch.Tensor:
    """``logits`` B x C x H x W, ``binary`` B x C x H x W (0/1), ``valid`` B x H x W (bool)."""
    per = F.binary_cross_entropy_with_logits(logits.float(), binary.float(), reduction="none")  # B C H W
    per = per.sum(dim=1) if reduction == "sum" else per.mean(dim=1)
    n = valid.sum()
    return (per * valid).sum() / n.clamp(min=1)


def ce_loss(logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``logits`` B x (C + 1) x H x W, ``index`` B x H x W int64 with 255 = ignore (0 when all are)."""
    valid = index != IGNORE_INDEX
    if not bool(valid.any()):
        return logits.sum() * 0.0  # cross_entropy's mean over no pixel is NaN
    return F.cross_entropy(logits.float(), index, ignore_index=IGNORE_INDEX)


def dice_loss(probs: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """``probs`` / ``target`` B x C x H x W in [0, 1]; per class over the batch's valid pixels, with
    ``eps`` smoothing so that a class absent from both costs nothing."""
    v = valid.unsqueeze(1).to(probs.dtype)
    p, t = probs.float() * v, target.float() * v
    inter = (p * t).sum(dim=(0, 2, 3))
    denom = p.sum(dim=(0, 2, 3)) + t.sum(dim=(0, 2, 3))
    return (1 - (2 * inter + eps) / (denom + eps)).mean()


def one_hot_classes(index: torch.Tensor, num_classes: int) -> torch.Tensor:
    """B x H x W index map -> B x C x H x W 0/1 of the classes 1..C (background and ignore: all 0)."""
    idx = index.clone()
    idx[(idx == IGNORE_INDEX) | (idx > num_classes)] = 0
    return F.one_hot(idx, num_classes + 1)[..., 1:].permute(0, 3, 1, 2)


def semantic_losses(
    out: torch.Tensor,
    aux: torch.Tensor | None,
    index: torch.Tensor,
    binary: torch.Tensor,
    *,
    mode: str,
    class_reduction: str = "sum",
    dice_weight: float = 0.0,
    aux_weight: float = 0.0,
) -> dict[str, torch.Tensor]:
    """The loss dict of one batch: ``loss_bce`` or ``loss_ce``, with ``loss_dice`` and ``loss_aux``
    when weighted in (the aux head gets the main loss, times ``aux_weight``)."""
    valid = index != IGNORE_INDEX
    num_classes = binary.shape[1]

    def main(logits: torch.Tensor) -> torch.Tensor:
        if mode == "bce":
            return bce_loss(logits, binary, valid, reduction=class_reduction)
        return ce_loss(logits, index)

    losses = {f"loss_{mode}": main(out)}
    if dice_weight > 0:
        if mode == "bce":
            probs, target = torch.sigmoid(out.float()), binary
        else:
            probs, target = torch.softmax(out.float(), dim=1)[:, 1:], one_hot_classes(index, num_classes)
        losses["loss_dice"] = dice_weight * dice_loss(probs, target, valid)
    if aux is not None and aux_weight > 0:
        losses["loss_aux"] = aux_weight * main(aux)
    return losses
