"""Train page: one Train button with defaults that fit the project, runs with live progress, cancel.

The run itself is a separate process (workbench.runs); this page only reads the store and the run
folder, so closing the browser or restarting the UI loses nothing: runs are found again here.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from workbench.domain import RunInfo, ValidationError, WorkbenchError
from workbench.services import semantic, training
from workbench.services.workspace import Workspace
from workbench.ui import context
from workbench.ui.app_pages import train_design, train_pose
from workbench.ui.app_pages.annotate_assist import sam_models_panel

POLL_S = 2.0
IDLE_POLL_S = 10.0
STATUS_ICONS = {
    "queued": ":material/schedule:",
    "running": ":material/sync:",
    "succeeded": ":material/check_circle:",
    "failed": ":material/error:",
    "cancelled": ":material/cancel:",
}
PICK_KEY = "train_run_pick"
FLASH_KEY = "train_flash"


def run_label(info: RunInfo) -> str:
    return f"#{info.id} · {info.name} · {info.status}"


def runs_table(runs: list[RunInfo]) -> list[dict[str, Any]]:
    """One row per run for st.dataframe: id, name, status, device, progress, best mask AP."""
    rows = []
    for r in runs:
        p = r.progress or {}
        total = p.get("total_steps") or 0
        best = (r.metrics or {}).get("segm_ap")
        rows.append({
            "id": r.id,
            "name": r.name,
            "status": r.status,
            "device": r.device or "",
            "progress": f"{p.get('step', 0)}/{total}" if total else "",
            "mask AP (val)": None if best is None else round(float(best), 3),
            "created": r.created_at.strftime("%Y-%m-%d %H:%M") if r.created_at else "",
        })
    return rows


def _settings(defaults: Any) -> dict[str, Any]:
    BACKBONES, DEVICES, WEIGHTS = training.BACKBONES, training.DEVICES, training.WEIGHTS  # noqa: N806

    with st.expander("Settings", icon=":material/tune:"):
        c1, c2, c3 = st.columns(3)
        epochs = c1.number_input("Epochs", 1, 1000, int(defaults.epochs), key="train_epochs")
        batch = c2.number_input("Batch size", 1, 256, int(defaults.batch_size), key="train_batch")
        lr = c3.number_input(
            "Learning rate (0 = automatic)", 0.0, 1.0, float(defaults.lr or 0.0), format="%.5f", key="train_lr"
        )
        backbone = c1.selectbox("Backbone", BACKBONES, index=BACKBONES.index(defaults.backbone), key="train_backbone")
        weights = c2.selectbox(
            "Weights", WEIGHTS, index=WEIGHTS.index(defaults.weights) if defaults.weights in WEIGHTS else 0,
            key="train_weights", help="coco: torchvision's COCO weights (downloaded once, or placed in TORCH_HOME)",
        )
        devices = list(DEVICES)
        device = c3.selectbox(
            "Device", devices, index=devices.index(defaults.device) if defaults.device in devices else 0,
            key="train_device",
        )
        # The project's pipeline (Augment page) is the default; a custom one is offered as is.
        aug_options: list[Any] = list(training.AUGMENTATION_PRESETS)
        if not isinstance(defaults.augmentation, str):
            aug_options.insert(0, defaults.augmentation)
        aug = c1.selectbox(
            "Augmentation", aug_options,
            index=aug_options.index(defaults.augmentation) if defaults.augmentation in aug_options else 1,
            format_func=lambda a: a if isinstance(a, str) else "project pipeline (custom)",
            key="train_aug", help="The project's pipeline is edited and previewed on the Augment page",
        )
        name = c2.text_input("Run name (optional)", key="train_name")
        patience = c3.number_input(
            "Stop early after epochs without improvement (0 = never)", 0, 1000,
            int(defaults.early_stopping_patience or 0), key="train_patience",
            help="Validation mask AP is checked after every epoch; the model kept is the best epoch's.",
        )
        gpus = int(defaults.gpus)
        n_gpus = training.gpu_count()
        if n_gpus > 1:  # one GPU (or none) leaves nothing to choose
            gpus = c3.number_input(
                "GPUs", 1, n_gpus, min(max(gpus, 1), n_gpus), key="train_gpus",
                help=f"This machine has {n_gpus} GPUs. More than 1 runs the training under torchrun "
                "(one process per GPU, DDP); the batch size is per GPU.",
            )
        mosaic = c1.number_input(
            "Mosaic (share of images)", 0.0, 1.0, float(defaults.mosaic), step=0.1, key="train_mosaic",
            help="Training images made of four, as Ultralytics' mosaic (0 = off).",
        )
        copy_paste = c2.number_input(
            "Copy-paste (share of images)", 0.0, 1.0, float(defaults.copy_paste), step=0.1, key="train_copy_paste",
            help="Training images that get another image's objects pasted on top (0 = off).",
        )
        close_mosaic = c3.number_input(
            "Last epochs without mosaic / copy-paste", 0, 1000, int(defaults.close_mosaic), key="train_close_mosaic",
            help="The run ends on plain images, like those it is evaluated on (Ultralytics' close_mosaic).",
        )
    return {
        **_semantic_settings(defaults),
        **train_pose.heatmap_settings(defaults),
        "epochs": int(epochs), "batch_size": int(batch), "lr": float(lr) or None, "backbone": backbone,
        "weights": weights, "device": device, "augmentation": aug, "gpus": int(gpus),
        "name": name.strip() or None, "early_stopping_patience": int(patience) or None,
        "mosaic": float(mosaic), "copy_paste": float(copy_paste), "close_mosaic": int(close_mosaic),
    }


def _semantic_settings(defaults: Any) -> dict[str, Any]:
    """The semantic task's own settings (architecture, encoder, size, loss); nothing for other tasks."""
    if defaults.task != "semantic":
        return {}
    archs = semantic.semantic_arch_choices()
    with st.expander("Semantic model", icon=":material/layers:", expanded=True):
        c1, c2, c3 = st.columns(3)
        names = list(archs)
        arch = c1.selectbox("Architecture", names, index=names.index(defaults.arch or names[0]), key="train_arch",
                            help="unet, pspnet: segmentation-models-pytorch; fcn, deeplabv3, lraspp: torchvision")
        encoders = list(archs[arch] or semantic.SMP_ENCODER_CHOICES)
        enc_default = defaults.encoder if defaults.encoder in encoders else encoders[0]
        encoder = c2.selectbox("Encoder", encoders, index=encoders.index(enc_default), key=f"train_encoder_{arch}")
        size = c3.number_input("Image size (px, square)", 32, 2048, int(defaults.image_size or 512), step=32,
                               key="train_image_size", help="Images train and predict resized to this (a multiple of 32)")
        losses = ["bce", "ce"]
        loss = c1.selectbox("Loss", losses, index=losses.index(defaults.seg_loss), key="train_seg_loss",
                            help="bce: one binary map per class (classes may overlap); ce: softmax over exclusive classes")
        dice = c2.number_input("Dice weight (0 = off)", 0.0, 10.0, float(defaults.dice_weight), step=0.25,
                               key="train_dice")
    return {"arch": arch, "encoder": encoder, "image_size": int(size), "seg_loss": loss, "dice_weight": float(dice)}


