// Brush and eraser: masks painted at natural resolution (part of the annotator's one ES module).
//
// A mask instance carries `mask` = {size: [H, W], x, y, w, h, counts, rev}: COCO's uncompressed runs
// (column-major, zeros first) over a crop of the image, the form Python reads and writes
// (services/mask_crops.py). It is plain JSON, so undo snapshots and saves hold it as they hold
// polygons. Painting works on a buffer per instance (S.maskBufs, by uid): a row-major Uint8Array over
// a crop that grows as the brush leaves it, shown by a canvas in a <foreignObject> (no image encoding
// while a stroke goes on). A stroke's end encodes the buffer back into `mask` and saves.
//
// Holes: the eraser clears pixels (of a polygon too, which becomes a mask). Parts: Shift+brush paints
// into the selected shape wherever the stroke starts; in part mode (Shift+N) a closed polygon is added to
// the selected shape as a further part instead of becoming a shape of its own.

const MASK_TOUCHED = new Set(); // uids whose mask was painted on this page: their mask is always sent
const BRUSH_MIN = 1, BRUSH_MAX = 500, BRUSH_DEFAULT = 10;
const GROW_MARGIN = 32; // natural px a buffer grows by beyond what a stroke needs
let maskRevSeq = 0;

function isMaskTool(S) { return S.tool === "brush" || S.tool === "eraser"; }

function brushRadius(S) { return S.brushR || BRUSH_DEFAULT; }

function newMaskRev() { maskRevSeq += 1; return `m${maskRevSeq}-${Math.random().toString(36).slice(2, 7)}`; }

// What toPython sends as `mask`: the crop of a shape painted on this page, else null (Python keeps the
// stored mask of shapes nobody painted; a painted one is sent on every save, since undo may bring
// back a mask that differs from what the last save stored).
function maskPayload(inst) {
  if (!inst.rle || !inst.mask || !MASK_TOUCHED.has(inst.key)) return null;
  const m = inst.mask;
  return { size: m.size, x: m.x, y: m.y, w: m.w, h: m.h, counts: m.counts };
}

// ---------------------------------------------------------------- buffers

function emptyBuf(x, y, w, h) {
  // cols: none yet (see "runs per column"), except for a buffer with no pixel, whose runs are known
  return { x, y, w, h, data: new Uint8Array(w * h), canvas: null, color: null, rev: null, live: false,
    cols: w * h ? null : new Map(), dirty: null };
}

function decodeCrop(m) {
  const buf = emptyBuf(m.x, m.y, m.w, m.h);
  const { w, h, data } = buf;
  let pos = 0, v = 0;
  for (const run of m.counts) {
    if (v) {
      for (let k = pos; k < pos + run; k++) { const c = (k / h) | 0; data[(k - c * h) * w + c] = 1; }
    }
    pos += run; v ^= 1;
  }
  buf.cols = colsFromCounts(m); // the runs are known: the next encode rescans only what is painted
  return buf;
}

function rasterisePolygons(S, polygons) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const p of polygons) for (let k = 0; k < p.length; k += 2) {
    x0 = Math.min(x0, p[k]); x1 = Math.max(x1, p[k]); y0 = Math.min(y0, p[k + 1]); y1 = Math.max(y1, p[k + 1]);
  }
  if (x0 === Infinity) return emptyBuf(0, 0, 0, 0);
  const bx = Math.max(0, Math.floor(x0)), by = Math.max(0, Math.floor(y0));
  const bw = Math.min(S.W, Math.ceil(x1) + 1) - bx, bh = Math.min(S.H, Math.ceil(y1) + 1) - by;
  const buf = emptyBuf(bx, by, Math.max(0, bw), Math.max(0, bh));
  if (!buf.w || !buf.h) return buf;
  fillPolygon(buf, polygons, 1);
  return buf;
}

