"""The trainer's tests run torch on two threads (the CI machine has two cores)."""

from __future__ import annotations

import torch

torch.set_num_threads(2)
