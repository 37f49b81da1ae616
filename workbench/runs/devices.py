"""What this machine can train and predict on: the CUDA / MPS probes, a run's queue key, device checks.

torch is imported inside each function: the services and the UI above them ask about devices
without paying for torch's import until they do.
"""

from __future__ import annotations

from workbench.domain import ValidationError, plural
from workbench.train.config import TrainConfig


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def gpu_count() -> int:
    """How many CUDA devices this machine has (0 without CUDA or torch): the Train page offers a
    GPUs setting only above 1."""
    try:
        import torch

        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception:
        return 0


def default_device() -> str:
    """The queue key of a run submitted without one."""
    try:
        import torch

        return "cuda:0" if torch.cuda.is_available() else "cpu"
    except Exception:
        return "cpu"


def queue_device(config: TrainConfig) -> str:
    """The device key a run queues for (one running job per device): cpu, cuda:N, or for a run over
    several GPUs (``gpus`` > 1, under torchrun, rank r on cuda:r) the list cuda:0,...,cuda:G-1."""
    dev = str(config.device)
    gpus = int(config.gpus or 1)
    if dev == "cpu":
        return "cpu"
    if gpus > 1 and (dev.startswith("cuda") or (dev == "auto" and cuda_available())):
        return ",".join(f"cuda:{i}" for i in range(gpus))
    if dev.startswith("cuda:"):
        return dev
    if dev in ("cuda", "auto") and cuda_available():
        return "cuda:0"
    return "mps" if dev == "mps" else "cpu"


def check_train_device(config: TrainConfig) -> None:
    """A run on a device the machine lacks (or over more GPUs than it has) is refused here, not
    left to fail in its worker."""
    dev, gpus = str(config.device), int(config.gpus or 1)
    if not dev.startswith("cuda"):
        if gpus > 1 and dev != "cpu":  # on the CPU, --gpus N runs N gloo processes (DDP without NCCL)
            raise ValidationError(f"{gpus} GPUs need device cuda (or cpu for the multi-process path), not {dev}")
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    need = max(gpus, int(dev.split(":")[1]) + 1 if ":" in dev else 1)
    if need > count:
        asked = f"{gpus} GPUs were asked for" if gpus > 1 else f"device {dev} asks for a GPU"
        raise ValidationError(
            f"{asked}, but this machine has {count} CUDA device(s); train on device cpu"
            + (" (several processes there try the multi-GPU path)" if gpus > 1 else "")
        )


def check_inference_device(device: str) -> None:
    """Refuse, before a model loads, a device torch does not know or this machine lacks."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValidationError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (dev.index or 0) >= count:
            raise ValidationError(
                f"device {device} asks for a GPU, but this machine has {plural(count, 'CUDA device')}; "
                "use --device cpu"
            )
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValidationError("device mps (Apple GPU) is not available on this machine; use --device cpu")
    elif dev.type != "cpu":
        raise ValidationError(f"device {device!r} is not supported here; use cpu, cuda, cuda:N or mps")