// Fill polygon parts into a buffer (value 1 or 0) by the canvas's rasteriser: a pixel is inside when
// its centre is (alpha of the antialiased fill >= half), as pycocotools rasterises.
function fillPolygon(buf, polygons, value) {
  const cv = document.createElement("canvas");
  cv.width = buf.w; cv.height = buf.h;
  const ctx = cv.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = "#000";
  for (const p of polygons) {
    ctx.beginPath();
    ctx.moveTo(p[0] - buf.x, p[1] - buf.y);
    for (let k = 2; k < p.length; k += 2) ctx.lineTo(p[k] - buf.x, p[k + 1] - buf.y);
    ctx.closePath();
    ctx.fill();
  }
  const px = ctx.getImageData(0, 0, buf.w, buf.h).data;
  for (let k = 0; k < buf.w * buf.h; k++) if (px[4 * k + 3] >= 128) buf.data[k] = value;
}

// The instance's buffer, (re)built from its mask or polygons when the mask changed (undo, load).
function bufferFor(S, inst) {
  const bufs = S.maskBufs || (S.maskBufs = new Map());
  let buf = bufs.get(inst.key);
  const stroking = S.drag && S.drag.type === "brush" && S.drag.key === inst.key;
  if (buf && ((buf.live && stroking) || (inst.rle && inst.mask && buf.rev === inst.mask.rev))) return buf;
  if (inst.rle && inst.mask) {
    if (!inst.mask.rev) inst.mask.rev = newMaskRev();
    buf = decodeCrop(inst.mask);
    buf.rev = inst.mask.rev;
  } else if (!inst.rle && inst.polygons.length) {
    buf = rasterisePolygons(S, inst.polygons);
  } else {
    buf = emptyBuf(0, 0, 0, 0);
  }
  bufs.set(inst.key, buf);
  return buf;
}

// Grow the buffer (in place) to cover [x0, x1) x [y0, y1) of the image; true if it grew.
function growBuf(S, buf, x0, y0, x1, y1) {
  if (buf.w && x0 >= buf.x && y0 >= buf.y && x1 <= buf.x + buf.w && y1 <= buf.y + buf.h) return false;
  const nx0 = Math.max(0, Math.min(buf.w ? buf.x : x0, x0 - GROW_MARGIN));
  const ny0 = Math.max(0, Math.min(buf.h ? buf.y : y0, y0 - GROW_MARGIN));
  const nx1 = Math.min(S.W, Math.max(buf.w ? buf.x + buf.w : x1, x1 + GROW_MARGIN));
  const ny1 = Math.min(S.H, Math.max(buf.h ? buf.y + buf.h : y1, y1 + GROW_MARGIN));
  const w = nx1 - nx0, h = ny1 - ny0;
  const data = new Uint8Array(w * h);
  for (let r = 0; r < buf.h; r++) {
    data.set(buf.data.subarray(r * buf.w, (r + 1) * buf.w), (buf.y - ny0 + r) * w + (buf.x - nx0));
  }
  Object.assign(buf, { x: nx0, y: ny0, w, h, data, canvas: null });
  return true;
}

// Pixels whose centre lies within r of the segment p-q get `value`; returns the touched image rect,
// or null. A stroke is the union of these capsules, so it does not depend on how often the mouse
// reported its position.
function paintSegment(S, buf, p, q, r, value) {
  let x0 = Math.floor(Math.min(p[0], q[0]) - r), x1 = Math.ceil(Math.max(p[0], q[0]) + r) + 1;
  let y0 = Math.floor(Math.min(p[1], q[1]) - r), y1 = Math.ceil(Math.max(p[1], q[1]) + r) + 1;
  x0 = Math.max(0, x0); y0 = Math.max(0, y0); x1 = Math.min(S.W, x1); y1 = Math.min(S.H, y1);
  if (x1 <= x0 || y1 <= y0) return null;
  let grew = false;
  if (value) grew = growBuf(S, buf, x0, y0, x1, y1);
  else {
    x0 = Math.max(x0, buf.x); y0 = Math.max(y0, buf.y);
    x1 = Math.min(x1, buf.x + buf.w); y1 = Math.min(y1, buf.y + buf.h);
    if (x1 <= x0 || y1 <= y0) return null;
  }
  const dx = q[0] - p[0], dy = q[1] - p[1], len2 = dx * dx + dy * dy, r2 = r * r;
  const { w, data } = buf;
  for (let j = y0; j < y1; j++) {
    const cy = j + 0.5;
    for (let i = x0; i < x1; i++) {
      const cx = i + 0.5;
      let t = len2 ? ((cx - p[0]) * dx + (cy - p[1]) * dy) / len2 : 0;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const ex = cx - p[0] - t * dx, ey = cy - p[1] - t * dy;
      if (ex * ex + ey * ey <= r2) data[(j - buf.y) * w + (i - buf.x)] = value;
    }
  }
  markDirty(buf, x0, x1);
  return { x0, y0, x1, y1, grew };
}

