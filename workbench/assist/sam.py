"""Segment Anything: point and box prompts -> a mask, the image embedding cached on disk per image and model.

Package: ``segment-anything`` (Meta's reference code, pure Python over the torch we already ship):
the same model classes run on CPU and GPU through torch, the official checkpoints load as they are,
and ``sam_model_registry[variant](checkpoint=None)`` builds the real model with random weights, so
the plumbing is tested without downloads. An ONNX export would need an export step per checkpoint
and a second runtime for what torch already does.

The model sees the upright original image (EXIF orientation applied), resized by SamPredictor to a
1024 long side; prompts are given and masks returned in natural pixels of that upright image
(SamPredictor's ResizeLongestSide maps them). The embedding (the expensive encoder pass) is computed
once per image (its sha256) and model (variant + weights file identity), written atomically under
``cache_dir/<model key>/<sha256>.pt`` and reused per click; only the prompt decoder runs per click.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from workbench.assist import sam_decoder
from workbench.assist.prompts import Prompt
from workbench.domain import ValidationError
from workbench.utils.atomic import atomic_file

CHECKPOINTS = {"vit_b": "sam_vit_b_01ec64.pth", "vit_l": "sam_vit_l_0b3195.pth", "vit_h": "sam_vit_h_4b8939.pth"}
DEFAULT_VARIANT = "vit_b"
TINY = "tiny"
"""The real Sam classes in a tiny configuration (random weights): tests and the benchmark's plumbing."""


class SamWeightsMissingError(ValidationError):
    """The checkpoint file of a SAM variant is not where the workbench looks for it."""


def weights_dir(root: Path) -> Path:
    """Where SAM checkpoints go: ``$WORKBENCH_SAM_DIR`` or ``<workspace>/assist/sam``."""
    env = os.environ.get("WORKBENCH_SAM_DIR")
    return Path(env) if env else Path(root) / "sam"


def weights_path(root: Path, variant: str) -> Path:
    if variant not in CHECKPOINTS:
        raise ValidationError(f"unknown SAM variant {variant!r}; choose one of {', '.join(CHECKPOINTS)}")
    path = weights_dir(root) / CHECKPOINTS[variant]
    if not path.is_file():
        raise SamWeightsMissingError(
            f"SAM {variant} weights are not present: download {CHECKPOINTS[variant]} (the {variant} checkpoint "
            f"linked from the segment-anything README) on a connected machine and place the file at {path} "
            "(or set WORKBENCH_SAM_DIR), or use --method grabcut|wand|scissors"
        )
    return path


def build_model(variant: str, weights: Path | None, *, device: str = "cpu", seed: int = 0) -> torch.nn.Module:
    """The real Sam model; ``weights=None`` leaves its random initialisation (seeded)."""
    from segment_anything.build_sam import _build_sam, sam_model_registry

    torch.manual_seed(seed)
    if variant == TINY:
        model = _build_sam(encoder_embed_dim=64, encoder_depth=2, encoder_num_heads=2, encoder_global_attn_indexes=[1])
    elif variant in CHECKPOINTS:
        model = sam_model_registry[variant](checkpoint=None)
    else:
        raise ValidationError(f"unknown SAM variant {variant!r}; choose one of {', '.join(CHECKPOINTS)}")
    if weights is not None:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    return model.to(device).eval()


def model_key(variant: str, weights: Path | None, seed: int = 0) -> str:
    """What the cache is keyed by: another variant or another weights file means another embedding."""
    if weights is None:
        return f"{variant}-random{seed}"
    st = Path(weights).stat()
    return f"{variant}-{st.st_size}-{st.st_mtime_ns}"


