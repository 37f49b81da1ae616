"""HeatmapConfig: the settings of the keypoint-heatmap task, as plain JSON (the ``heatmap`` key of a
run's config). Torch-free, so the config and the CLI validate it without loading torch."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from workbench.domain import ValidationError

if TYPE_CHECKING:
    from workbench.train.config import TrainConfig

ARCHS = ("hourglass", "unet")
ARCH_STRIDES = {"hourglass": 4, "unet": 1}
"""Input pixels per heatmap pixel: the Hourglass predicts at a quarter of its input (Newell et al.),
the U-Net at full size."""
DECODINGS = ("quarter", "taylor")
DEFAULT_ARCH = "hourglass"


class HeatmapConfigError(ValidationError):
    """A heatmap setting that cannot run; the message names ``heatmap.<setting>``."""


@dataclass(frozen=True, slots=True)
class HeatmapConfig:
    input_size: tuple[int, int] = (192, 256)
    """Crop (model input) width, height in pixels (SimpleBaseline's 192 x 256 for people). The
    Hourglass needs multiples of 4 x 2**depth, the U-Net of 2**levels (smp encoders: 32)."""
    sigma: float = 8.0
    """Gaussian target spread in input pixels (2 heatmap pixels at the Hourglass's stride 4)."""
    padding: float = 1.25
    """The crop window is the box times this, widened to the input's aspect ratio."""
    stacks: int = 2
    """Hourglass: modules in sequence, each supervised (intermediate supervision)."""
    depth: int = 4
    """Hourglass: halvings inside each module."""
    channels: int = 128
    """Hourglass feature channels; U-Net (own, without ``encoder``): the first level's width."""
    unet_levels: int = 4
    """Own U-Net: encoder levels (halvings)."""
    flip_prob: float = 0.5
    scale_jitter: float = 0.25
    """Training crops are scaled by a factor in [1 - j, 1 + j]."""
    rotation_deg: float = 30.0
    """Training crops are rotated by up to this many degrees (on 60 % of them, as SimpleBaseline)."""
    flip_test: bool = True
    """Average each prediction with that of the mirrored crop (left/right channels swapped back)."""
    decoding: str = "quarter"
    """quarter: argmax + a quarter pixel towards the higher neighbour; taylor: DARK's Taylor step."""
    pck_alpha: float = 0.2
    flip_pairs: dict[str, list[list[int]]] = field(default_factory=dict)
    """Per class, explicit left/right keypoint pairs (0-based); else the schema's, else from names."""
    kpt_oks_sigmas: dict[str, list[float]] = field(default_factory=dict)
    """Per class, COCO OKS sigmas per keypoint; else COCO's for 17 keypoints, else 0.05 each."""

    def __post_init__(self) -> None:
        if isinstance(self.input_size, list | tuple):
            object.__setattr__(self, "input_size", tuple(self.input_size))
        problems = self.problems()
        if problems:
            raise HeatmapConfigError("; ".join(problems))

    def problems(self, arch: str | None = None, encoder: str | None = None) -> list[str]:
        """Each invalid setting in one phrase naming it; with ``arch``, the input size against it."""
        out: list[str] = []

        def bad(name: str, why: str) -> None:
            out.append(f"heatmap.{name}: {why}")

        size = self.input_size
        if not (isinstance(size, tuple) and len(size) == 2 and all(_integer(v) and v >= 8 for v in size)):
            bad("input_size", f"[width, height] of integers >= 8, got {size!r}")
        elif arch is not None:
            m = self.size_multiple(arch, encoder)
            if size[0] % m or size[1] % m:
                bad("input_size", f"{arch} needs multiples of {m}, got {list(size)}")
        for name in ("sigma", "padding"):
            v = getattr(self, name)
            if not (_number(v) and v > 0):
                bad(name, f"{v!r} is not a number > 0")
        for name, lo in (("stacks", 1), ("depth", 1), ("channels", 4), ("unet_levels", 1)):
            v = getattr(self, name)
            if not (_integer(v) and v >= lo):
                bad(name, f"{v!r} is not an integer >= {lo}")
        for name in ("flip_prob", "scale_jitter"):
            v = getattr(self, name)
            if not (_number(v) and 0 <= v < 1 or (name == "flip_prob" and v == 1)):
                bad(name, f"{v!r} is not in [0, 1{']' if name == 'flip_prob' else ')'}")
        if not (_number(self.rotation_deg) and 0 <= self.rotation_deg <= 180):
            bad("rotation_deg", f"{self.rotation_deg!r} is not in [0, 180]")
        if not (_number(self.pck_alpha) and self.pck_alpha > 0):
            bad("pck_alpha", f"{self.pck_alpha!r} is not a number > 0")
        if not isinstance(self.flip_test, bool):
            bad("flip_test", f"{self.flip_test!r} is not true or false")
        if self.decoding not in DECODINGS:
            bad("decoding", f"{self.decoding!r} is not one of {list(DECODINGS)}")
        if not isinstance(self.flip_pairs, dict) or not all(
            isinstance(v, list | tuple) and all(isinstance(p, list | tuple) and len(p) == 2 and all(_integer(i) for i in p) for p in v)
            for v in self.flip_pairs.values()
        ):
            bad("flip_pairs", "an object of class -> [[a, b], ...] keypoint index pairs")
        if not isinstance(self.kpt_oks_sigmas, dict) or not all(
            isinstance(v, list | tuple) and all(_number(s) and s > 0 for s in v) for v in self.kpt_oks_sigmas.values()
        ):
            bad("kpt_oks_sigmas", "an object of class -> [sigma per keypoint] (numbers > 0)")
        return out

    def size_multiple(self, arch: str, encoder: str | None = None) -> int:
        if arch == "hourglass":
            return 4 * 2 ** int(self.depth)
        return 32 if encoder else 2 ** int(self.unet_levels)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "heatmap") -> HeatmapConfig:
        """From JSON; an unknown key names ``heatmap.<key>``."""
        if isinstance(data, HeatmapConfig):
            return data
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise HeatmapConfigError(f"{where}: an object of heatmap settings, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise HeatmapConfigError(f"{where}.{unknown[0]}: unknown heatmap setting; known: {sorted(names)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise HeatmapConfigError(f"{where}: {exc}") from None


def heatmap_config(config: TrainConfig) -> HeatmapConfig:
    """The run's heatmap settings (defaults where the config has none)."""
    return HeatmapConfig.from_dict(getattr(config, "heatmap", None))


def config_problems(config: TrainConfig) -> list[str]:
    """The task's settings' problems, one phrase each naming the setting (the registry's config
    check calls this, torch-free)."""
    try:
        hcfg = heatmap_config(config)
    except ValidationError as exc:
        return [str(exc)]
    arch = config.arch or DEFAULT_ARCH
    problems = hcfg.problems(arch, config.encoder) if arch in ARCH_STRIDES else []
    if arch == "hourglass" and config.encoder is not None:
        problems.append(f"encoder {config.encoder!r} is for arch unet; the Hourglass has none")
    if config.weights == "coco" or (config.weights == "imagenet" and not (arch == "unet" and config.encoder)):
        problems.append(
            f"weights {config.weights!r} do not exist for a heatmap {arch}; 'imagenet' is for unet with an "
            "encoder, else 'none' or a checkpoint file"
        )
    return problems


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