// ---------------------------------------------------------------- runs per column
//
// What an encode reads: buf.cols maps each image column of the buffer that has ones to the image rows
// where its runs start and end ([s0, e0, s1, e1, ...]), as of the last encode; buf.dirty is the image
// columns [x0, x1) written since. The next encode rescans only those, so a stroke into a mask grown
// across the image costs its own columns (the whole 7.5-megapixel buffer of such a mask, walked
// column by column, took 55-95 ms a stroke). Writers of a buffer that has cols call markDirty; a
// buffer written with no note of where (fillPolygon, a copy another module builds) has no cols and
// is scanned whole once.

function markDirty(buf, x0, x1) {
  if (!buf.cols) return;
  buf.dirty = buf.dirty ? [Math.min(buf.dirty[0], x0), Math.max(buf.dirty[1], x1)] : [x0, x1];
}

function colsFromCounts(m) {
  const cols = new Map();
  let pos = 0, v = 0;
  for (const run of m.counts) {
    if (v && run) {
      for (let c = (pos / m.h) | 0, last = ((pos + run - 1) / m.h) | 0; c <= last; c++) {
        const top = Math.max(pos, c * m.h) - c * m.h, bottom = Math.min(pos + run, (c + 1) * m.h) - c * m.h;
        let e = cols.get(m.x + c);
        if (!e) cols.set(m.x + c, (e = []));
        e.push(m.y + top, m.y + bottom);
      }
    }
    pos += run; v ^= 1;
  }
  return cols;
}

function scanColumn(buf, c) {
  const { w, h, data } = buf, j = c - buf.x, out = [];
  let v = 0;
  for (let r = 0; r < h; r++) if (data[r * w + j] !== v) { v ^= 1; out.push(buf.y + r); }
  if (v) out.push(buf.y + h);
  return out;
}

// Every column's runs in one row-major pass (a pixel that differs from the one above starts or ends a
// run): a sequential read of the buffer, for a buffer that has no cols yet.
function scanAll(buf) {
  const { w, h, data } = buf, cols = new Map();
  const edge = (c, r) => {
    let e = cols.get(buf.x + c);
    if (!e) cols.set(buf.x + c, (e = []));
    e.push(buf.y + r);
  };
  for (let c = 0; c < w; c++) if (data[c]) edge(c, 0);
  for (let r = 1; r < h; r++) {
    const row = r * w;
    for (let c = 0; c < w; c++) if (data[row + c] !== data[row - w + c]) edge(c, r);
  }
  if (h) for (let c = 0, last = (h - 1) * w; c < w; c++) if (data[last + c]) edge(c, h);
  return cols;
}

function colsOf(buf) {
  if (!buf.cols) buf.cols = scanAll(buf);
  else if (buf.dirty) {
    for (let c = Math.max(buf.x, buf.dirty[0]); c < Math.min(buf.x + buf.w, buf.dirty[1]); c++) {
      const e = scanColumn(buf, c);
      if (e.length) buf.cols.set(c, e); else buf.cols.delete(c);
    }
  }
  buf.dirty = null;
  return buf.cols;
}

