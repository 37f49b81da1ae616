"""Classes page: add, rename, recolour and delete classes; edit each class's keypoint schema and attributes."""

from __future__ import annotations

import streamlit as st

from workbench.domain import (
    BUILTIN_ATTRIBUTES,
    AttributeDef,
    Category,
    KeypointSchema,
    WorkbenchError,
    palette_color,
)
from workbench.services import classes as svc
from workbench.ui import context


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.replace("\n", ",").split(",") if n.strip()]


def schema_from_text(names_text: str, skeleton_text: str, flip_text: str) -> KeypointSchema | None:
    """A keypoint schema from the editor's three fields; None when no names are given."""
    names = _names(names_text)
    if not names:
        if skeleton_text.strip() or flip_text.strip():
            raise ValueError("skeleton and flip pairs need keypoint names first")
        return None
    return KeypointSchema(
        names=tuple(names),
        skeleton=_pairs(skeleton_text, names, "Skeleton pairs"),
        flip_pairs=_pairs(flip_text, names, "Left/right flip pairs"),
    )


def _pairs(text: str, names: list[str], field: str) -> tuple[tuple[int, int], ...]:
    """Pairs of one field; a problem names the field (the form has two fields of pairs)."""
    try:
        return svc.parse_pairs(text, names)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from exc


def _pairs_text(schema: KeypointSchema | None, attr: str) -> str:
    if schema is None:
        return ""
    return ", ".join(f"{schema.names[a]}-{schema.names[b]}" for a, b in getattr(schema, attr))


def _schema_fields(prefix: str, schema: KeypointSchema | None) -> tuple[str, str, str]:
    names = st.text_input(
        "Keypoint names (comma-separated, in placing order)",
        value=", ".join(schema.names) if schema else "",
        key=f"{prefix}_kp_names",
        placeholder="e.g. nose, left_eye, right_eye",
    )
    skeleton = st.text_input(
        "Skeleton pairs",
        value=_pairs_text(schema, "skeleton"),
        key=f"{prefix}_kp_skeleton",
        placeholder="e.g. nose-left_eye, nose-right_eye",
    )
    flips = st.text_input(
        "Left/right flip pairs",
        value=_pairs_text(schema, "flip_pairs"),
        key=f"{prefix}_kp_flip",
        placeholder="e.g. left_eye-right_eye",
    )
    return names, skeleton, flips


def _attributes_field(prefix: str, defs: tuple[AttributeDef, ...]) -> str:
    return st.text_area(
        "Attributes",
        value=svc.attributes_text(defs),
        key=f"{prefix}_attrs",
        height=90,
        placeholder="e.g.\ncolour: select(red, green, blue)\nparked: checkbox\nplate: text\nseats: number",
        help=(
            "One a line: `name: kind`, kind `checkbox` (the default), `text`, `number` or "
            f"`select(option, option, ...)`. Every class has {' and '.join(BUILTIN_ATTRIBUTES)} already; "
            "values are set per shape in the annotator and exported in COCO `attributes`."
        ),
    )


ADD_TEXT_KEYS = ("new_class_name", "new_kp_names", "new_kp_skeleton", "new_kp_flip", "new_attrs")
ADD_COLOR_KEY = "new_class_color"
ADD_CLEAR_KEY = "cls_add_clear"
ADD_OPEN_KEY = "cls_add_open"
ADD_FLASH_KEY = "cls_add_flash"
EDIT_FLASH_KEY = "cls_edit_flash"


