"""Exponential moving average of a model's weights, as Ultralytics' ``ModelEMA``.

The averaged copy validates and becomes ``best.pt`` / ``model.pt`` when ``TrainConfig.ema`` is on:
the average of the last few hundred steps' weights scores higher than the last step's on small,
noisy runs. The decay ramps up, ``d(u) = decay * (1 - exp(-u / tau))``, so the first updates follow
the model closely (an average that starts from random weights would lag for thousands of steps).

Parameters are averaged; buffers (BatchNorm's running statistics and counters) are copied from the
model at each update, so they describe the weights the model trains with. Ultralytics also averages
floating-point buffers; the two agree for GroupNorm models (the tiny backbone has no buffers).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn


class ModelEMA:
    """``module``: the averaged copy (eval mode, no gradients); :meth:`update` after every step."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0, updates: int = 0) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay_max = float(decay)
        self.tau = float(tau)
        self.updates = int(updates)

    def decay(self, updates: int) -> float:
        """The weight of the old average at update number ``updates`` (counted from 1)."""
        return self.decay_max * (1 - math.exp(-updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """ema = d * ema + (1 - d) * model for parameters; buffers copied."""
        self.updates += 1
        d = self.decay(self.updates)
        params = dict(model.named_parameters())
        for name, p in self.module.named_parameters():
            src = params[name].detach()
            if p.dtype.is_floating_point:
                p.mul_(d).add_(src.to(p.dtype), alpha=1 - d)
            else:
                p.copy_(src)
        buffers = dict(model.named_buffers())
        for name, b in self.module.named_buffers():
            b.copy_(buffers[name].detach())

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps to resume the average: its weights and update count."""
        return {
            "state_dict": {k: v.detach().cpu() for k, v in self.module.state_dict().items()},
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["state_dict"])
        self.updates = int(state["updates"])
