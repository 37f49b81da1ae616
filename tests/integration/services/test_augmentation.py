"""The project's augmentation pipeline: saved and validated per project, previewed on real images
through the training loader's own sample path, and used by new training runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workbench.domain import ValidationError
from workbench.services import augmentation, training
from workbench.services.augmentation import PipelineError
from workbench.services.demo import create_demo_project
from workbench.services.projects import create_project
from workbench.services.workspace import Workspace

CUSTOM = [
    {"name": "HorizontalFlip", "params": {"p": 1.0}},
    {"name": "Affine", "params": {"rotate": [-20, 20], "p": 1.0}},
    {"name": "RandomBrightnessContrast", "params": {"p": 0.5}},
]


@pytest.fixture
def demo(ws: Workspace) -> str:
    return create_demo_project(ws, num_images=4).slug


# ------------------------------------------------------------------------------------------ the setting


def test_default_is_light(ws: Workspace, project: str) -> None:
    assert augmentation.get_pipeline(ws, project) == "light"


@pytest.mark.parametrize(
    "spec",
    [
        "none",
        "heavy",
        CUSTOM,
        json.dumps(CUSTOM),
        [],
        [{"name": "HorizontalFlip", "p": 0.5}],  # the flat form is normalised
    ],
)
def test_save_and_load_round_trip(ws: Workspace, project: str, spec: object) -> None:
    saved = augmentation.set_pipeline(ws, project, spec)
    assert augmentation.get_pipeline(ws, project) == saved
    if isinstance(spec, str) and not spec.startswith("["):
        assert saved == spec
    else:
        assert isinstance(saved, list)
        assert all(set(step) == {"name", "params"} for step in saved)
    if spec == [{"name": "HorizontalFlip", "p": 0.5}]:
        assert saved == [{"name": "HorizontalFlip", "params": {"p": 0.5}}]


@pytest.mark.parametrize(
    ("spec", "messages"),
    [
        ("wild", ["unknown augmentation preset 'wild'"]),
        ("[{", ["not valid JSON"]),
        ({"name": "HorizontalFlip"}, ["a pipeline is a list of transforms"]),
        ([{"name": "Warp9"}], ["pipeline[0] (Warp9): unknown transform 'Warp9'"]),
        ([{"name": "HorizontalFlip", "params": {"p": 2}}], ["pipeline[0] (HorizontalFlip): bad parameter: p"]),
        (
            [{"name": "HorizontalFlip"}, {"name": "Affine", "params": {"spin": 3}}, {"name": "RandomCrop"}],
            [
                "pipeline[1] (Affine): unknown parameter(s) ['spin']",
                "pipeline[2] (RandomCrop): bad parameter: height; Field required",
            ],
        ),
    ],
)
def test_bad_specs_are_refused_with_their_messages(
    ws: Workspace, project: str, spec: object, messages: list[str]
) -> None:
    augmentation.set_pipeline(ws, project, "medium")
    with pytest.raises(PipelineError) as err:
        augmentation.set_pipeline(ws, project, spec)
    assert len(err.value.errors) == len(messages)
    for got, want in zip(err.value.errors, messages, strict=True):
        assert want in got
        assert "input_value" not in got and "errors.pydantic.dev" not in got
    assert augmentation.pipeline_errors(spec) == list(err.value.errors)
    assert augmentation.get_pipeline(ws, project) == "medium"  # nothing saved


def test_every_offered_transform_validates_with_its_starting_parameters() -> None:
    for name, params in augmentation.KNOWN_TRANSFORMS.items():
        assert augmentation.pipeline_errors([{"name": name, "params": params}]) == [], name
    assert augmentation.pipeline_errors(augmentation.EXAMPLE_PIPELINE) == []
    assert "p" in augmentation.transform_parameters("HorizontalFlip")


# ------------------------------------------------------------------------------------------- preview


def test_preview_draws_targets_over_augmented_real_images(ws: Workspace, demo: str) -> None:
    ids = augmentation.annotated_image_ids(ws, demo)
    assert len(ids) == 4
    tiles = augmentation.preview(ws, demo, count=6, seed=3, spec=CUSTOM)
    bare = augmentation.preview(ws, demo, count=6, seed=3, spec=CUSTOM, overlay=False)
    samples = augmentation.preview_samples(ws, demo, count=6, seed=3, spec=CUSTOM)
    assert [i for i, _ in tiles] == [ids[k % 4] for k in range(6)] == [t.image_id for t in samples]
    for (_, img), (_, raw), tile in zip(tiles, bare, samples, strict=True):
        assert img.dtype == np.uint8 and img.shape == raw.shape == tile.sample.image.shape
        assert np.array_equal(raw, tile.sample.image)
        if len(tile.sample.labels):
            changed = (img != raw).any(axis=2)
            assert changed.any()
            # the overlay lies on the augmented instances (tinted masks), not elsewhere at random
            union = tile.sample.masks.any(axis=0)
            assert changed[union].mean() > 0.9


def test_preview_is_seeded(ws: Workspace, demo: str) -> None:
    a = augmentation.preview(ws, demo, count=4, seed=0, spec="heavy")
    b = augmentation.preview(ws, demo, count=4, seed=0, spec="heavy")
    c = augmentation.preview(ws, demo, count=4, seed=1, spec="heavy")
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b, strict=True))
    assert any(x.shape != z.shape or not np.array_equal(x, z) for (_, x), (_, z) in zip(a, c, strict=True))


def test_preview_uses_the_saved_pipeline_and_none_leaves_images_unchanged(ws: Workspace, demo: str) -> None:
    from workbench.images.storage import load_image_rgb

    augmentation.set_pipeline(ws, demo, "none")
    tiles = augmentation.preview_samples(ws, demo, count=4)
    ds_paths = {it.image.id: it.image.path for it in training.labelled_dataset(ws, demo, None).items}
    for tile in tiles:
        assert np.array_equal(tile.sample.image, load_image_rgb(ws.project_dir(demo), ds_paths[tile.image_id]))


def test_preview_shrinks_tiles_and_picks_images(ws: Workspace, demo: str) -> None:
    ids = augmentation.annotated_image_ids(ws, demo)
    tiles = augmentation.preview(ws, demo, count=3, image_ids=[ids[1]], max_side_px=100)
    assert [i for i, _ in tiles] == [ids[1]] * 3
    assert all(max(img.shape[:2]) == 100 for _, img in tiles)
    with pytest.raises(ValidationError, match="no annotated image with id"):
        augmentation.preview(ws, demo, image_ids=[99999])
    with pytest.raises(PipelineError, match="unknown transform"):
        augmentation.preview(ws, demo, spec=[{"name": "Nope"}])


def test_preview_of_a_project_without_annotations_is_empty(ws: Workspace, project: str) -> None:
    assert augmentation.annotated_image_ids(ws, project) == []
    assert augmentation.preview(ws, project) == []


def test_preview_equals_what_the_training_loader_yields(ws: Workspace, demo: str) -> None:
    """Same image, same per-sample seed: the run folder's MaskRCNNDataset gives the preview's targets."""
    import torch

    from workbench.augment import Augmenter
    from workbench.train.dataset import MaskRCNNDataset, load_coco_split, schema_from_categories

    augmentation.set_pipeline(ws, demo, CUSTOM)
    info = training.start_training(ws, demo, start=False)
    run_dir = Path(info.run_dir)
    cfg = json.loads((run_dir / "config.json").read_text())
    train = load_coco_split(run_dir / "dataset" / "coco_train.json", run_dir / "dataset")
    loader_set = MaskRCNNDataset(
        train.items, schema_from_categories(train.categories),
        Augmenter(cfg["augmentation"], min_area_px=cfg["min_instance_area"]),
    )
    ids = [it.image.id for it in train.items]  # the run keeps the store's image ids
    seed, compared = 5, 0
    for i, tile in enumerate(augmentation.preview_samples(ws, demo, count=4, seed=seed)):
        if tile.image_id not in ids:
            continue  # a val image
        image, target = loader_set[(ids.index(tile.image_id), seed * 1_000_003 + i)]
        s = tile.sample
        assert torch.equal(image, torch.from_numpy(s.image.copy()).permute(2, 0, 1).float().div(255))
        assert torch.equal(target["masks"], torch.from_numpy(s.masks))
        assert torch.equal(target["boxes"], torch.from_numpy(s.boxes_xyxy))
        assert torch.equal(target["keypoints"], torch.from_numpy(s.keypoints))
        compared += 1
    assert compared >= 2


# ------------------------------------------------------------------------------------------ training


def test_training_uses_the_project_pipeline_unless_overridden(ws: Workspace, demo: str) -> None:
    augmentation.set_pipeline(ws, demo, CUSTOM)
    assert training.default_config(4, cuda=False, ws=ws, slug=demo).augmentation == CUSTOM
    assert training.default_config(4, cuda=False, ws=ws, slug=demo, augmentation="none").augmentation == "none"
    assert training.default_config(4, cuda=False).augmentation == "light"
    info = training.start_training(ws, demo, start=False)
    assert info.config["augmentation"] == CUSTOM
    assert json.loads((Path(info.run_dir) / "config.json").read_text())["augmentation"] == CUSTOM
    cfg = training.config_with(training.default_config(4, cuda=False), augmentation="heavy")
    info = training.start_training(ws, demo, cfg, start=False, name="explicit")
    assert info.config["augmentation"] == "heavy"


def test_empty_project_setting_falls_back_to_light(ws: Workspace) -> None:
    slug = create_project(ws, "P").slug
    assert training.default_config(10, cuda=False, ws=ws, slug=slug).augmentation == "light"
