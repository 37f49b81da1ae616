// Shape tools (part of the annotator's one ES module): copy / paste / duplicate / propagate to the next
// image, hide all, lock, and the drawing order (z_order).
//
// The clipboard (S.clipboard) lives in the annotator's state, so it outlives a move to another image.
// Hide and lock are the user's view of the canvas, not annotation data (attributes go to COCO): they
// are kept per image by row id in S.viewState and in localStorage (per project), so they survive
// moving between images and a reload. A locked shape is no target on the canvas (no select, drag,
// vertex edit or Delete); the shape list still selects it.

const DUP_OFFSET_PX = 10; // natural pixels a duplicate is moved right and down by
const VIEW_PREFIX = "wb-view:";

// ---------------------------------------------------------------- drawing order

// The shapes in drawing order: lower z_order first, ties in list order (as the index map is painted).
function zOrdered(S) {
  return S.instances.map((inst, i) => ({ inst, i })).sort((a, b) => (a.inst.z_order || 0) - (b.inst.z_order || 0) || a.i - b.i);
}

// Shapes drawn here come without a z_order: each gets the highest on its image, so (later in the list,
// ties going by list order) it lies on top, where it was drawn, also after another was brought forward.
function stackNewShapes(S) {
  const fresh = S.instances.filter((inst) => inst.z_order == null);
  if (!fresh.length) return;
  const zs = S.instances.filter((inst) => inst.z_order != null).map((inst) => inst.z_order);
  const top = zs.length ? Math.max(...zs) : 0;
  for (const inst of fresh) inst.z_order = top;
}

function restack(S, front) {
  const inst = S.instances[S.selected];
  if (!inst) { S.notice = "Select a shape first (click it, or its row in the list)"; render(S); return; }
  const others = S.instances.filter((o) => o !== inst).map((o) => o.z_order || 0);
  if (!others.length) return;
  const z = front ? Math.max(...others) + 1 : Math.min(...others) - 1;
  if ((inst.z_order || 0) === z) return;
  snapshot(S);
  inst.z_order = z;
  commit(S);
}

// ---------------------------------------------------------------- copies

// The selected shape, else every shown one.
function chosenShapes(S) {
  const sel = S.instances[S.selected];
  return sel ? [sel] : S.instances.filter((inst) => !inst.hidden);
}

// A mask crop moved by (dx, dy) whole pixels and cut to this image; null where nothing is left.
function movedMask(S, m, dx, dy) {
  const src = decodeCrop(m); // mask.js
  const x0 = Math.max(0, src.x + dx), y0 = Math.max(0, src.y + dy);
  const x1 = Math.min(S.W, src.x + dx + src.w), y1 = Math.min(S.H, src.y + dy + src.h);
  if (x1 <= x0 || y1 <= y0) return null;
  const buf = emptyBuf(x0, y0, x1 - x0, y1 - y0);
  for (let r = y0; r < y1; r++) {
    for (let c = x0; c < x1; c++) buf.data[(r - y0) * buf.w + (c - x0)] = src.data[(r - dy - src.y) * src.w + (c - dx - src.x)];
  }
  return encodeBuf(S, buf); // mask.js: tight crop, sized to this image
}

// A new shape (new uid, no row id, shown, unlocked) copied from `inst`, moved by (dx, dy) and cut to
// this image; null where nothing of it is left.
function shapeCopy(S, inst, dx, dy) {
  const c = JSON.parse(JSON.stringify(inst));
  Object.assign(c, { key: newUid(S), id: null, hidden: false, locked: false, bbox: null });
  const cx = (v) => Math.min(Math.max(v, 0), S.W), cy = (v) => Math.min(Math.max(v, 0), S.H);
  c.polygons = c.polygons.map((p) => p.map((v, k) => (k % 2 ? cy(v + dy) : cx(v + dx))));
  if (c.keypoints) {
    for (let k = 0; k < c.keypoints.length; k += 3) {
      const x = c.keypoints[k] + dx, y = c.keypoints[k + 1] + dy;
      if (c.keypoints[k + 2] > 0 && x >= 0 && x <= S.W && y >= 0 && y <= S.H) { c.keypoints[k] = x; c.keypoints[k + 1] = y; }
      else { c.keypoints[k] = 0; c.keypoints[k + 1] = 0; c.keypoints[k + 2] = 0; }
    }
  }
  if (c.rle) {
    if (!c.mask) return null;
    c.mask = movedMask(S, c.mask, Math.round(dx), Math.round(dy));
    if (!c.mask) return null;
    c.bbox = [c.mask.x, c.mask.y, c.mask.w, c.mask.h];
    MASK_TOUCHED.add(c.key); // mask.js: its crop is sent (Python has no stored mask for a new shape)
  }
  const hasKp = c.keypoints && c.keypoints.some((v, k) => k % 3 === 2 && v > 0);
  if (!c.rle && !hasKp && !c.polygons.some((p) => areaOf(p) > 0)) return null;
  return c;
}

