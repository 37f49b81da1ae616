"""Heatmap networks: a stacked Hourglass (Newell et al. 2016) and a U-Net, plus the loss wrapper.

Both map a B x 3 x H x W crop to B x C x H/s x W/s heatmaps (C: every keypoint class's channels,
:class:`.layout.ChannelLayout`). The Hourglass returns one prediction per stack and each is
supervised (intermediate supervision); its stem brings the input to stride 4. The U-Net is
segmentation-models-pytorch's ``Unet`` with ``classes=C`` when an ``encoder`` is named (ImageNet
encoder weights through smp's own loader, or none), else a small U-Net of plain convolutions.

:class:`HeatmapModel` is what the trainer holds: in training ``model(images, targets)`` returns the
loss dict (the trainer's step is every task's), in eval mode ``model(images)`` the last heatmaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from workbench.domain import ValidationError
from workbench.train.heatmap.config import ARCH_STRIDES

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Residual(nn.Module):
    """The Hourglass's pre-activation bottleneck (BN-ReLU-conv 1x1, 3x3, 1x1) with a skip."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = max(cout // 2, 1)
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, mid, 1),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, mid, 3, padding=1),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, cout, 1),
        )
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class Hourglass(nn.Module):
    """One hourglass of ``depth`` halvings: a skip branch at each scale, nearest upsampling back."""

    def __init__(self, depth: int, channels: int) -> None:
        super().__init__()
        self.up = Residual(channels, channels)
        self.low1 = Residual(channels, channels)
        self.low2: nn.Module = Hourglass(depth - 1, channels) if depth > 1 else Residual(channels, channels)
        self.low3 = Residual(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2))))
        return self.up(x) + F.interpolate(low, scale_factor=2.0, mode="nearest")


class StackedHourglass(nn.Module):
    """Stem to stride 4, then ``stacks`` hourglasses; each stack's heatmaps feed the next one back."""

    stride = 4

    def __init__(self, num_channels: int, *, stacks: int = 2, depth: int = 4, channels: int = 128) -> None:
        super().__init__()
        c = int(channels)
        self.stem = nn.Sequential(
            nn.Conv2d(3, max(c // 2, 4), 7, stride=2, padding=3), nn.BatchNorm2d(max(c // 2, 4)), nn.ReLU(inplace=True),
            Residual(max(c // 2, 4), c), nn.MaxPool2d(2), Residual(c, c), Residual(c, c),
        )
        self.hourglasses = nn.ModuleList(Hourglass(depth, c) for _ in range(stacks))
        self.features = nn.ModuleList(
            nn.Sequential(Residual(c, c), nn.Conv2d(c, c, 1), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
            for _ in range(stacks)
        )
        self.heads = nn.ModuleList(nn.Conv2d(c, num_channels, 1) for _ in range(stacks))
        self.merge_features = nn.ModuleList(nn.Conv2d(c, c, 1) for _ in range(stacks - 1))
        self.merge_heatmaps = nn.ModuleList(nn.Conv2d(num_channels, c, 1) for _ in range(stacks - 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for i, hg in enumerate(self.hourglasses):
            feat = self.features[i](hg(x))
            hm = self.heads[i](feat)
            outs.append(hm)
            if i < len(self.hourglasses) - 1:
                x = x + self.merge_features[i](feat) + self.merge_heatmaps[i](hm)
        return outs


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class SmallUNet(nn.Module):
    """Ronneberger et al.'s U-Net at a small width: ``levels`` halvings, skips concatenated."""

    stride = 1

    def __init__(self, num_channels: int, *, channels: int = 32, levels: int = 4) -> None:
        super().__init__()
        widths = [int(channels) * 2**i for i in range(levels + 1)]
        self.down = nn.ModuleList([_double_conv(3, widths[0])] + [_double_conv(widths[i], widths[i + 1]) for i in range(levels)])
        self.up = nn.ModuleList(nn.Conv2d(widths[i + 1], widths[i], 1) for i in reversed(range(levels)))
        self.fuse = nn.ModuleList(_double_conv(2 * widths[i], widths[i]) for i in reversed(range(levels)))
        self.head = nn.Conv2d(widths[0], num_channels, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for up, fuse in zip(self.up, self.fuse, strict=True):
            x = up(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
            x = fuse(torch.cat([skips.pop(), x], dim=1))
        return [self.head(x)]


class SmpUNet(nn.Module):
    """segmentation-models-pytorch's Unet with one output channel per keypoint."""

    stride = 1

    def __init__(self, num_channels: int, *, encoder: str, weights: str = "none") -> None:
        super().__init__()
        try:
            import segmentation_models_pytorch as smp
        except ImportError:
            raise ValidationError(
                f"encoder {encoder!r} needs segmentation-models-pytorch (pip install segmentation-models-pytorch); "
                "without an encoder the U-Net is the built-in small one"
            ) from None
        enc_weights = "imagenet" if weights == "imagenet" else None
        try:
            self.net = smp.Unet(encoder_name=encoder, encoder_weights=enc_weights, classes=num_channels, in_channels=3)
        except (KeyError, ValueError) as exc:
            raise ValidationError(f"encoder {encoder!r}: segmentation-models-pytorch cannot build it ({exc})") from None

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.net(x)]


def build_network(arch: str, num_channels: int, args: dict[str, Any], *, weights: str = "none") -> nn.Module:
    """The bare network of ``arch`` (see :func:`network_args` for ``args``)."""
    if arch == "hourglass":
        return StackedHourglass(num_channels, stacks=args["stacks"], depth=args["depth"], channels=args["channels"])
    if arch == "unet":
        if args.get("encoder"):
            return SmpUNet(num_channels, encoder=args["encoder"], weights=weights)
        return SmallUNet(num_channels, channels=args["channels"], levels=args["unet_levels"])
    raise ValidationError(f"heatmap arch {arch!r} is not one of {sorted(ARCH_STRIDES)}")


def heatmap_loss(
    outputs: Sequence[torch.Tensor], targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Weighted MSE (SimpleBaseline's JointsMSELoss: 0.5 x mean over keypoints of the pixel MSE),
    summed over the stacks; keypoints of weight 0 (unlabelled, outside the crop, other classes'
    channels) count nothing."""
    w = weights[:, :, None, None]
    total = targets.new_zeros(())
    for out in outputs:
        if out.shape[-2:] != targets.shape[-2:]:
            raise ValidationError(f"the model predicts {tuple(out.shape[-2:])} heatmaps, the targets are {tuple(targets.shape[-2:])}")
        total = total + 0.5 * ((out.float() - targets) ** 2 * w).mean()
    return total


class HeatmapModel(nn.Module):
    """Normalises the crops, runs the network; a loss dict in training, heatmaps in eval mode."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.stride = int(network.stride)  # type: ignore[arg-type]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(
        self, images: torch.Tensor | Sequence[torch.Tensor], targets: Sequence[dict[str, torch.Tensor]] | None = None
    ) -> dict[str, torch.Tensor] | torch.Tensor:
        x = images if isinstance(images, torch.Tensor) else torch.stack(list(images))
        outs = self.network((x - self.mean) / self.std)
        if self.training:
            if targets is None:
                raise ValidationError("a heatmap model in training mode needs targets")
            hm = torch.stack([t["heatmaps"] for t in targets])
            w = torch.stack([t["weights"] for t in targets])
            return {"loss_heatmap": heatmap_loss(outs, hm, w)}
        return outs[-1]