// Tight crop and column-major runs (zeros first) of a buffer: the `mask` Python stores. Built from the
// columns' runs (colsOf): a run reaching the bottom of one column and going on at the top of the next
// is one run, as pycocotools writes it.
function encodeBuf(S, buf) {
  const cols = colsOf(buf);
  let c0 = -1, c1 = -1, r0 = Infinity, r1 = -Infinity;
  for (let c = buf.x; c < buf.x + buf.w; c++) {
    const e = cols.get(c);
    if (!e) continue;
    if (c0 < 0) c0 = c;
    c1 = c;
    if (e[0] < r0) r0 = e[0];
    if (e[e.length - 1] > r1) r1 = e[e.length - 1];
  }
  if (c0 < 0) return null;
  const ch = r1 - r0, total = (c1 - c0 + 1) * ch, counts = [];
  let lastEnd = 0, s0 = -1, s1 = -1; // the run of ones being built, [s0, s1) in crop offsets
  for (let c = c0; c <= c1; c++) {
    const e = cols.get(c);
    if (!e) continue;
    const base = (c - c0) * ch - r0;
    for (let k = 0; k < e.length; k += 2) {
      const a = base + e[k], b = base + e[k + 1];
      if (a === s1) { s1 = b; continue; }
      if (s0 >= 0) { counts.push(s0 - lastEnd, s1 - s0); lastEnd = s1; }
      s0 = a; s1 = b;
    }
  }
  counts.push(s0 - lastEnd, s1 - s0);
  if (total > s1) counts.push(total - s1);
  return { size: [S.H, S.W], x: c0, y: r0, w: c1 - c0 + 1, h: ch, counts, rev: newMaskRev() };
}

// ---------------------------------------------------------------- display

function rgbOf(hex) {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex || "");
  const n = m ? parseInt(m[1], 16) : 0xe53e3e;
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function paintCanvas(buf, color, rect) {
  if (!buf.canvas) {
    buf.canvas = document.createElement("canvas");
    buf.canvas.className = "wb-maskcv";
    buf.color = null;
  }
  const cv = buf.canvas;
  if (cv.width !== buf.w || cv.height !== buf.h) { cv.width = buf.w; cv.height = buf.h; buf.color = null; }
  if (!buf.w || !buf.h) return;
  if (buf.color !== color) { buf.color = color; rect = null; } // a new class colour: repaint all
  const x0 = rect ? rect.x0 - buf.x : 0, y0 = rect ? rect.y0 - buf.y : 0;
  const x1 = rect ? rect.x1 - buf.x : buf.w, y1 = rect ? rect.y1 - buf.y : buf.h;
  const [R, G, B] = rgbOf(color);
  const ctx = cv.getContext("2d");
  const img = ctx.createImageData(x1 - x0, y1 - y0);
  const px = img.data;
  let k = 0;
  for (let r = y0; r < y1; r++) {
    for (let c = x0; c < x1; c++, k += 4) {
      if (buf.data[r * buf.w + c]) { px[k] = R; px[k + 1] = G; px[k + 2] = B; px[k + 3] = 255; }
    }
  }
  ctx.putImageData(img, x0, y0);
}

// Render hook (one per mask instance, under its dashed box, which stays the click target).
function renderMask(S, inst, i, color, g) {
  const buf = bufferFor(S, inst);
  if (!buf.w || !buf.h) return;
  if (!buf.canvas || buf.color !== color || buf.canvas.width !== buf.w || buf.canvas.height !== buf.h) paintCanvas(buf, color, null);
  const fo = el("foreignObject", { x: buf.x, y: buf.y, width: buf.w, height: buf.h, class: "wb-maskfo",
    "data-mask-key": inst.key }, g);
  fo.appendChild(buf.canvas);
}

function refreshStrokeView(S, inst, buf, rect) {
  if (!rect) return;
  if (rect.grew || !buf.canvas || !buf.canvas.isConnected) { render(S); return; }
  paintCanvas(buf, colorOf(S, inst.category), rect);
}

function renderBrushCursor(S, u) {
  if (!S.brushG) {
    S.brushG = el("g", { class: "wb-brushcur", "data-role": "brushcur" }, S.svg);
    S.svg.addEventListener("mouseleave", () => { S.brushAt = null; renderBrushCursor(S, unitsPerPx(S)); });
  }
  S.brushG.replaceChildren();
  if (!isMaskTool(S) || !S.brushAt || S.pending) return;
  el("circle", { cx: S.brushAt[0], cy: S.brushAt[1], r: brushRadius(S), class: "wb-brushring" + (S.tool === "eraser" ? " wb-erase" : "") }, S.brushG);
  void u;
}