def _add(ws, slug: str, n_existing: int) -> None:
    # The form is emptied after an add only: clear_on_submit also emptied it after a refused add, so a
    # typo in the skeleton cost the user the name and every keypoint name they had typed. Emptied by
    # setting the values, not by popping the keys: a popped key reset Streamlit's value but not what
    # the browser showed, so the next class was added with the last one's name, keypoints and colour.
    if st.session_state.pop(ADD_CLEAR_KEY, False) or ADD_COLOR_KEY not in st.session_state:
        for key in ADD_TEXT_KEYS:
            st.session_state[key] = ""
        st.session_state[ADD_COLOR_KEY] = palette_color(n_existing)
    flash = st.session_state.pop(ADD_FLASH_KEY, None)
    if flash:
        st.success(flash)
    # open for the first class, and after an add (the next one usually follows): a form that closed
    # under the user after each class made adding several a chore
    opened = n_existing == 0 or st.session_state.get(ADD_OPEN_KEY, False)
    with st.expander("Add a class", expanded=opened), st.form("add_class"):
        c1, c2 = st.columns([4, 1])
        name = c1.text_input("Class name", key="new_class_name")
        color = c2.color_picker("Colour", key=ADD_COLOR_KEY)  # its value: the session state's, set above
        st.caption("Keypoints (optional): leave empty for a class without keypoints.")
        kp = _schema_fields("new", None)
        attrs = _attributes_field("new", ())
        if st.form_submit_button("Add class", type="primary"):
            try:
                schema = schema_from_text(*kp)
                defs = svc.parse_attributes(attrs)
                cat = svc.add_category(
                    ws, slug, Category(name=name.strip(), color=color, keypoints=schema, attributes=defs)
                )
            except (WorkbenchError, ValueError) as exc:
                st.error(str(exc))
            else:
                st.session_state[ADD_FLASH_KEY] = f"Added class {cat.name!r}."
                st.session_state[ADD_CLEAR_KEY] = True
                st.session_state[ADD_OPEN_KEY] = True
                st.rerun()


def _edit(ws, slug: str, cat: Category, count: int) -> None:
    assert cat.id is not None
    cid = cat.id
    with st.container(border=True):
        c1, c2, c3 = st.columns([4, 1, 2])
        c1.markdown(f"**{context.md_escape(cat.name)}**")
        c2.color_picker("Colour", value=cat.color, key=f"cls_color_{cid}", label_visibility="collapsed")
        kp_txt = f" · keypoints: {', '.join(cat.keypoints.names)}" if cat.keypoints else ""
        attr_txt = f" · attributes: {', '.join(a.name for a in cat.attributes)}" if cat.attributes else ""
        c3.caption(f"{context.plural(count, 'annotation')}{kp_txt}{attr_txt}")
        with st.expander("Edit"):
            new_name = st.text_input("Name", value=cat.name, key=f"cls_name_{cid}")
            kp = _schema_fields(f"cls_{cid}", cat.keypoints)
            attrs = _attributes_field(f"cls_{cid}", cat.attributes)
            if st.button("Save changes", key=f"cls_save_{cid}"):
                try:
                    schema = schema_from_text(*kp)
                    svc.update_category(
                        ws,
                        slug,
                        cid,
                        name=new_name.strip(),
                        color=st.session_state[f"cls_color_{cid}"],
                        keypoints=schema,
                        attributes=svc.parse_attributes(attrs),
                    )
                except (WorkbenchError, ValueError) as exc:
                    st.error(str(exc))
                else:
                    # shown after the rerun (a success written before st.rerun() never reached the page)
                    st.session_state[EDIT_FLASH_KEY] = (cid, f"Saved {new_name.strip()!r}.")
                    st.rerun()
            flash = st.session_state.get(EDIT_FLASH_KEY)
            if flash and flash[0] == cid:
                st.session_state.pop(EDIT_FLASH_KEY)
                st.success(flash[1])
            also = False
            if count:
                also = st.checkbox(
                    f"Also delete its {context.plural(count, 'annotation')}", key=f"cls_del_ann_{cid}"
                )
            if st.button("Delete class", key=f"cls_delete_{cid}"):
                if count and not also:  # say what to do here (the service's message names a CLI flag)
                    st.error(
                        f"{context.md_escape(cat.name)} has {context.plural(count, 'annotation')}: tick "
                        f"*Also delete its {context.plural(count, 'annotation')}* to delete them with the class."
                    )
                else:
                    try:
                        svc.delete_category(ws, slug, cid, delete_annotations=also)
                    except (WorkbenchError, ValueError) as exc:
                        st.error(str(exc))
                    else:
                        st.rerun()
    new_color = st.session_state.get(f"cls_color_{cid}")
    if new_color and new_color != cat.color:
        try:
            svc.update_category(ws, slug, cid, color=new_color)
        except (WorkbenchError, ValueError) as exc:
            st.error(str(exc))


def render() -> None:
    opened = context.project_page("Classes")
    if opened is None:
        return
    ws, info = opened
    cats = svc.list_categories(ws, info.slug)
    _add(ws, info.slug, len(cats))
    cats = svc.list_categories(ws, info.slug)
    if not cats:
        st.info("No classes yet. Add the first one above; keys 1-9 pick classes in the annotator.")
        return
    counts = svc.category_annotation_counts(ws, info.slug)
    for cat in cats:
        _edit(ws, info.slug, cat, counts.get(cat.id or -1, 0))