def _start(ws: Workspace, slug: str, defaults: Any, choice: dict[str, Any]) -> None:
    name = choice.pop("name")
    try:
        cfg = training.config_with(defaults, **choice)
        info = training.start_training(ws, slug, cfg, name=name)
    except (WorkbenchError, ValueError) as exc:
        st.session_state[FLASH_KEY] = ("error", str(exc))
        return
    st.session_state[PICK_KEY] = info.id
    word = "started" if info.status == "running" else "queued (another run uses that device)"
    st.session_state[FLASH_KEY] = ("success", f"Run #{info.id} {info.name} {word}.")


def early_stop_text(status: dict[str, Any], config: dict[str, Any] | None) -> str | None:
    """Why a run that succeeded before its last epoch stopped: early stopping. The panel said only
    'Finished' beside 'epoch 6/150', so a user who asked for 150 epochs could not tell what happened."""
    epoch, epochs = int(status.get("epoch") or 0), int(status.get("epochs") or 0)
    if not epochs or not epoch or epoch >= epochs:
        return None
    patience = (config or {}).get("early_stopping_patience")
    best, best_epoch = status.get("best_ap"), status.get("best_epoch")
    metric = train_pose.primary_metric_name(config)
    why = (
        f"validation {metric} did not improve for {context.plural(int(patience), 'epoch')}"
        if patience
        else f"validation {metric} stopped improving"
    )
    best_txt = (
        f" (best {float(best):.3f} at epoch {best_epoch}; the model is that epoch's)"
        if best is not None and best_epoch
        else ""
    )
    hint = (
        " A model still at 0 often needs more epochs to find anything: set *Stop early after* to 0 "
        "in the settings to run them all."
        if best is not None and float(best) == 0.0
        else ""
    )
    return f"Stopped early after epoch {epoch} of {epochs}: {why}{best_txt}.{hint}"


