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

function emptyBuf(x, y, w, h) { return { x, y, w, h, data: new Uint8Array(w * h), canvas: null, color: null, rev: null, live: false }; }

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
  return { x0, y0, x1, y1, grew };
}

// Tight crop and column-major runs (zeros first) of a buffer: the `mask` Python stores.
function encodeBuf(S, buf) {
  const { w, h, data } = buf;
  let c0 = w, c1 = -1, r0 = h, r1 = -1;
  for (let r = 0; r < h; r++) {
    const row = r * w;
    for (let c = 0; c < w; c++) if (data[row + c]) { if (c < c0) c0 = c; if (c > c1) c1 = c; if (r < r0) r0 = r; r1 = r; }
  }
  if (c1 < 0) return null;
  const counts = [];
  let v = 0, n = 0;
  for (let c = c0; c <= c1; c++) {
    for (let r = r0; r <= r1; r++) {
      const b = data[r * w + c];
      if (b !== v) { counts.push(n); v = b; n = 0; }
      n++;
    }
  }
  counts.push(n);
  return { size: [S.H, S.W], x: buf.x + c0, y: buf.y + r0, w: c1 - c0 + 1, h: r1 - r0 + 1, counts, rev: newMaskRev() };
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
