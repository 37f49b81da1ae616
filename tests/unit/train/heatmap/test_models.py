"""Each heatmap network builds with random weights, takes a train step and an eval step on tiny crops."""

from __future__ import annotations

import pytest
import torch

from workbench.domain import ValidationError
from workbench.train.heatmap.models import HeatmapModel, SmallUNet, SmpUNet, StackedHourglass, heatmap_loss


def _targets(n: int, c: int, hw: tuple[int, int]) -> list[dict[str, torch.Tensor]]:
    out = []
    for i in range(n):
        hm = torch.zeros(c, *hw)
        hm[0, 2 + i, 3] = 1.0
        w = torch.ones(c)
        w[-1] = 0  # an unlabelled keypoint
        out.append({"heatmaps": hm, "weights": w})
    return out


@pytest.mark.parametrize(
    "network, size", [
        (lambda: StackedHourglass(3, stacks=2, depth=2, channels=16), 32),
        (lambda: SmallUNet(3, channels=8, levels=2), 16),
        # segmentation-models-pytorch's Unet, random weights (no download)
        (lambda: SmpUNet(3, encoder="resnet18", weights="none"), 32),
    ], ids=["hourglass", "unet", "smp-unet-resnet18"],
)
def test_train_step_and_eval_step(network, size):
    torch.manual_seed(0)
    model = HeatmapModel(network())
    images = [torch.rand(3, size, size) for _ in range(2)]
    hw = (size // model.stride, size // model.stride)
    targets = _targets(2, 3, hw)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    losses = []
    for _ in range(3):
        loss = model(images, targets)["loss_heatmap"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    model.eval()
    with torch.no_grad():
        out = model(torch.stack(images))
    assert out.shape == (2, 3, *hw)


def test_hourglass_supervises_every_stack():
    net = StackedHourglass(2, stacks=3, depth=1, channels=8)
    with torch.no_grad():
        outs = net(torch.rand(1, 3, 16, 16))
    assert len(outs) == 3 and all(o.shape == (1, 2, 4, 4) for o in outs)
    target, w = torch.zeros(1, 2, 4, 4), torch.ones(1, 2)
    per_stack = [0.5 * ((o - target) ** 2).mean() for o in outs]
    assert float(heatmap_loss(outs, target, w)) == pytest.approx(float(sum(per_stack)), rel=1e-6)


def test_loss_ignores_keypoints_of_weight_zero():
    pred = [torch.zeros(1, 2, 4, 4)]
    target = torch.zeros(1, 2, 4, 4)
    target[0, 1] = 5.0
    assert float(heatmap_loss(pred, target, torch.tensor([[1.0, 0.0]]))) == 0.0
    assert float(heatmap_loss(pred, target, torch.tensor([[1.0, 1.0]]))) == pytest.approx(0.5 * 25 / 2)


def test_an_unknown_smp_encoder_is_one_clear_error():
    with pytest.raises(ValidationError, match="encoder 'resnet1000'"):
        SmpUNet(3, encoder="resnet1000")
