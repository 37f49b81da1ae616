"""AppTest for the Augment page on real workspaces: presets, custom pipelines, errors, preview grid."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from tests.support.apptest import APP, NOTICES, app, button, texts
from workbench.services import augmentation
from workbench.services.demo import create_demo_project
from workbench.services.projects import create_project
from workbench.services.workspace import Workspace


def images(at: AppTest) -> list:
    """(caption, media url) of every st.image; the url is a hash of the encoded image."""
    return [(e.proto.imgs[0].caption, e.proto.imgs[0].url) for e in at.get("image")]


def test_empty_project_says_how_to_get_a_preview(ws: Workspace) -> None:
    slug = create_project(ws, "Empty").slug
    at = app("augment", slug)
    assert "No annotated images yet" in texts(at, NOTICES)
    assert "preset 'light'" in texts(at, NOTICES)  # the default, saved for training
    assert not images(at)
    assert not [b for b in at.button if b.label == "Re-roll"]


def test_preview_renders_augmented_images_and_reroll_changes_them(ws: Workspace) -> None:
    slug = create_demo_project(ws, num_images=4).slug
    at = app("augment", slug)
    first = images(at)
    assert len(first) == 8
    assert {c for c, _ in first} == {f"image {i}" for i in augmentation.annotated_image_ids(ws, slug)}
    assert "seed 0" in texts(at, NOTICES)
    at.run()
    assert images(at) == first  # same seed, same grid
    button(at, "Re-roll").click().run()
    assert not at.exception, at.exception
    assert at.session_state["aug_seed"] == 1 and "seed 1" in texts(at, NOTICES)
    assert len(images(at)) == 8 and images(at) != first


def test_save_a_preset(ws: Workspace) -> None:
    slug = create_demo_project(ws, num_images=4).slug
    at = app("augment", slug)
    at.selectbox(key="aug_preset").select("heavy").run()
    button(at, "Save").click().run()
    assert not at.exception, at.exception
    assert "Saved: preset 'heavy'" in texts(at, NOTICES)
    assert augmentation.get_pipeline(ws, slug) == "heavy"


def test_save_a_custom_pipeline_built_with_the_form(ws: Workspace) -> None:
    slug = create_demo_project(ws, num_images=4).slug
    at = app("augment", slug)
    at.radio(key="aug_mode").set_value("Custom").run()
    at.text_area(key="aug_json").input(json.dumps([{"name": "VerticalFlip", "params": {"p": 0.5}}])).run()
    at.selectbox(key="aug_add_name").select("GaussNoise").run()
    assert json.loads(at.text_input(key="aug_add_params").value) == augmentation.KNOWN_TRANSFORMS["GaussNoise"]
    at.text_input(key="aug_add_params").input('{"p": 0.25}').run()
    button(at, "Add transform").click().run()
    assert not at.exception, at.exception
    button(at, "Validate").click().run()
    assert "Valid: 2 transforms" in texts(at, NOTICES)
    button(at, "Save").click().run()
    assert not at.exception, at.exception
    assert augmentation.get_pipeline(ws, slug) == [
        {"name": "VerticalFlip", "params": {"p": 0.5}},
        {"name": "GaussNoise", "params": {"p": 0.25}},
    ]
    assert "custom: VerticalFlip, GaussNoise" in texts(at, NOTICES)
    # a fresh session starts from the saved custom pipeline
    at2 = app("augment", slug)
    assert at2.radio(key="aug_mode").value == "Custom"
    assert json.loads(at2.text_area(key="aug_json").value)[1]["name"] == "GaussNoise"


def test_a_bad_pipeline_shows_each_error_and_is_not_saved(ws: Workspace) -> None:
    slug = create_demo_project(ws, num_images=4).slug
    augmentation.set_pipeline(ws, slug, "medium")
    at = app("augment", slug)
    at.radio(key="aug_mode").set_value("Custom").run()
    bad = [{"name": "Warp9"}, {"name": "HorizontalFlip", "params": {"p": 3}}]
    at.text_area(key="aug_json").input(json.dumps(bad)).run()
    button(at, "Save").click().run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 2
    assert "unknown transform 'Warp9'" in errors[0] and "pipeline[1] (HorizontalFlip): bad parameter: p" in errors[1]
    assert augmentation.get_pipeline(ws, slug) == "medium"
    assert "Saved pipeline (the one above has errors)" in texts(at, NOTICES)
    assert len(images(at)) == 8  # the saved pipeline is still previewed


def test_adding_a_transform_with_bad_parameters_says_why(ws: Workspace) -> None:
    slug = create_project(ws, "P").slug
    at = app("augment", slug)
    at.radio(key="aug_mode").set_value("Custom").run()
    before = at.text_area(key="aug_json").value
    at.selectbox(key="aug_add_name").select("HorizontalFlip").run()
    at.text_input(key="aug_add_params").input('{"flip": 1}').run()
    button(at, "Add transform").click().run()
    assert not at.exception, at.exception
    assert any("unknown parameter(s) ['flip']" in e.value for e in at.error)
    assert at.text_area(key="aug_json").value == before


def test_train_page_defaults_to_the_project_pipeline(ws: Workspace) -> None:
    from streamlit.util import calc_hash

    slug = create_demo_project(ws, num_images=4).slug
    custom = [{"name": "VerticalFlip", "params": {"p": 0.5}}]
    augmentation.set_pipeline(ws, slug, custom)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["wb_project"] = slug
    at.run()
    at._page_hash = calc_hash("train")
    at.run()
    assert not at.exception, at.exception
    box = at.selectbox(key="train_aug")
    assert box.value == custom and box.format_func(box.value) == "project pipeline (custom)"
    assert [box.format_func(o) for o in box.options][1:] == ["none", "light", "medium", "heavy"]