function maskHover(S, e) {
  S.brushAt = toImage(S, e);
  renderBrushCursor(S, 0);
}

function maskHint(S) {
  const r = brushRadius(S);
  if (S.tool === "eraser") return `Eraser (${r} px, [ ]): drag over the selected shape, or the one under the cursor, to cut holes`;
  return `Brush (${r} px, [ ]): drag to paint${S.addPart ? "" : "; Shift adds a part to the selected shape"}`;
}

function syncMaskControls(S) {
  const input = S.root.querySelector('[data-role="brushsize"]');
  if (input) {
    if (!input.__wbBound) {
      input.__wbBound = true;
      input.addEventListener("change", () => setBrushRadius(S, Number(input.value)));
    }
    if (document.activeElement !== input && input.value !== String(brushRadius(S))) input.value = String(brushRadius(S));
  }
  const part = S.root.querySelector('[data-cmd="part"]');
  if (part) part.classList.toggle("wb-active", !!S.addPart);
}

function setBrushRadius(S, r) {
  if (!Number.isFinite(r)) return;
  S.brushR = Math.min(BRUSH_MAX, Math.max(BRUSH_MIN, Math.round(r)));
  render(S);
}

function resizeBrush(S, dir) {
  const r = brushRadius(S);
  const step = Math.max(1, Math.round(r * 0.2));
  setBrushRadius(S, r + dir * step);
}

function togglePartMode(S) { S.addPart = !S.addPart; render(S); }

// ---------------------------------------------------------------- strokes

function pointInPolygon(p, x, y) {
  let inside = false;
  for (let a = 0, b = p.length - 2; a < p.length; b = a, a += 2) {
    if ((p[a + 1] > y) !== (p[b + 1] > y) && x < ((p[b] - p[a]) * (y - p[a + 1])) / (p[b + 1] - p[a + 1]) + p[a]) inside = !inside;
  }
  return inside;
}

// Does a disc of radius r at pt reach the shape? (the brush then paints into it, not a new shape)
function discTouches(S, inst, pt, r) {
  if (inst.hidden) return false;
  const [cx, cy] = pt, r2 = r * r;
  if (!inst.rle) {
    return inst.polygons.some((p) => {
      if (pointInPolygon(p, cx, cy)) return true;
      for (let a = 0, b = p.length - 2; a < p.length; b = a, a += 2) {
        const dx = p[a] - p[b], dy = p[a + 1] - p[b + 1], len2 = dx * dx + dy * dy;
        let t = len2 ? ((cx - p[b]) * dx + (cy - p[b + 1]) * dy) / len2 : 0;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        const ex = cx - p[b] - t * dx, ey = cy - p[b + 1] - t * dy;
        if (ex * ex + ey * ey <= r2) return true;
      }
      return false;
    });
  }
  const buf = bufferFor(S, inst);
  const y0 = Math.max(buf.y, Math.floor(cy - r)), y1 = Math.min(buf.y + buf.h, Math.ceil(cy + r) + 1);
  const x0 = Math.max(buf.x, Math.floor(cx - r)), x1 = Math.min(buf.x + buf.w, Math.ceil(cx + r) + 1);
  for (let j = y0; j < y1; j++) {
    const ey = j + 0.5 - cy, row = (j - buf.y) * buf.w - buf.x;
    for (let i = x0; i < x1; i++) {
      const ex = i + 0.5 - cx;
      if (buf.data[row + i] && ex * ex + ey * ey <= r2) return true;
    }
  }
  return false;
}

function topmostTouched(S, pt, r) {
  for (let i = S.instances.length - 1; i >= 0; i--) {
    if (!S.instances[i].locked && discTouches(S, S.instances[i], pt, r)) return i; // a locked shape is kept
  }
  return -1;
}

