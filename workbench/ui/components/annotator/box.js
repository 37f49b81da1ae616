// Rectangle tool: box-only instances (COCO `segmentation: []`), drawn by dragging, edited by their corners
// and moved like any shape; "to polygon" turns a box into the four-vertex polygon of the same area.
// Part of the annotator module (see JS_PARTS): functions only, called from annotator.js.

const BOX_MIN_PX = 2; // natural pixels: a smaller drag is a click, not a box

function boxOf(a, b) {
  const x = Math.min(a[0], b[0]), y = Math.min(a[1], b[1]);
  return [x, y, Math.abs(a[0] - b[0]), Math.abs(a[1] - b[1])];
}

function boxDown(S, e, pt) {
  if (!S.curClass) { render(S); return; }
  S.selected = -1;
  startDrag(S, e, { type: "newbox", start: clampPt(S, pt) });
  S.boxDraft = null;
}

function boxDragMove(S, d, pt) {
  if (d.type === "newbox") {
    S.boxDraft = boxOf(d.start, pt);
    renderDraft(S, unitsPerPx(S));
    return true;
  }
  if (d.type === "corner") {
    const inst = S.instances[d.i];
    inst.bbox = boxOf(d.fixed, pt);
    return false; // the caller renders
  }
  return false;
}

function boxDragEnd(S, d, e) {
  // true when the drag was the rectangle tool's (a new box); corner drags end like vertex drags
  if (d.type !== "newbox") return false;
  const b = S.boxDraft;
  S.boxDraft = null;
  if (d.moved) suppressNextClick(S, e);
  if (!b || b[2] < BOX_MIN_PX || b[3] < BOX_MIN_PX) { render(S); return true; }
  snapshot(S);
  S.instances.push({ key: newUid(S), id: null, category: S.curClass, polygons: [], keypoints: null,
    bbox: b, rle: false, source: "manual", score: null, hidden: false, attributes: {} });
  S.selected = -1; // as a closed polygon: the next class key is for the next shape
  commit(S);
  return true;
}

function renderBoxDraft(S, g) {
  const b = S.boxDraft;
  if (!b) return;
  el("rect", { x: b[0], y: b[1], width: b[2], height: b[3], class: "wb-boxdraft" }, g);
}

function renderBoxShape(S, inst, i, color, u, g, sel, hov) {
  const [x, y, w, h] = inst.bbox;
  el("rect", { x, y, width: w, height: h, fill: color, stroke: color, "data-i": i, "data-row-id": inst.id ?? "",
    class: "wb-shape wb-boxshape" + (sel ? " wb-sel" : "") + (hov ? " wb-hover" : "") }, g);
  if (!sel) return;
  [[x, y], [x + w, y], [x + w, y + h], [x, y + h]].forEach(([cx, cy], c) => {
    el("circle", { cx, cy, r: 5 * u, stroke: color, class: "wb-vertex wb-corner", "data-i": i, "data-corner": c }, g);
  });
}

function startCornerDrag(S, e, i, corner) {
  const [x, y, w, h] = S.instances[i].bbox;
  const opposite = [[x + w, y + h], [x, y + h], [x, y], [x + w, y]][corner];
  startDrag(S, e, { type: "corner", i, fixed: opposite, before: JSON.stringify(S.instances) });
}

function moveBox(inst, orig, dx, dy) {
  if (orig.polygons.length || !orig.bbox || orig.rle) return;
  inst.bbox = [orig.bbox[0] + dx, orig.bbox[1] + dy, orig.bbox[2], orig.bbox[3]];
}

function boxToPolygon(S, i) {
  const inst = S.instances[i];
  if (!inst || !isBoxOnly(inst)) return;
  snapshot(S);
  const [x, y, w, h] = inst.bbox;
  inst.polygons = [[x, y, x + w, y, x + w, y + h, x, y + h]];
  inst.bbox = null;
  markEdited(inst);
  commit(S);
}