def _progress_panel(ws: Workspace, slug: str, run_id: int) -> None:
    info = training.get_run(ws, slug, run_id)
    prog = training.run_progress(info)
    s = prog.status
    st.markdown(f"**{context.md_escape(run_label(info))}**")
    if info.status == "failed":
        st.error(f"Failed: {s.get('error') or 'no error message'}", icon=":material/error:")
    elif info.status == "cancelled":
        why = context.as_sentence(s.get("error") or "")
        st.warning(why if why.lower().startswith("cancelled") else f"Cancelled. {why}".strip())
    elif info.status == "succeeded":
        early = early_stop_text(s, info.config)
        if early:
            st.warning(early, icon=":material/timer_off:")
        st.success("Finished. Evaluate it on the **Evaluate** page, review its predictions on **Review**.")
    elif info.status == "queued":
        st.info("Queued: it starts when the running job on its device ends.")
    if s.get("total_steps"):
        text = (
            f"{training.epoch_text(s)} · step {s.get('step', 0)}/{s.get('total_steps')} · "
            f"ETA {training.format_eta(s.get('eta_s')) if info.is_active else '–'}"
        )
        st.progress(prog.fraction, text=text)
    c1, c2, c3 = st.columns(3)
    loss = s.get("loss")
    c1.metric("Loss", "–" if loss is None else f"{float(loss):.3f}")
    best = s.get("best_ap")
    best_label, val_keys, val_caption = train_pose.run_numbers(info.config)
    c2.metric(best_label, "–" if best is None else f"{float(best):.3f}")
    c3.metric("Device", str(s.get("device") or info.device or "–"))
    series = prog.loss_series()
    if series:
        st.caption("Training losses by step")
        st.line_chart(series, x="step", height=220)
    val = prog.val_series(val_keys) if val_keys else prog.val_series()
    if val:
        st.caption(val_caption)
        st.line_chart(val, x="epoch", height=180)
    with st.expander("Log", icon=":material/article:", expanded=info.status == "failed"):
        st.code(prog.log_tail or "(no output yet)", language=None)
    if info.is_active and st.button("Cancel run", icon=":material/stop:", key=f"train_cancel_{run_id}"):
        training.cancel(ws, run_id)
        st.rerun()
    if not info.is_active and st.session_state.get("train_was_active") == run_id:
        st.session_state["train_was_active"] = None
        st.rerun()  # the run just ended: refresh the whole page (run list, buttons)
    if info.is_active:
        st.session_state["train_was_active"] = run_id


def status_signature(runs: list[RunInfo]) -> tuple[tuple[int, str], ...]:
    """Which runs exist and their statuses: when it changes, the picker and the panel follow."""
    return tuple((r.id, r.status) for r in runs)


def _runs_table_live(ws: Workspace, slug: str, seen: tuple[tuple[int, str], ...]) -> None:
    """The runs table, re-read on every poll while a run is queued or running (progress moves); a
    run that starts, ends or appears (another tab, the CLI) reruns the page so everything follows."""
    runs = training.list_runs(ws, slug)
    st.dataframe(runs_table(runs), hide_index=True)
    if status_signature(runs) != seen:
        st.rerun()


def render() -> None:
    opened = context.project_page("Train")
    if opened is None:
        return
    ws, info = opened
    slug = info.slug
    try:
        train_ds, val_ds = training.training_splits(ws, slug)
    except ValidationError as exc:
        st.info(str(exc))
        train_ds = val_ds = None
    if train_ds is not None:
        n_train, n_val = len(train_ds.items), len(val_ds.items) if val_ds else 0
        tasks = semantic.task_choices()
        task = st.selectbox("Task", list(tasks), format_func=lambda t: f"{t}: {tasks[t]}", key="train_task")
        try:
            defaults = training.default_config(n_train, ws=ws, slug=slug, **({} if task == "instance" else {"task": task}))
        except ValidationError as exc:
            st.error(str(exc))
            return
        weights_txt = "no pretrained weights" if defaults.weights == "none" else f"{defaults.weights} weights"
        model_txt = defaults.backbone if defaults.task == "instance" else " ".join(filter(None, (defaults.arch, defaults.encoder)))
        st.caption(
            f"{context.plural(n_train, 'training image')}, {context.plural(n_val, 'validation image')}"
            + ("" if n_val else " (validation on the training images; assign a val split on the Dataset page)")
            + f". Defaults: {model_txt}, "
            f"{weights_txt}, {context.plural(defaults.epochs, 'epoch')} "
            f"on {training.queue_device(defaults)}."
        )
        choice = _settings(defaults)
        choice.update(train_design.design_settings(ws, slug, defaults, choice["backbone"]))
        if st.button("Train", type="primary", icon=":material/model_training:", key="train_start"):
            _start(ws, slug, defaults, choice)
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        getattr(st, flash[0])(flash[1])

    sam_models_panel(ws)  # annotate_assist.py: the Assist tool's SAM weights, present or where they go
    runs = training.list_runs(ws, slug)
    st.subheader("Runs")
    if not runs:
        # without training images there is no Train button to press (the message above says why)
        st.info("No runs yet. Press **Train** to start one." if train_ds is not None else "No runs yet.")
        return
    live = any(r.is_active for r in runs)
    # idle, it still looks now and then: a run started from the CLI shows up without a click
    st.fragment(run_every=POLL_S if live else IDLE_POLL_S)(_runs_table_live)(ws, slug, status_signature(runs))
    ids = [r.id for r in runs]
    by_id = {r.id: r for r in runs}
    if st.session_state.get(PICK_KEY) not in by_id:
        active = [r.id for r in runs if r.is_active]
        st.session_state[PICK_KEY] = active[0] if active else ids[0]
    # No status in the picker's labels: the browser keeps showing a keyed selectbox's old label after
    # the run ends (it said "running" beside a panel saying cancelled); the table and panel show status.
    run_id = st.selectbox("Run", ids, format_func=lambda i: f"#{i} · {by_id[i].name}", key=PICK_KEY)
    poll = POLL_S if by_id[run_id].is_active else None
    st.fragment(run_every=poll)(_progress_panel)(ws, slug, run_id)