// onMouseDown hook for the brush and eraser (left button, not panning).
function maskDown(S, e, pt) {
  const r = brushRadius(S);
  const erase = S.tool === "eraser";
  const selInst = S.instances[S.selected];
  const sel = selInst && !selInst.hidden && !selInst.locked ? S.selected : -1; // locked: neither painted nor erased
  let target = -1;
  if (erase) target = sel >= 0 && discTouches(S, S.instances[sel], pt, r) ? sel : topmostTouched(S, pt, r);
  else if (sel >= 0 && (e.shiftKey || S.addPart || discTouches(S, S.instances[sel], pt, r))) target = sel;
  if (erase && target < 0) return;
  const before = JSON.stringify(S.instances);
  if (target < 0) {
    if (!S.curClass) return;
    S.instances.push({ key: newUid(S), id: null, category: S.curClass, polygons: [], keypoints: null, bbox: null,
      rle: true, mask: null, source: "manual", score: null, hidden: false });
    target = S.instances.length - 1;
  }
  const inst = S.instances[target];
  S.selected = target;
  S.curClass = inst.category; S.classSel.value = inst.category;
  const buf = bufferFor(S, inst);
  buf.live = true;
  MASK_TOUCHED.add(inst.key);
  if (!inst.rle) { inst.rle = true; inst.polygons = []; } // a polygon being painted becomes a mask
  startDrag(S, e, { type: "brush", key: inst.key, last: pt, before, erase });
  S.drag.moved = true;
  paintSegment(S, buf, pt, pt, r, erase ? 0 : 1);
  perfMark("brush-down");
  render(S);
}

function maskDragMove(S, e) {
  const d = S.drag;
  const inst = S.instances.find((x) => x.key === d.key);
  if (!inst) return;
  const pt = toImage(S, e);
  S.brushAt = pt;
  const buf = bufferFor(S, inst);
  const rect = paintSegment(S, buf, d.last, pt, brushRadius(S), d.erase ? 0 : 1);
  d.last = pt;
  refreshStrokeView(S, inst, buf, rect);
  renderBrushCursor(S, 0);
}

// onDragEnd hook: the stroke's pixels become the instance's mask (or the shape goes, all erased), saved.
function maskDragEnd(S, d) {
  perfMark("brush-up");
  const idx = S.instances.findIndex((x) => x.key === d.key);
  if (idx < 0) { render(S); return; }
  const inst = S.instances[idx];
  const buf = S.maskBufs.get(inst.key); // the stroke's pixels (S.drag is gone: bufferFor would rebuild)
  buf.live = false;
  const m = encodeBuf(S, buf);
  if (!m) {
    S.instances.splice(idx, 1);
    S.selected = -1; S.hover = -1;
  } else {
    inst.mask = m;
    inst.bbox = [m.x, m.y, m.w, m.h];
    buf.rev = m.rev;
    markEdited(inst);
  }
  S.undo.push(d.before);
  if (S.undo.length > 200) S.undo.shift();
  S.redo = [];
  commit(S);
}

// closeDraft hook: in part mode a closed polygon joins the selected shape (a polygon part, or pixels of
// a mask) instead of starting a shape of its own. The caller has taken the undo snapshot.
function addPartToSelected(S, flat) {
  if (!S.addPart) return false;
  const inst = S.instances[S.selected];
  if (!inst || inst.hidden) return false;
  if (inst.rle) {
    const buf = bufferFor(S, inst);
    const part = rasterisePolygons(S, [flat]);
    if (part.w && part.h) {
      growBuf(S, buf, part.x, part.y, part.x + part.w, part.y + part.h);
      for (let r = 0; r < part.h; r++) {
        for (let c = 0; c < part.w; c++) {
          if (part.data[r * part.w + c]) buf.data[(part.y - buf.y + r) * buf.w + (part.x - buf.x + c)] = 1;
        }
      }
      markDirty(buf, part.x, part.x + part.w);
    }
    const m = encodeBuf(S, buf);
    if (m) { inst.mask = m; inst.bbox = [m.x, m.y, m.w, m.h]; buf.rev = m.rev; buf.canvas = null; }
    MASK_TOUCHED.add(inst.key);
  } else {
    inst.polygons.push(flat);
  }
  markEdited(inst);
  return true;
}