function areaOf(p) {
  let a = 0;
  for (let k = 0; k < p.length; k += 2) { const k2 = (k + 2) % p.length; a += p[k] * p[k2 + 1] - p[k2] * p[k + 1]; }
  return Math.abs(a) / 2;
}

function say(S, text) { S.notice = text; render(S); }

function plural(n, what) { return `${n} ${what}${n === 1 ? "" : "s"}`; }

function copyShapes(S) {
  const shapes = chosenShapes(S);
  if (!shapes.length) { say(S, "Nothing to copy: no shape on this image"); return; }
  S.clipboard = shapes.map((inst) => JSON.parse(JSON.stringify(inst)));
  say(S, `Copied ${plural(shapes.length, "shape")}: Ctrl+V pastes them here or on another image`);
}

function addCopies(S, copies, what) {
  if (!copies.length) { say(S, `Nothing ${what}: the shapes lie outside this image`); return; }
  snapshot(S);
  S.instances.push(...copies);
  S.selected = copies.length === 1 ? S.instances.length - 1 : -1;
  S.notice = `${what[0].toUpperCase()}${what.slice(1)} ${plural(copies.length, "shape")}`;
  commit(S);
}

function pasteShapes(S) {
  if (!S.clipboard || !S.clipboard.length) { say(S, "Nothing to paste: Ctrl+C copies the selected shape (or all)"); return; }
  addCopies(S, S.clipboard.map((inst) => shapeCopy(S, inst, 0, 0)).filter(Boolean), "pasted");
}

function duplicateSelected(S) {
  const inst = S.instances[S.selected];
  if (!inst) { say(S, "Select a shape to duplicate"); return; }
  // moved by the offset, less where that would push it out of the image (as a shape drag is held in)
  let minx = Infinity, miny = Infinity, maxx = -Infinity, maxy = -Infinity;
  const at = (x, y) => { minx = Math.min(minx, x); miny = Math.min(miny, y); maxx = Math.max(maxx, x); maxy = Math.max(maxy, y); };
  inst.polygons.forEach((p) => { for (let k = 0; k < p.length; k += 2) at(p[k], p[k + 1]); });
  if (inst.keypoints) for (let k = 0; k < inst.keypoints.length; k += 3) if (inst.keypoints[k + 2]) at(inst.keypoints[k], inst.keypoints[k + 1]);
  if (inst.rle && inst.mask) { at(inst.mask.x, inst.mask.y); at(inst.mask.x + inst.mask.w, inst.mask.y + inst.mask.h); }
  let dx = DUP_OFFSET_PX, dy = DUP_OFFSET_PX;
  if (minx !== Infinity) { dx = Math.max(Math.min(dx, S.W - maxx), -minx); dy = Math.max(Math.min(dy, S.H - maxy), -miny); }
  const c = shapeCopy(S, inst, dx, dy);
  if (!c) { say(S, "This shape cannot be duplicated"); return; }
  addCopies(S, [c], "duplicated");
}

// Copies of the selected shape (or all shown) onto the next image, saved there by Python (the
// "propagate" action saves this image first); the user stays here.
function propagateShapes(S) {
  const nb = (S.data.neighbours || {})["1"];
  if (!nb) { say(S, "No next image to copy the shapes to"); return; }
  const shapes = chosenShapes(S);
  if (!shapes.length) { say(S, "Nothing to copy: no shape on this image"); return; }
  S.notice = `Copied ${plural(shapes.length, "shape")} to the next image (${nb.file_name})`;
  send(S, "propagate", { shapes: shapes.map(toPython) });
  render(S);
}

// ---------------------------------------------------------------- hide and lock (view state)

function viewKey(S, imageId) { return `${VIEW_PREFIX}${S.data.project || ""}:${imageId}`; }

// Keep the hidden and locked shapes of the open image (those with a row id) for when it comes back.
function rememberView(S) {
  if (S.imageId == null) return;
  const hidden = [], locked = [];
  for (const inst of S.instances) {
    if (inst.id == null) continue;
    if (inst.hidden) hidden.push(inst.id);
    if (inst.locked) locked.push(inst.id);
  }
  const text = JSON.stringify({ hidden, locked });
  const vs = S.viewState || (S.viewState = new Map());
  if (vs.get(S.imageId) === text || (!vs.has(S.imageId) && !hidden.length && !locked.length)) return;
  vs.set(S.imageId, text);
  try {
    if (hidden.length || locked.length) window.localStorage.setItem(viewKey(S, S.imageId), text);
    else window.localStorage.removeItem(viewKey(S, S.imageId));
  } catch (err) { /* storage full or off: the state is still kept for this tab */ }
}