DECODER_THREADS = 1
"""Torch threads for a click's decoder on a CPU: its small matrix products gain little from a second
thread and lose much when the cores are busy (bench/RESULTS.md: p95 154 ms with one thread, 855 ms
with two, at load 2.5 on 2 cores). The encoder keeps torch's setting."""


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    if n is None or n == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class SamSession:
    """A loaded model and its on-disk embedding cache; ``computed`` counts encoder passes.

    One lock per session: the background precompute (``embed``) and a click (``set_image`` then
    ``predict``) never run the model at the same time, and a click on an image whose embedding the
    background is computing waits for it instead of computing it twice.
    """

    model: torch.nn.Module
    key: str
    cache_dir: Path
    computed: int = 0
    decoder_threads: int | None = DECODER_THREADS

    def __post_init__(self) -> None:
        from segment_anything import SamPredictor

        self.predictor = SamPredictor(self.model)
        self._current: str | None = None
        self._state: sam_decoder.ImageState | None = None
        self.lock = threading.RLock()

    def cache_file(self, sha256: str) -> Path:
        if not sha256 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValidationError(f"an image's sha256 is hex, got {sha256!r}")
        return self.cache_dir / self.key / f"{sha256}.pt"

    def _cached(self, sha256: str, hw: tuple[int, int]) -> dict | None:
        path = self.cache_file(sha256)
        if not path.is_file():
            return None
        saved = torch.load(path, map_location="cpu", weights_only=True)
        return saved if tuple(saved["original_size"]) == hw else None

    @torch.inference_mode()
    def embed(self, image: np.ndarray, sha256: str) -> dict:
        """The image's embedding from the cache, or computed by the encoder and stored (atomically);
        the predictor's current image is left as it is (the background precompute calls this)."""
        with self.lock:
            h, w = image.shape[:2]
            saved = self._cached(sha256, (h, w))
            if saved is not None:
                return saved
            p = self.predictor
            resized = p.transform.apply_image(np.ascontiguousarray(image))
            x = torch.as_tensor(resized, device=p.device).permute(2, 0, 1).contiguous()[None, :, :, :]
            input_size = tuple(int(v) for v in x.shape[-2:])
            features = self.model.image_encoder(self.model.preprocess(x))
            self.computed += 1
            saved = {"features": features.cpu(), "original_size": [h, w], "input_size": list(input_size)}
            with atomic_file(self.cache_file(sha256), fsync=False) as f:
                torch.save(saved, f)
            return saved

    def set_image(self, image: np.ndarray, sha256: str) -> None:
        """Make ``image`` current: from the cache when its embedding is there, else encode and store it."""
        with self.lock:
            if self._current == sha256:
                return
            saved = self.embed(image, sha256)
            p = self.predictor
            p.reset_image()
            p.features = saved["features"].to(p.device)
            p.original_size = tuple(int(v) for v in saved["original_size"])
            p.input_size = tuple(int(v) for v in saved["input_size"])
            p.is_image_set = True
            self._current = sha256
            self._state = sam_decoder.image_state(self.model, p.features)

    @torch.inference_mode()
    def predict(self, prompt: Prompt) -> tuple[np.ndarray, float]:
        """The decoder alone: the best of SAM's candidate masks (by its predicted IoU) and that score.

        SamPredictor.predict's steps (prompt encoder, mask decoder, upscaling), except that the
        decoder's image-only first steps are computed once per image (sam_decoder.py) and only the
        chosen mask is upscaled to the image (it upscaled all three candidates); the chosen mask and
        score are the same.
        """
        if prompt.box_xywh is None and not prompt.points:
            raise ValidationError("SAM needs a box (--box X,Y,W,H) or clicks (--point X,Y[,+|-])")
        with self.lock:
            p = self.predictor
            if not p.is_image_set:
                raise ValidationError("SAM has no image set: set_image comes before predict")
            points = box = None
            if prompt.points:
                coords = np.array([[x, y] for x, y, _ in prompt.points], dtype=np.float32)
                labels = np.array([1 if pos else 0 for _, _, pos in prompt.points], dtype=np.int32)
                c = torch.as_tensor(p.transform.apply_coords(coords, p.original_size), device=p.device)[None]
                points = (c, torch.as_tensor(labels, device=p.device)[None])
            if prompt.box_xywh is not None:
                b = p.transform.apply_boxes(np.array([prompt.box_xyxy()], dtype=np.float32), p.original_size)
                box = torch.as_tensor(b, dtype=torch.float, device=p.device)
            single = box is None and len(prompt.points) == 1
            sparse, _ = self.model.prompt_encoder(points=points, boxes=box, masks=None)
            assert self._state is not None
            with _torch_threads(self.decoder_threads if p.device.type == "cpu" else None):
                low_res, iou = sam_decoder.decode(self.model, self._state, sparse, single)
            best = int(torch.argmax(iou[0]))
            mask = self.model.postprocess_masks(low_res[:, best : best + 1], p.input_size, p.original_size)
            out = (mask[0, 0] > self.model.mask_threshold).cpu().numpy().astype(np.uint8)
            return out, float(iou[0, best])


_SESSIONS: dict[tuple[str, str, str, str], SamSession] = {}


def session(root: Path, variant: str | None, *, device: str = "cpu") -> SamSession:
    """The process's session for a variant (loaded once); weights from the file the user placed."""
    variant = variant or DEFAULT_VARIANT
    weights = weights_path(root, variant)
    key = model_key(variant, weights)
    cache_dir = Path(root) / "embeddings"
    k = (variant, key, device, str(cache_dir))
    if k not in _SESSIONS:
        _SESSIONS[k] = SamSession(build_model(variant, weights, device=device), key, cache_dir)
    return _SESSIONS[k]


def segment(
    root: Path, image: np.ndarray, sha256: str, prompt: Prompt, *, model: str | None = None, device: str = "cpu"
) -> tuple[np.ndarray, float]:
    s = session(root, model, device=device)
    s.set_image(image, sha256)
    return s.predict(prompt)
