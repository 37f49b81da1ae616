"""Augment page: pick a preset or edit a custom pipeline, validate and save it, preview it on real images.

Thin: the pipeline rules, the saved setting and the preview (the training loader's own sample path with
the targets drawn) live in :mod:`workbench.services.augmentation`.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from workbench.domain import WorkbenchError
from workbench.services import augmentation
from workbench.ui import context

MODE_KEY = "aug_mode"
PRESET_KEY = "aug_preset"
JSON_KEY = "aug_json"
SEED_KEY = "aug_seed"
COUNT_KEY = "aug_count"
ADD_NAME_KEY = "aug_add_name"
ADD_PARAMS_KEY = "aug_add_params"
PROJECT_KEY = "aug_for_project"
FLASH_KEY = "aug_flash"
MODES = ("Preset", "Custom")
COLUMNS = 4
TILE_MAX_SIDE_PX = 384


def _init_state(slug: str) -> None:
    """Start the editors from the project's saved pipeline (again when another project is opened)."""
    if st.session_state.get(PROJECT_KEY) == slug:
        return
    saved = augmentation.get_pipeline(context.get_workspace(), slug)
    is_preset = isinstance(saved, str)
    st.session_state[PROJECT_KEY] = slug
    st.session_state[MODE_KEY] = MODES[0] if is_preset else MODES[1]
    st.session_state[PRESET_KEY] = saved if is_preset else augmentation.DEFAULT_PIPELINE
    st.session_state[JSON_KEY] = json.dumps(augmentation.EXAMPLE_PIPELINE if is_preset else saved, indent=2)
    st.session_state[SEED_KEY] = 0


def _add_transform() -> None:
    """Append the form's transform to the JSON editor (a callback: it runs before the widgets)."""
    name = st.session_state[ADD_NAME_KEY]
    try:
        params = json.loads(st.session_state.get(ADD_PARAMS_KEY) or "{}")
        if not isinstance(params, dict):
            raise ValueError("parameters are a JSON object such as {\"p\": 0.5}")
        steps = json.loads(st.session_state.get(JSON_KEY) or "[]")
        if not isinstance(steps, list):
            raise ValueError("the pipeline above is not a JSON list; fix it first")
    except (ValueError, json.JSONDecodeError) as exc:
        st.session_state[FLASH_KEY] = ("error", [f"Cannot add {name}: {exc}"])
        return
    errors = augmentation.pipeline_errors([{"name": name, "params": params}])
    if errors:
        st.session_state[FLASH_KEY] = ("error", errors)
        return
    steps.append({"name": name, "params": params})
    st.session_state[JSON_KEY] = json.dumps(steps, indent=2)


def _params_changed() -> None:
    st.session_state[ADD_PARAMS_KEY] = json.dumps(augmentation.KNOWN_TRANSFORMS[st.session_state[ADD_NAME_KEY]])


def _add_form() -> None:
    with st.expander("Add a transform", icon=":material/add:"):
        names = list(augmentation.KNOWN_TRANSFORMS)
        if ADD_NAME_KEY not in st.session_state:
            st.session_state[ADD_NAME_KEY] = names[0]
            _params_changed()
        name = st.selectbox("Transform", names, key=ADD_NAME_KEY, on_change=_params_changed)
        st.text_input("Parameters (JSON object)", key=ADD_PARAMS_KEY)
        try:
            st.caption("Valid parameters: " + ", ".join(augmentation.transform_parameters(name)))
        except WorkbenchError:
            pass
        st.button("Add transform", icon=":material/playlist_add:", key="aug_add", on_click=_add_transform)


def _editor() -> Any:
    """The pipeline being edited: a preset name or the custom JSON text."""
    mode = st.radio("Pipeline", MODES, horizontal=True, key=MODE_KEY)
    if mode == MODES[0]:
        preset = st.selectbox("Preset", augmentation.PRESET_NAMES, key=PRESET_KEY)
        st.caption("Transforms of this preset:")
        st.code(augmentation.pipeline_to_json(preset), language="json")
        return preset
    st.text_area(
        "Custom pipeline (JSON)", key=JSON_KEY, height=260,
        help='A list of albumentations transforms, e.g. [{"name": "HorizontalFlip", "params": {"p": 0.5}}]. '
        "Masks, boxes and keypoints move together; flips swap left/right keypoints by the class's flip pairs.",
    )
    with st.expander("Example", icon=":material/lightbulb:"):
        st.code(json.dumps(augmentation.EXAMPLE_PIPELINE, indent=2), language="json")
    _add_form()
    return st.session_state[JSON_KEY]


def _preview(slug: str, candidate: Any, valid: bool) -> None:
    ws = context.get_workspace()
    st.subheader("Preview")
    if not augmentation.annotated_image_ids(ws, slug):
        st.info("No annotated images yet: annotate some on the **Annotate** page to preview augmentations on them.")
        return
    c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
    count = c1.selectbox("Tiles", (4, 8, 12, 16), index=1, key=COUNT_KEY)
    if c2.button("Re-roll", icon=":material/casino:", key="aug_reroll"):
        st.session_state[SEED_KEY] = int(st.session_state.get(SEED_KEY, 0)) + 1
    seed = int(st.session_state.get(SEED_KEY, 0))
    spec = candidate if valid else None
    st.caption(
        ("Pipeline above (unsaved edits included)" if valid else "Saved pipeline (the one above has errors)")
        + f", seed {seed}: what training sees, with the augmented masks, boxes and keypoints drawn."
    )
    try:
        tiles = augmentation.preview(ws, slug, count=int(count), seed=seed, spec=spec, max_side_px=TILE_MAX_SIDE_PX)
    except WorkbenchError as exc:
        context.show_error(exc)
        return
    cols = st.columns(COLUMNS)
    for i, (image_id, image) in enumerate(tiles):
        cols[i % COLUMNS].image(image, caption=f"image {image_id}", width="stretch")


def render() -> None:
    opened = context.project_page("Augment")
    if opened is None:
        return
    ws, info = opened
    slug = info.slug
    _init_state(slug)
    saved = augmentation.get_pipeline(ws, slug)
    st.caption(f"Saved for training: {context.md_escape(augmentation.describe_pipeline(saved))}")
    candidate = _editor()

    c1, c2, _ = st.columns([1, 1, 4])
    validate = c1.button("Validate", icon=":material/rule:", key="aug_validate")
    save = c2.button("Save", type="primary", icon=":material/save:", key="aug_save")
    errors = augmentation.pipeline_errors(candidate)
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        for message in flash[1]:
            getattr(st, flash[0])(message)
    if save:
        try:
            value = augmentation.set_pipeline(ws, slug, candidate)
        except WorkbenchError as exc:
            for message in getattr(exc, "errors", (str(exc),)):
                st.error(message)
        else:
            st.success(f"Saved: {augmentation.describe_pipeline(value)}. New training runs use it.")
    elif validate:
        if errors:
            for message in errors:
                st.error(message)
        else:
            n = len(augmentation.pipeline_steps(candidate))
            st.success(f"Valid: {context.plural(n, 'transform')}.")
    _preview(slug, candidate, not errors)