// Give the open image's shapes the hide and lock they had (this tab, else an earlier one).
function restoreView(S) {
  if (S.imageId == null) return;
  const vs = S.viewState || (S.viewState = new Map());
  let text = vs.get(S.imageId);
  if (text == null) {
    try { text = window.localStorage.getItem(viewKey(S, S.imageId)); } catch (err) { text = null; }
    if (text != null) vs.set(S.imageId, text);
  }
  let v = null;
  try { v = text ? JSON.parse(text) : null; } catch (err) { v = null; }
  const hidden = new Set((v && v.hidden) || []), locked = new Set((v && v.locked) || []);
  for (const inst of S.instances) {
    inst.hidden = inst.id != null && hidden.has(inst.id);
    inst.locked = inst.id != null && locked.has(inst.id);
  }
}

function toggleHideAll(S) {
  const show = S.instances.length > 0 && S.instances.every((inst) => inst.hidden);
  for (const inst of S.instances) inst.hidden = !show;
  if (!show) S.selected = -1;
  rememberView(S);
  S.notice = show ? "All shapes shown" : "All shapes hidden: H shows them again";
  render(S);
}

function toggleLock(S, i) {
  const inst = S.instances[i];
  if (!inst) { say(S, "Select a shape to lock (or use the lock button in its row)"); return; }
  inst.locked = !inst.locked;
  rememberView(S);
  S.notice = inst.locked ? "Locked: this shape cannot be moved, edited or deleted on the canvas" : "Unlocked";
  render(S);
}

// Delete refused for a locked shape (true: refused, with a message).
function refuseLocked(S) {
  const inst = S.instances[S.selected];
  if (!inst || !inst.locked) return false;
  say(S, "This shape is locked: unlock it (L or its lock button) to delete it");
  return true;
}

// Locked shapes let the mouse through (to the image or a shape below): no select, drag or vertex edit.
function passLockedThrough(S, g) {
  if (!S.instances.some((inst) => inst.locked)) return; // the common case: no walk over every shape
  for (const n of g.querySelectorAll("[data-i]")) {
    const inst = S.instances[Number(n.getAttribute("data-i"))];
    if (inst && inst.locked) { n.style.pointerEvents = "none"; n.classList.add("wb-locked"); }
  }
}

// The list row's lock button (before the delete button, which a lock disables).
function addRowTools(S, inst, li, del) {
  const lock = document.createElement("button");
  lock.className = "wb-mini"; lock.dataset.act = "lock";
  lock.title = inst.locked ? "Unlock (L)" : "Lock: no moving, editing or deleting on the canvas (L)";
  lock.textContent = inst.locked ? "unlock" : "lock";
  del.before(lock);
  if (inst.locked) { del.disabled = true; del.title = "Locked: unlock to delete"; li.classList.add("wb-locked"); }
}

// ---------------------------------------------------------------- keys and buttons

// Ctrl/Cmd keys: C copy, V paste, Shift+V propagate to the next image, D duplicate, ] / [ front / back.
// True when the key was one of these.
function shapeCtrlKey(S, e) {
  if (S.locked) return false;
  const k = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  if (k === "c" && !e.shiftKey) copyShapes(S);
  else if (k === "v" && e.shiftKey) propagateShapes(S);
  else if (k === "v") pasteShapes(S);
  else if (k === "d" && !e.shiftKey) duplicateSelected(S);
  else if (k === "]" || e.code === "BracketRight") restack(S, true);
  else if (k === "[" || e.code === "BracketLeft") restack(S, false);
  else return false;
  return true;
}

// Plain keys: H hide / show all, L lock the selected shape, PageUp / PageDown to front / back.
function shapeKey(S, e) {
  if (e.altKey) return false;
  const k = e.key;
  if (k === "h" || k === "H") toggleHideAll(S);
  else if (k === "l" || k === "L") toggleLock(S, S.selected);
  else if (k === "PageUp") restack(S, true);
  else if (k === "PageDown") restack(S, false);
  else return false;
  return true;
}

// The side panel's buttons (data-cmd).
function shapeCmd(S, cmd) {
  if (S.locked) return;
  if (cmd === "copy") copyShapes(S);
  else if (cmd === "paste") pasteShapes(S);
  else if (cmd === "duplicate") duplicateSelected(S);
  else if (cmd === "propagate") propagateShapes(S);
  else if (cmd === "hideall") toggleHideAll(S);
  else if (cmd === "front") restack(S, true);
  else if (cmd === "back") restack(S, false);
}
