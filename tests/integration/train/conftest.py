"""DDP tests run torch on two threads in this process, as the trainer tests do."""

from __future__ import annotations

import torch

torch.set_num_threads(2)
