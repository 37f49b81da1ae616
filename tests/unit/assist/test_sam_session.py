"""The SAM session as the annotator uses it: the decoder-only predict gives SamPredictor's own best
mask and score, and the background precompute (``embed``) fills the cache without touching the
image a click is working on."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("segment_anything")

from workbench.assist import sam  # noqa: E402
from workbench.assist.prompts import Prompt  # noqa: E402
from workbench.assist.synthetic import make_scene  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model():  # noqa: ANN201
    return sam.build_model(sam.TINY, None)


@pytest.mark.parametrize(
    "prompt",
    [
        Prompt(points=((50.0, 40.0, True),)),
        Prompt(points=((50.0, 40.0, True), (150.0, 90.0, False))),
        Prompt(box_xywh=(30.0, 20.0, 90.0, 70.0)),
        Prompt(box_xywh=(30.0, 20.0, 90.0, 70.0), points=((60.0, 50.0, True),)),
    ],
)
def test_predict_is_samPredictors_best_mask(tiny_model, tmp_path: Path, prompt: Prompt) -> None:  # noqa: ANN001, N802
    scene = make_scene(2, size_wh=(200, 120))
    s = sam.SamSession(tiny_model, "k", tmp_path)
    s.set_image(scene.image, "12" * 32)
    mask, score = s.predict(prompt)
    coords = labels = None
    if prompt.points:
        coords = np.array([[x, y] for x, y, _ in prompt.points], dtype=np.float32)
        labels = np.array([1 if pos else 0 for _, _, pos in prompt.points])
    box = np.array(prompt.box_xyxy(), dtype=np.float32) if prompt.box_xywh is not None else None
    single = box is None and len(prompt.points) == 1
    masks, scores, _ = s.predictor.predict(point_coords=coords, point_labels=labels, box=box, multimask_output=single)
    best = int(np.argmax(scores))
    assert mask.shape == (120, 200)
    assert np.array_equal(mask, masks[best].astype(np.uint8))
    assert score == pytest.approx(float(scores[best]), abs=1e-5)


def test_background_embed_fills_the_cache_and_leaves_the_current_image(tiny_model, tmp_path: Path) -> None:  # noqa: ANN001
    a, b = make_scene(3, size_wh=(160, 120)), make_scene(4, size_wh=(160, 120))
    s = sam.SamSession(tiny_model, "k", tmp_path)
    s.set_image(a.image, "aa" * 32)
    before = s.predict(Prompt(points=((40.0, 40.0, True),)))
    t = threading.Thread(target=s.embed, args=(b.image, "bb" * 32))
    t.start()
    t.join()
    assert s.cache_file("bb" * 32).is_file() and s.computed == 2
    after = s.predict(Prompt(points=((40.0, 40.0, True),)))  # still image a
    assert np.array_equal(before[0], after[0])
    s.set_image(b.image, "bb" * 32)  # the click on b reads what the background computed
    assert s.computed == 2
    s.embed(b.image, "bb" * 32)
    assert s.computed == 2


@pytest.mark.parametrize("multimask", [True, False])
def test_decoder_with_the_image_state_equals_the_packages(tiny_model, tmp_path: Path, multimask: bool) -> None:  # noqa: ANN001
    import torch

    from workbench.assist import sam_decoder

    scene = make_scene(5, size_wh=(200, 120))
    s = sam.SamSession(tiny_model, "k", tmp_path)
    s.set_image(scene.image, "34" * 32)
    pts = torch.tensor([[[400.0, 300.0], [700.0, 200.0]]]), torch.tensor([[1, 0]])
    with torch.inference_mode():
        sparse, dense = tiny_model.prompt_encoder(points=pts, boxes=None, masks=None)
        want, want_iou = tiny_model.mask_decoder(
            image_embeddings=s.predictor.features, image_pe=tiny_model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask,
        )
        state = sam_decoder.image_state(tiny_model, s.predictor.features)
        got, got_iou = sam_decoder.decode(tiny_model, state, sparse, multimask)
    assert got.shape == want.shape == (1, 3 if multimask else 1, 256, 256)
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4) and torch.allclose(got_iou, want_iou, atol=1e-5)


def test_decoder_threads_leave_torchs_setting(tiny_model, tmp_path: Path) -> None:  # noqa: ANN001
    import torch

    scene = make_scene(6, size_wh=(160, 120))
    s = sam.SamSession(tiny_model, "k", tmp_path, decoder_threads=1)
    s.set_image(scene.image, "56" * 32)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        one = s.predict(Prompt(points=((40.0, 40.0, True),)))
        assert torch.get_num_threads() == 2
        s.decoder_threads = None
        assert np.array_equal(s.predict(Prompt(points=((40.0, 40.0, True),)))[0], one[0])
    finally:
        torch.set_num_threads(before)
