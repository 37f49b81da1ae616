// Workbench annotator: polygons and keypoints over an SVG whose viewBox is the image's natural size,
// so every coordinate below is in natural (upright) image pixels. Vanilla JS, no build step.
//
// Streamlit calls the default export again on every `data` change without cleaning up first, so the
// listeners are attached once and all state lives on the ShadowRoot (`parentElement.__wb`). Shapes are
// taken from Python only on first mount or when Python bumps `data.epoch`. State goes back to Python
// only when an action finishes (one `setTriggerValue('action', ...)` = one rerun).
//
// Every shape has a uid (Python names the shapes it loads, `py:<epoch>:<row id>`; shapes drawn here get
// one unique to this mount); shapes drawn here have no row id until Python saves them and answers with
// `data.ids` ({uid: row id}), merged in without touching anything else, so later saves update those
// rows instead of inserting new ones.
//
// A save sends only what changed (deltas.py): the shapes whose content differs from the base, whole,
// and the uids of the shapes gone. The base is the state of the newest action Python acknowledged
// (or the epoch's shapes as loaded), so an action Streamlit replaced before Python read it is never
// missing from the next one. Python sends the shapes once per epoch (`data.instances`); a new mount
// that gets an epoch without them asks for a reload.

const SVGNS = "http://www.w3.org/2000/svg";
const CLOSE_PX = 9; // screen pixels within which a click on the first vertex closes the polygon

export default function annotator(component) {
  const { data, parentElement, setTriggerValue } = component;
  const root = parentElement.querySelector(".wb-annot");
  if (!root) return undefined;
  let S = parentElement.__wb;
  if (!S) {
    S = createState(root);
    parentElement.__wb = S;
    attachListeners(S);
  }
  S.setTriggerValue = setTriggerValue;
  if (!S.windowListening) attachWindowListeners(S);
  applyData(S, data || {});
  return () => detachWindowListeners(S);
}

// ---------------------------------------------------------------- state

function createState(root) {
  const q = (role) => root.querySelector(`[data-role="${role}"]`);
  return {
    root, svg: q("svg"), img: q("img"), shapesG: q("shapes"), draftG: q("draft"), stage: q("stage"),
    list: q("list"), kppanel: q("kppanel"), hint: q("hint"), classSel: q("class"),
    imglabel: q("imglabel"), imgstatus: q("imgstatus"), savestate: q("savestate"),
    data: {}, epoch: null, imageId: null, W: 1, H: 1,
    categories: [], catByName: new Map(),
    instances: [], selected: -1, hover: -1,
    tool: "polygon", curClass: null,
    draft: null, mouse: null,
    undo: [], redo: [],
    drag: null, suppressClick: null, spaceDown: false,
    vb: { x: 0, y: 0, w: 1, h: 1 },
    seq: 0, ackSeq: 0, locked: false,
    kpNext: 0, kpVis: 2, notice: "",
    loadedUrl: null, prefetched: new Map(), pending: null,
    windowListening: false, handlers: null, nextKey: 1, drafts: new Map(),
    uidBase: Math.random().toString(36).slice(2, 10), ids: {},
    base: { seq: 0, sigs: new Map() }, sent: new Map(), resync: null, askedShapes: null,
  };
}

function applyData(S, data) {
  S.data = data;
  S.ackSeq = Math.max(S.ackSeq, data.ack_seq || 0);
  setCategories(S, data.categories || []);
  const img = data.image || null;
  S.ids = data.ids || {};
  if (data.epoch !== S.epoch && data.mode !== "review" && !Array.isArray(data.instances)) {
    askShapes(S, data, img); // a new mount: this epoch's shapes went to the one before
  } else if (data.epoch !== S.epoch) {
    const sameImage = S.epoch != null && !S.pending && img && img.id === S.imageId;
    const selId = sameImage && S.instances[S.selected] ? S.instances[S.selected].id : null;
    S.pending = null;
    S.epoch = data.epoch;
    S.seq = Math.max(S.seq, S.ackSeq); // a remounted tab goes on from the acknowledged sequence
    if (!sameImage && S.draft && S.imageId != null) S.drafts.set(S.imageId, S.draft);
    rememberView(S); // shape_tools.js: hide and lock of the image being left
    S.imageId = img ? img.id : null;
    S.W = img ? img.width : 1;
    S.H = img ? img.height : 1;
    S.instances = (data.instances || []).map((inst) => fromPython(S, inst));
    S.base = { seq: 0, sigs: new Map(S.instances.map((inst) => [inst.key, shapeSig(inst, toPython(inst))])) };
    S.sent = new Map();
    restoreView(S); // shape_tools.js
    S.hover = -1; S.drag = null;
    S.undo = []; S.redo = [];
    S.locked = false;
    S.svg.setAttribute("data-image-id", S.imageId == null ? "" : String(S.imageId));
    if (sameImage) {
      // the same image saved elsewhere and merged: keep the view, the selection and an unfinished
      // polygon; only the shapes change (undo steps would revert the other tab's edits: dropped)
      S.selected = selId == null ? -1 : S.instances.findIndex((inst) => inst.id === selId);
    } else {
      S.selected = -1; S.kpNext = 0;
      S.draft = S.imageId != null && S.drafts.has(S.imageId) ? S.drafts.get(S.imageId) : null;
      if (S.draft) { S.drafts.delete(S.imageId); S.notice = "Your unfinished polygon on this image is back: Enter closes it, Esc drops it"; }
      fit(S);
    }
    if (data.notice) S.notice = data.notice;
    loadImage(S, img);
  } else {
    mergeIds(S, S.instances);
    ackBase(S);
    rememberView(S); // shape_tools.js: shapes hidden or locked before their row id came
    if (S.seq <= S.ackSeq) {
      S.locked = false;
      if (S.pending) { // the move was refused (conflict, error): back to this image and its shapes
        S.pending = null;
        S.W = img ? img.width : 1;
        S.H = img ? img.height : 1;
        fit(S);
        loadImage(S, img);
      }
    }
  }
  if (S.resync == null) S.resync = data.resync || 0;
  else if ((data.resync || 0) > S.resync) { S.resync = data.resync; send(S, "save", null, true); } // whole list
  const nbs = Object.values(data.neighbours || {});
  prefetch(S, [...nbs.map((n) => n.url), img && img.url].filter(Boolean));
  S.wantedHeight = data.height || 600;
  fitStageHeight(S);
  showImageInfo(S, S.pending || img);
  updateSaveState(S);
  if (data.mode === "review") reviewSync(S, data); // review.js: predictions over the ground truth
  assistSync(S, data); // assist.js: the assist bar's options, the answer to its last request
  render(S);
  updateTiles(S); // tiles.js: tiles Python has just registered
  refocus(S, null); // a rerun after a page control: the keys come back to the annotator
}

// The stage is as tall as asked, but never taller than the window leaves room for (toolbar and the
// page's header above it), so a short window still shows the whole image and the shape list's end.
const STAGE_MIN_PX = 320;
const WINDOW_ROOM_PX = 170;
function fitStageHeight(S) {
  const room = Math.max(STAGE_MIN_PX, window.innerHeight - WINDOW_ROOM_PX);
  const h = Math.min(S.wantedHeight || 600, room);
  if (S.stage.style.height !== `${h}px`) S.stage.style.height = `${h}px`;
}

function showImageInfo(S, img) {
  S.imglabel.textContent = img ? `${img.index + 1}/${img.count}  ${img.file_name}` : "No image";
  S.imglabel.title = img ? img.file_name : "";
  S.imgstatus.textContent = img ? img.status.replace("_", " ") : "";
  S.imgstatus.setAttribute("data-status", img ? img.status : "");
  S.root.querySelector('[data-cmd="prev"]').disabled = !img || img.index <= 0;
  S.root.querySelector('[data-cmd="next"]').disabled = !img || img.index >= img.count - 1;
}

function setCategories(S, cats) {
  S.categories = cats;
  S.catByName = new Map(cats.map((c) => [c.name, c]));
  if (!S.curClass || !S.catByName.has(S.curClass)) S.curClass = cats.length ? cats[0].name : null;
  const sel = S.classSel;
  sel.replaceChildren();
  cats.forEach((c, i) => {
    const opt = document.createElement("option");
    opt.value = c.name;
    opt.textContent = i < 9 ? `${i + 1}  ${c.name}` : c.name; // textContent: names are user text
    opt.title = c.name; // the picker is width-capped (CSS): the full name on hover
    sel.appendChild(opt);
  });
  if (S.curClass) sel.value = S.curClass;
}

function newUid(S) { return `${S.uidBase}-${S.nextKey++}`; }

function mergeIds(S, instances) {
  // Row ids Python gave to shapes after saving them, by uid (also applied to undo/redo snapshots).
  for (const inst of instances) {
    const id = S.ids[inst.key];
    if (id != null) inst.id = id;
  }
  return instances;
}

function fromPython(S, inst) {
  return {
    key: inst.uid || newUid(S),
    id: inst.id ?? null,
    category: inst.category,
    polygons: (inst.polygons || []).map((p) => p.slice()),
    keypoints: inst.keypoints ? inst.keypoints.slice() : null,
    bbox: inst.bbox || null,
    rle: !!inst.rle,
    mask: inst.mask || null, // mask.js: the crop the brush and eraser paint
    source: inst.source || "manual",
    score: inst.score ?? null,
    attributes: Object.assign({}, inst.attributes || {}), // attributes.js edits them
    z_order: inst.z_order || 0, // shape_tools.js: drawing order
    hidden: false,
  };
}

function toPython(inst) {
  const r2 = (v) => Math.round(v * 100) / 100;
  return {
    uid: inst.key,
    id: inst.id,
    category: inst.category,
    polygons: inst.rle ? [] : inst.polygons.map((p) => p.map(r2)),
    keypoints: inst.keypoints ? inst.keypoints.map((v, i) => (i % 3 === 2 ? v : r2(v))) : null,
    rle: inst.rle,
    mask: maskPayload(inst), // mask.js: a painted mask's crop, else null (Python keeps the stored one)
    box: isBoxOnly(inst) ? inst.bbox.map(r2) : null, // box.js: a box-only instance's box
    source: inst.source,
    score: inst.score,
    attributes: inst.attributes || {},
    z_order: inst.z_order || 0,
  };
}

// ---------------------------------------------------------------- image and view

function perfMark(label) {
  // Benchmarks set window.__wbPerf = [] to see where the time of an image switch goes.
  const p = window.__wbPerf;
  if (p) p.push([label, performance.now()]);
}

function decoded(S, url) {
  // One decoded Image per URL: the neighbours are fetched and decoded before the user asks for them,
  // and holding the element keeps the bitmap in the browser's memory cache, so a switch is a hit.
  let e = S.prefetched.get(url);
  if (!e) {
    const im = new Image();
    im.decoding = "async";
    im.src = url;
    e = { im, ready: im.decode().catch(() => undefined) };
    S.prefetched.set(url, e);
  }
  return e.ready;
}

function prefetch(S, urls) {
  for (const url of urls) decoded(S, url);
  // keep the current image and its neighbours (the URLs of images left behind are dropped)
  for (const url of [...S.prefetched.keys()]) if (!urls.includes(url)) S.prefetched.delete(url);
}

function loadImage(S, img) {
  // data-shown-image: the image is on screen; data-loaded-image: and its shapes are, ready to edit.
  S.root.removeAttribute("data-loaded-image");
  if (!img || !img.url) { S.img.removeAttribute("href"); S.loadedUrl = null; return; }
  perfMark("data");
  const epoch = S.epoch;
  showImage(S, img, () => S.epoch === epoch && !S.pending, "data-loaded-image");
}

function showImage(S, img, stillWanted, attr) {
  S.img.setAttribute("width", String(img.width));
  S.img.setAttribute("height", String(img.height));
  const url = img.url;
  if (S.loadedUrl !== url) S.root.removeAttribute("data-shown-image");
  decoded(S, url).then(() => {
    if (!stillWanted()) return;
    perfMark("decoded");
    S.img.setAttribute("href", url);
    S.loadedUrl = url;
    // The browser paints on the next frame; the attributes tell tests and benchmarks it is drawn.
    requestAnimationFrame(() => {
      if (!stillWanted()) return;
      perfMark(attr);
      S.root.setAttribute("data-shown-image", String(img.id));
      if (attr !== "data-shown-image") S.root.setAttribute(attr, String(img.id));
    });
  });
}

function showPending(S, nb) {
  // Show the neighbour the user moves to at once (its display copy is already decoded); its shapes
  // come with Python's answer, which also unlocks editing. A refused move goes back (applyData).
  S.pending = nb;
  S.root.removeAttribute("data-loaded-image");
  S.W = nb.width; S.H = nb.height;
  fit(S);
  showImageInfo(S, nb);
  showImage(S, nb, () => S.pending === nb, "data-shown-image");
}

function fit(S) {
  S.vb = { x: 0, y: 0, w: S.W, h: S.H };
  applyViewBox(S);
}

function applyViewBox(S) {
  const { x, y, w, h } = S.vb;
  S.svg.setAttribute("viewBox", `${x} ${y} ${w} ${h}`);
  updateTiles(S); // tiles.js: native pixels past the display copy's scale
}

function unitsPerPx(S) {
  const r = S.svg.getBoundingClientRect();
  if (!r.width || !r.height) return S.W / 800;
  return Math.max(S.vb.w / r.width, S.vb.h / r.height);
}

function zoomAt(S, factor, px, py) {
  const minW = 8, maxW = S.W * 20;
  let w = S.vb.w / factor;
  if (w < minW) factor = S.vb.w / minW;
  if (w > maxW) factor = S.vb.w / maxW;
  w = S.vb.w / factor;
  const h = S.vb.h / factor;
  S.vb = { x: px - (px - S.vb.x) / factor, y: py - (py - S.vb.y) / factor, w, h };
  applyViewBox(S);
  render(S);
}

function toImage(S, e) {
  const pt = S.svg.createSVGPoint();
  pt.x = e.clientX; pt.y = e.clientY;
  const m = S.svg.getScreenCTM();
  if (!m) return [0, 0];
  const p = pt.matrixTransform(m.inverse());
  return [p.x, p.y];
}

function clampPt(S, p) {
  return [Math.min(Math.max(p[0], 0), S.W), Math.min(Math.max(p[1], 0), S.H)];
}

// ---------------------------------------------------------------- rendering

function el(tag, attrs, parent) {
  const n = document.createElementNS(SVGNS, tag);
  for (const k in attrs) n.setAttribute(k, String(attrs[k]));
  if (parent) parent.appendChild(n);
  return n;
}

function colorOf(S, name) {
  const c = S.catByName.get(name);
  return c ? c.color : "#e53e3e";
}

function schemaOf(S, name) {
  const c = S.catByName.get(name);
  return c && c.keypoints ? c.keypoints : null;
}

// True for an instance with a stored box but no polygon or mask, whose box is not merely the box of its
// visible keypoints (what a save gives a keypoints-only instance).
function isBoxOnly(inst) {
  if (inst.rle || inst.polygons.length || !inst.bbox) return false;
  const kp = inst.keypoints || [];
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let k = 0; k < kp.length; k += 3) {
    if (kp[k + 2] > 0) { x0 = Math.min(x0, kp[k]); y0 = Math.min(y0, kp[k + 1]); x1 = Math.max(x1, kp[k]); y1 = Math.max(y1, kp[k + 1]); }
  }
  if (x0 === Infinity) return true;
  const d = [x0, y0, x1 - x0, y1 - y0];
  return inst.bbox.some((v, k) => Math.abs(v - d[k]) > 1e-6);
}

function render(S) {
  if (S.data.mode === "review") { renderReview(S); return; }
  S.root.setAttribute("data-tool", S.tool);
  S.root.querySelectorAll(".wb-tool").forEach((b) => b.classList.toggle("wb-active", b.dataset.tool === S.tool));
  S.root.querySelector('[data-cmd="undo"]').disabled = !S.undo.length;
  S.root.querySelector('[data-cmd="redo"]').disabled = !S.redo.length;
  const u = unitsPerPx(S);
  const groups = startShapeGroups(S, u); // render_cache.js: one <g> per shape, kept while it looks the same
  zOrdered(S).forEach(({ inst, i }) => { // shape_tools.js: higher z_order on top
    if (inst.hidden || S.pending) return;
    const color = colorOf(S, inst.category);
    const sel = i === S.selected;
    const hov = i === S.hover;
    const g = shapeGroup(S, groups, inst, i, color, sel, hov); // render_cache.js: null: drawn already
    if (!g) return;
    let labelAt = null;
    if (inst.rle) renderMask(S, inst, i, color, g); // mask.js: the pixels, under the dashed box
    if (inst.rle && inst.bbox) {
      const [x, y, w, h] = inst.bbox;
      el("rect", { x, y, width: w, height: h, class: "wb-rle wb-shape" + (sel ? " wb-sel" : "") + (hov ? " wb-hover" : ""),
        fill: color, stroke: color, "data-i": i }, g);
      labelAt = [x, y];
    } else if (isBoxOnly(inst)) {
      renderBoxShape(S, inst, i, color, u, g, sel, hov); // box.js: a box without a shape (COCO segmentation [])
      labelAt = [inst.bbox[0], inst.bbox[1]];
    }
    inst.polygons.forEach((poly, p) => {
      const pts = [];
      for (let k = 0; k < poly.length; k += 2) pts.push(`${poly[k]},${poly[k + 1]}`);
      el("polygon", { points: pts.join(" "), fill: color, stroke: color, "data-i": i, "data-p": p,
        "data-row-id": inst.id ?? "",
        class: "wb-shape" + (sel ? " wb-sel" : "") + (hov ? " wb-hover" : "") }, g);
      if (!labelAt) labelAt = [poly[0], poly[1]];
    });
    if (sel) {
      inst.polygons.forEach((poly, p) => {
        const n = poly.length / 2;
        for (let k = 0; k < n; k++) {
          const k2 = (k + 1) % n;
          el("line", { x1: poly[2 * k], y1: poly[2 * k + 1], x2: poly[2 * k2], y2: poly[2 * k2 + 1],
            class: "wb-edge", "stroke-width": 8 * u, "data-i": i, "data-p": p, "data-e": k }, g);
        }
        for (let k = 0; k < n; k++) {
          el("circle", { cx: poly[2 * k], cy: poly[2 * k + 1], r: 5 * u, stroke: color, class: "wb-vertex",
            "data-i": i, "data-p": p, "data-v": k }, g);
        }
      });
    }
    renderKeypoints(S, inst, i, color, u, g);
    if (labelAt && showLabel(S, sel, hov)) {
      const t = el("text", { x: labelAt[0], y: labelAt[1] - 4 * u, class: "wb-label", "font-size": 13 * u }, g);
      t.textContent = inst.category + (inst.source === "predicted" && inst.score != null ? ` ${inst.score.toFixed(2)}` : "");
    }
  });
  const g = placeShapeGroups(S, groups); // render_cache.js: the groups into the shapes layer, in order
  passLockedThrough(S, g); // shape_tools.js
  for (const ghost of S.data.ghosts || []) {
    for (const poly of ghost.polygons || []) {
      const pts = [];
      for (let k = 0; k < poly.length; k += 2) pts.push(`${poly[k]},${poly[k + 1]}`);
      el("polygon", { points: pts.join(" "), stroke: colorOf(S, ghost.category), class: "wb-ghost",
        "data-ghost-id": ghost.id ?? "" }, g);
    }
  }
  renderDraft(S, u);
  renderBrushCursor(S, u); // mask.js
  syncMaskControls(S); // mask.js: brush size field, part mode button
  syncAssistBar(S); // assist.js
  renderList(S);
  renderKpPanel(S);
  renderAttrPanel(S); // attributes.js
  renderHint(S);
}

function renderKeypoints(S, inst, i, color, u, g) {
  const kp = inst.keypoints;
  if (!kp) return;
  const schema = schemaOf(S, inst.category);
  if (schema) {
    for (const [a, b] of schema.skeleton || []) {
      if (kp[3 * a + 2] > 0 && kp[3 * b + 2] > 0) {
        el("line", { x1: kp[3 * a], y1: kp[3 * a + 1], x2: kp[3 * b], y2: kp[3 * b + 1], stroke: color,
          class: "wb-skel" }, g);
      }
    }
  }
  for (let k = 0; k < kp.length / 3; k++) {
    const v = kp[3 * k + 2];
    if (!v) continue;
    const c = el("circle", { cx: kp[3 * k], cy: kp[3 * k + 1], r: (i === S.selected ? 5 : 4) * u, fill: color,
      class: "wb-kpt" + (v === 1 ? " wb-occluded" : ""), "data-i": i, "data-k": k }, g);
    const title = el("title", {}, c);
    title.textContent = schema && schema.names[k] ? schema.names[k] : `keypoint ${k + 1}`;
  }
}

function renderDraft(S, u) {
  const g = S.draftG;
  g.replaceChildren();
  renderBoxDraft(S, g); // box.js: the rectangle being dragged
  renderAssistDraft(S, g, u); // assist.js: the prompt and the proposed shape
  if (!S.draft || !S.draft.length) return;
  const pts = S.draft.map((p) => `${p[0]},${p[1]}`);
  if (S.mouse) pts.push(`${S.mouse[0]},${S.mouse[1]}`);
  el("polyline", { points: pts.join(" "), class: "wb-draftline" }, g);
  S.draft.forEach((p, k) => {
    el("circle", { cx: p[0], cy: p[1], r: (k === 0 && S.draft.length >= 3 ? 6 : 4) * u,
      class: "wb-draftv" + (k === 0 ? " wb-first" : ""), "data-draft": k }, g);
  });
}

function buildList(S, ul) { // render_cache.js: renderList builds into a detached list, swaps changed rows
  ul.replaceChildren();
  if (S.pending) return;
  if (!S.instances.length) {
    const li = document.createElement("li");
    li.className = "wb-empty";
    li.textContent = S.categories.length ? "No shapes yet: pick the polygon tool and click on the image."
      : "No classes yet: add one on the Classes page.";
    ul.appendChild(li);
    return;
  }
  S.instances.forEach((inst, i) => {
    if (keptRow(S, ul, inst, i)) return; // render_cache.js: the row on the page is still right
    const li = document.createElement("li");
    li.dataset.i = String(i);
    li.className = (i === S.selected ? "wb-selected " : "") + (i === S.hover ? "wb-hover " : "") + (inst.hidden ? "wb-hidden" : "");
    const sw = document.createElement("span");
    sw.className = "wb-swatch";
    sw.style.background = colorOf(S, inst.category);
    const name = document.createElement("span");
    name.className = "wb-name";
    name.textContent = `${i + 1}. ${inst.category}`;
    name.title = inst.category; // cut with an ellipsis (CSS) so the row keeps its buttons
    const tag = document.createElement("span");
    tag.className = "wb-tag";
    const bits = [];
    if (inst.rle) bits.push("mask");
    else if (isBoxOnly(inst)) bits.push("box");
    else if (inst.polygons.length) bits.push(`${inst.polygons.reduce((a, p) => a + p.length / 2, 0)} pts`);
    if (inst.keypoints) bits.push(`${inst.keypoints.filter((v, k) => k % 3 === 2 && v > 0).length} kp`);
    if (inst.source !== "manual") bits.push(inst.source);
    tag.textContent = bits.join(" · ");
    const eye = document.createElement("button");
    eye.className = "wb-mini"; eye.dataset.act = "toggle"; eye.title = inst.hidden ? "Show" : "Hide";
    eye.textContent = inst.hidden ? "show" : "hide";
    const del = document.createElement("button");
    del.className = "wb-mini"; del.dataset.act = "delete"; del.title = "Delete shape"; del.textContent = "✕";
    li.append(sw, name, tag, eye, del);
    addRowTools(S, inst, li, del); // shape_tools.js: lock
    if (isBoxOnly(inst)) { // box.js: a box becomes the polygon of its four corners
      const conv = document.createElement("button");
      conv.className = "wb-mini"; conv.dataset.act = "topoly"; conv.title = "Convert the box to a polygon";
      conv.textContent = "to polygon";
      li.insertBefore(conv, eye);
    }
    ul.appendChild(li);
  });
}

function renderKpPanel(S) {
  const p = S.kppanel;
  p.replaceChildren();
  const inst = S.instances[S.selected];
  const cls = inst ? inst.category : S.curClass;
  const schema = schemaOf(S, cls);
  if (!schema) return;
  const title = document.createElement("div");
  title.className = "wb-side-title";
  title.textContent = `Keypoints (${S.kpVis === 2 ? "visible" : "occluded"})`;
  p.appendChild(title);
  const ol = document.createElement("ol");
  schema.names.forEach((n, k) => {
    const li = document.createElement("li");
    const v = inst && inst.keypoints ? inst.keypoints[3 * k + 2] : 0;
    li.dataset.k = String(k);
    li.dataset.v = String(v);
    if (S.tool === "keypoint" && k === S.kpNext) li.className = "wb-current";
    li.textContent = `${n}${v === 2 ? " ✓" : v === 1 ? " (occluded)" : ""}`;
    ol.appendChild(li);
  });
  p.appendChild(ol);
}

function renderHint(S) {
  let h = "";
  if (S.notice) h = S.notice; // until the next mouse press or key
  else if (S.locked) h = "Loading…";
  else if (!S.categories.length) h = "Add a class on the Classes page before drawing.";
  else if (S.tool === "polygon") {
    h = S.draft ? `${S.draft.length} vertices: click the first vertex, double-click or Enter to close; Esc cancels`
      : "Click to add polygon vertices";
  } else if (S.tool === "keypoint") {
    const inst = S.instances[S.selected];
    const schema = schemaOf(S, inst ? inst.category : S.curClass);
    if (!schema) h = "This class has no keypoints: define them on the Classes page";
    else if (S.kpNext < schema.names.length) h = `Click to place "${schema.names[S.kpNext]}" (O: occluded, X: skip)`;
    else h = "All keypoints placed: drag to adjust";
  } else if (isMaskTool(S)) h = maskHint(S); // mask.js
  else if (S.tool === "assist") h = assistHint(S); // assist.js
  S.hint.textContent = h;
}

function updateSaveState(S) {
  const d = S.data;
  let text = "", state = "";
  if (d.conflict) { text = "Not saved: a shape was changed in another tab too (see below)"; state = "conflict"; }
  else if (d.error) { text = `Not saved: ${d.error} (see below)`; state = "error"; }
  else if (S.seq > S.ackSeq) { text = "Saving…"; state = "saving"; }
  else if (S.seq > 0 || d.version) { text = d.version ? `Saved (v${d.version})` : "Saved"; state = "saved"; }
  S.savestate.textContent = text;
  S.savestate.title = text; // the badge is width-capped: the whole message on hover
  S.savestate.setAttribute("data-state", state);
}

// ---------------------------------------------------------------- actions sent to Python

function snapshot(S) {
  S.undo.push(JSON.stringify(S.instances));
  if (S.undo.length > 200) S.undo.shift();
  S.redo = [];
}

function send(S, kind, extra, whole) {
  if (S.imageId == null) return;
  stackNewShapes(S); // shape_tools.js: a shape drawn here goes on top
  S.seq += 1;
  const items = S.instances.map(toPython);
  const sigs = new Map(), changed = [];
  items.forEach((it, n) => {
    const sig = shapeSig(S.instances[n], it);
    sigs.set(it.uid, sig);
    if (S.base.sigs.get(it.uid) !== sig) changed.push(it);
  });
  const deleted = [...S.base.sigs.keys()].filter((uid) => !sigs.has(uid));
  const shapes = whole ? { instances: items } : { base: S.base.seq, changed, deleted };
  S.sent.set(S.seq, { seq: S.seq, sigs });
  if (S.sent.size > 64) S.sent.delete(S.sent.keys().next().value);
  const payload = Object.assign({ kind, seq: S.seq, epoch: S.epoch, image_id: S.imageId }, shapes, extra || {});
  if (window.__wbActions) window.__wbActions.push(payload); // tests: what each action carried
  updateSaveState(S);
  S.setTriggerValue("action", payload);
}

// What a save compares to find a changed shape: its payload, a painted mask by its revision.
function shapeSig(inst, item) {
  if (!item.mask) return JSON.stringify(item);
  const { mask } = item;
  item.mask = null;
  const sig = `${JSON.stringify(item)}|${(inst.mask && inst.mask.rev) || JSON.stringify(mask)}`;
  item.mask = mask;
  return sig;
}

// Python has read the actions up to data.ack_seq: the newest of them is the next delta's base.
function ackBase(S) {
  const snap = S.sent.get(S.ackSeq);
  if (!snap || snap.seq <= S.base.seq) return;
  S.base = snap;
  for (const seq of [...S.sent.keys()]) if (seq <= snap.seq) S.sent.delete(seq);
}

// A new mount (the page was left and opened again) gets an epoch whose shapes went to the old one:
// it asks Python to load the image again, and waits (locked) for that epoch.
function askShapes(S, data, img) {
  S.locked = true;
  if (!img || S.askedShapes === data.epoch || !S.setTriggerValue) return;
  S.askedShapes = data.epoch;
  S.seq = Math.max(S.seq, S.ackSeq) + 1;
  S.setTriggerValue("action", { kind: "reload", seq: S.seq, epoch: data.epoch, image_id: img.id });
}

// The redraw waits for Streamlit to send the action (it flushes triggers in a setTimeout, queued by
// send first): redrawing 1,000 shapes before it would delay the save by that long.
function commit(S) { send(S, "save"); setTimeout(() => render(S), 0); }

function markEdited(inst) {
  if (inst.source === "predicted") { inst.source = "manual"; inst.score = null; }
}

function closeDraft(S) {
  if (!S.draft || S.draft.length < 3 || !S.curClass) return false;
  snapshot(S);
  const flat = [];
  for (const p of S.draft) flat.push(p[0], p[1]);
  if (addPartToSelected(S, flat)) { S.draft = null; commit(S); return true; } // mask.js: part mode
  const inst = { key: newUid(S), id: null, category: S.curClass, polygons: [flat], keypoints: null,
    bbox: null, rle: false, source: "manual", score: null, hidden: false };
  S.instances.push(inst);
  S.selected = -1; // deselected: the class keys that follow choose the next shape's class, not this one's
  S.draft = null;
  commit(S);
  return true;
}

function deleteSelected(S) {
  if (S.selected < 0) return;
  snapshot(S);
  S.instances.splice(S.selected, 1);
  S.selected = -1; S.hover = -1;
  commit(S);
}

// The class of the next shape (keys 1-9): never changes a shape that exists.
function setClass(S, name) {
  if (!S.catByName.has(name)) return;
  S.curClass = name;
  S.classSel.value = name;
  render(S);
}

// An explicit relabel of the selected shape (the class picker, or Shift + 1-9). A change that would
// drop keypoints (the new class has none, or another number of them) asks first.
function relabelSelected(S, name) {
  const inst = S.instances[S.selected];
  if (!inst || !S.catByName.has(name)) { setClass(S, name); return; }
  if (inst.category === name) { setClass(S, name); return; }
  const schema = schemaOf(S, name);
  const kpLost = inst.keypoints && inst.keypoints.some((v, k) => k % 3 === 2 && v > 0)
    && (!schema || inst.keypoints.length !== 3 * schema.names.length);
  if (kpLost && !window.confirm(`Change this ${inst.category} to ${name}? Its keypoints do not fit ${name} and will be dropped.`)) {
    S.classSel.value = S.curClass;
    S.notice = "Class not changed: the keypoints are kept";
    render(S);
    return;
  }
  S.curClass = name;
  S.classSel.value = name;
  snapshot(S);
  inst.category = name;
  if (inst.keypoints && (!schema || inst.keypoints.length !== 3 * schema.names.length)) inst.keypoints = null;
  markEdited(inst);
  commit(S);
}

// Undo and redo are one move between two stacks: take a snapshot from one, keep the present on the other.
function restore(S, from, to) {
  if (!from.length) return;
  to.push(JSON.stringify(S.instances));
  const selKey = S.selected >= 0 && S.instances[S.selected] ? S.instances[S.selected].key : null;
  S.instances = mergeIds(S, JSON.parse(from.pop()));
  // The selection follows its shape, or goes: an index would now point at another shape (undoing a
  // new polygon selected an older one, which the next class key or Delete then changed).
  S.selected = selKey == null ? -1 : S.instances.findIndex((inst) => inst.key === selKey); S.hover = -1;
  commit(S);
}

function undo(S) { restore(S, S.undo, S.redo); }

function redo(S) { restore(S, S.redo, S.undo); }

function navigate(S, delta, status) {
  if (S.locked || S.imageId == null) return;
  const img = S.data.image;
  if (!img || img.index + delta < 0 || img.index + delta >= img.count) return;
  if (S.draft) S.drafts.set(S.imageId, S.draft); // kept for this image, never saved by moving
  S.draft = null;
  S.locked = true;
  perfMark("navigate");
  send(S, "navigate", status ? { delta, status } : { delta }); // status: "Done and next"
  const nb = (S.data.neighbours || {})[String(delta)];
  if (nb && nb.url) showPending(S, nb);
  render(S);
}

function setStatus(S, status) {
  if (S.imageId == null) return;
  send(S, "status", { status }); // an unfinished polygon stays a draft: Enter closes it, Esc drops it
  render(S);
}

function setTool(S, tool) {
  if (S.tool === "polygon" && tool !== "polygon") S.draft = null;
  assistToolChanged(S, S.tool, tool); // assist.js: drops the prompt on leaving, warms SAM on entering
  S.tool = tool;
  rememberTool(S, tool); // view_tools.js: N starts a new shape with it
  if (tool === "keypoint") startKeypoints(S);
  render(S);
}

function startKeypoints(S) {
  const inst = S.instances[S.selected];
  const schema = schemaOf(S, inst ? inst.category : S.curClass);
  S.kpNext = 0;
  if (inst && inst.keypoints && schema) {
    const k = schema.names.findIndex((_, j) => !inst.keypoints[3 * j + 2]);
    S.kpNext = k < 0 ? schema.names.length : k;
  }
}

function placeKeypoint(S, pt, vis) {
  let inst = S.instances[S.selected];
  const cls = inst ? inst.category : S.curClass;
  const schema = schemaOf(S, cls);
  if (!schema) { render(S); return; }
  const K = schema.names.length;
  if (S.kpNext >= K) { render(S); return; }
  snapshot(S);
  if (!inst) {
    inst = { key: newUid(S), id: null, category: cls, polygons: [], keypoints: null, bbox: null, rle: false,
      source: "manual", score: null, hidden: false };
    S.instances.push(inst);
    S.selected = S.instances.length - 1;
  }
  if (!inst.keypoints || inst.keypoints.length !== 3 * K) inst.keypoints = new Array(3 * K).fill(0);
  const k = S.kpNext;
  if (vis === 0) { inst.keypoints[3 * k] = 0; inst.keypoints[3 * k + 1] = 0; inst.keypoints[3 * k + 2] = 0; }
  else { inst.keypoints[3 * k] = pt[0]; inst.keypoints[3 * k + 1] = pt[1]; inst.keypoints[3 * k + 2] = vis; }
  markEdited(inst);
  let next = k + 1;
  while (next < K && inst.keypoints[3 * next + 2] > 0) next++;
  S.kpNext = next;
  commit(S);
}

// ---------------------------------------------------------------- input

function hitInfo(e) {
  const t = e.composedPath ? e.composedPath()[0] : e.target;
  if (!t || !t.getAttribute) return {};
  const num = (k) => (t.hasAttribute(k) ? Number(t.getAttribute(k)) : null);
  return { i: num("data-i"), p: num("data-p"), v: num("data-v"), e: num("data-e"), k: num("data-k"),
    draft: num("data-draft"), corner: num("data-corner") };
}

function attachListeners(S) {
  const { root, svg } = S;
  attachAdjustListeners(S); // view_tools.js
  attachAssistListeners(S); // assist.js
  root.addEventListener("click", (e) => {
    const b = e.target.closest ? e.target.closest("button") : null;
    if (!b || !root.contains(b)) return;
    if (b.dataset.tool) setTool(S, b.dataset.tool);
    const cmd = b.dataset.cmd;
    if (cmd === "prev") navigate(S, -1);
    else if (cmd === "next") navigate(S, 1);
    else if (cmd === "undo") undo(S);
    else if (cmd === "redo") redo(S);
    else if (cmd === "fit") { fit(S); render(S); }
    else if (cmd === "part") togglePartMode(S); // mask.js
    else if (cmd === "zoomin") zoomAt(S, 1.25, S.vb.x + S.vb.w / 2, S.vb.y + S.vb.h / 2);
    else if (cmd === "zoomout") zoomAt(S, 0.8, S.vb.x + S.vb.w / 2, S.vb.y + S.vb.h / 2);
    else if (cmd === "done" || cmd === "needs_review") setStatus(S, cmd);
    else if (cmd === "donenext") doneAndNext(S); // view_tools.js
    else if (cmd === "keys") toggleKeysOverlay(S);
    else if (cmd === "adjust") toggleAdjustPanel(S);
    else if (cmd === "autolabel") autoLabel(S); // assist.js
    else if (cmd) shapeCmd(S, cmd); // shape_tools.js
    root.focus({ preventScroll: true });
  });
  S.classSel.addEventListener("change", () => { relabelSelected(S, S.classSel.value); root.focus({ preventScroll: true }); });

  S.list.addEventListener("click", (e) => {
    if (S.data.mode === "review") { reviewListClick(S, e); return; }
    const li = e.target.closest("li[data-i]");
    if (!li) return;
    const i = Number(li.dataset.i);
    const act = e.target.dataset ? e.target.dataset.act : null;
    if (act === "toggle") { S.instances[i].hidden = !S.instances[i].hidden; if (S.selected === i) S.selected = -1; rememberView(S); }
    else if (act === "lock") { toggleLock(S, i); return; } // shape_tools.js
    else if (act === "delete") { S.selected = i; deleteSelected(S); return; }
    else if (act === "topoly") { boxToPolygon(S, i); return; }
    else { S.selected = i; S.curClass = S.instances[i].category; S.classSel.value = S.curClass; if (S.tool === "keypoint") startKeypoints(S); }
    render(S);
  });
  S.list.addEventListener("mouseover", (e) => {
    const li = e.target.closest("li[data-i]");
    const i = li ? Number(li.dataset.i) : -1;
    if (i !== S.hover) { S.hover = i; render(S); }
  });
  S.list.addEventListener("mouseleave", () => { if (S.hover !== -1) { S.hover = -1; render(S); } });
  S.kppanel.addEventListener("click", (e) => {
    const li = e.target.closest("li[data-k]");
    if (!li) return;
    S.kpNext = Number(li.dataset.k);
    if (S.tool !== "keypoint") S.tool = "keypoint";
    render(S);
  });

  svg.addEventListener("contextmenu", (e) => {
    e.preventDefault();
    if (S.locked) return;
    const h = hitInfo(e);
    if (h.v != null) deleteVertex(S, h.i, h.p, h.v);
    else if (h.k != null) clearKeypoint(S, h.i, h.k);
  });

  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [x, y] = toImage(S, e);
    zoomAt(S, Math.exp(-e.deltaY * 0.0015), x, y);
  }, { passive: false });

  svg.addEventListener("mousedown", (e) => onMouseDown(S, e));
  svg.addEventListener("mousemove", (e) => {
    if (S.tool === "polygon" && S.draft && !S.drag) {
      S.mouse = clampPt(S, toImage(S, e));
      renderDraft(S, unitsPerPx(S));
    } else if (isMaskTool(S)) maskHover(S, e); // mask.js: the brush ring follows the mouse
  });
  svg.addEventListener("click", (e) => onClick(S, e));
}

function onMouseDown(S, e) {
  if (S.data.mode === "review") { reviewMouseDown(S, e); return; }
  S.root.focus({ preventScroll: true });
  S.notice = "";
  if (S.locked) return;
  const pt = toImage(S, e);
  if (e.button === 1 || (e.button === 0 && S.spaceDown)) {
    e.preventDefault();
    startDrag(S, e, { type: "pan", sx: e.clientX, sy: e.clientY, vb: { ...S.vb } });
    return;
  }
  if (e.button !== 0) return;
  if (isMaskTool(S)) { maskDown(S, e, pt); return; } // mask.js: brush and eraser strokes
  if (S.tool === "box") { boxDown(S, e, pt); return; } // box.js: drag a rectangle
  if (S.tool === "assist") { assistDown(S, e, pt); return; } // assist.js: drag a box (a click is a point)
  const h = hitInfo(e);
  if (h.k != null && S.tool !== "polygon") {
    startDrag(S, e, { type: "kp", i: h.i, k: h.k, before: JSON.stringify(S.instances) });
    return;
  }
  if (S.tool !== "select") return;
  if (h.corner != null) { startCornerDrag(S, e, h.i, h.corner); return; } // box.js
  if (h.v != null) {
    if (e.altKey) { deleteVertex(S, h.i, h.p, h.v); suppressNextClick(S, e); return; }
    startDrag(S, e, { type: "vertex", i: h.i, p: h.p, v: h.v, before: JSON.stringify(S.instances) });
  } else if (h.e != null) {
    const before = JSON.stringify(S.instances);
    const poly = S.instances[h.i].polygons[h.p];
    const at = 2 * (h.e + 1);
    const q = clampPt(S, pt);
    poly.splice(at, 0, q[0], q[1]);
    startDrag(S, e, { type: "vertex", i: h.i, p: h.p, v: h.e + 1, before, inserted: true });
    render(S);
  } else if (h.i != null) {
    S.selected = h.i;
    S.curClass = S.instances[h.i].category; S.classSel.value = S.curClass;
    startDrag(S, e, { type: "shape", i: h.i, start: pt, orig: JSON.stringify(S.instances[h.i]),
      before: JSON.stringify(S.instances) });
    render(S);
  } else {
    S.selected = -1;
    startDrag(S, e, { type: "pan", sx: e.clientX, sy: e.clientY, vb: { ...S.vb } });
    render(S);
  }
}

function startDrag(S, e, drag) {
  drag.moved = false;
  drag.x0 = e.clientX; drag.y0 = e.clientY;
  S.drag = drag;
  if (drag.type === "pan") S.root.setAttribute("data-panning", "1");
}

function onDragMove(S, e) {
  const d = S.drag;
  if (!d) return;
  if (d.type === "brush") { maskDragMove(S, e); return; } // mask.js
  if (!d.moved && Math.hypot(e.clientX - d.x0, e.clientY - d.y0) < 2) return;
  d.moved = true;
  if (d.type === "pan") {
    const u = unitsPerPx(S);
    S.vb = { ...d.vb, x: d.vb.x - (e.clientX - d.sx) * u, y: d.vb.y - (e.clientY - d.sy) * u };
    applyViewBox(S);
    return;
  }
  const pt = clampPt(S, toImage(S, e));
  if (boxDragMove(S, d, pt)) return; // box.js: a new rectangle
  if (assistDragMove(S, d, pt)) return; // assist.js: the prompt's box
  const inst = S.instances[d.i];
  if (!inst) return;
  if (d.type === "vertex") {
    const poly = inst.polygons[d.p];
    poly[2 * d.v] = pt[0]; poly[2 * d.v + 1] = pt[1];
  } else if (d.type === "kp") {
    inst.keypoints[3 * d.k] = pt[0]; inst.keypoints[3 * d.k + 1] = pt[1];
  } else if (d.type === "corner") {
    boxDragMove(S, d, pt);
  } else if (d.type === "shape") {
    const orig = JSON.parse(d.orig);
    let dx = pt[0] - d.start[0], dy = pt[1] - d.start[1];
    // keep the whole shape inside the image
    let minx = Infinity, miny = Infinity, maxx = -Infinity, maxy = -Infinity;
    const each = (fn) => {
      orig.polygons.forEach((p) => { for (let k = 0; k < p.length; k += 2) fn(p[k], p[k + 1]); });
      if (orig.keypoints) for (let k = 0; k < orig.keypoints.length; k += 3) if (orig.keypoints[k + 2]) fn(orig.keypoints[k], orig.keypoints[k + 1]);
      if (!orig.polygons.length && orig.bbox && !orig.rle) { fn(orig.bbox[0], orig.bbox[1]); fn(orig.bbox[0] + orig.bbox[2], orig.bbox[1] + orig.bbox[3]); }
    };
    each((x, y) => { minx = Math.min(minx, x); miny = Math.min(miny, y); maxx = Math.max(maxx, x); maxy = Math.max(maxy, y); });
    if (minx !== Infinity) {
      dx = Math.min(Math.max(dx, -minx), S.W - maxx);
      dy = Math.min(Math.max(dy, -miny), S.H - maxy);
    }
    inst.polygons = orig.polygons.map((p) => p.map((v, k) => v + (k % 2 ? dy : dx)));
    moveBox(inst, orig, dx, dy); // box.js
    if (orig.keypoints) inst.keypoints = orig.keypoints.map((v, k) => (k % 3 === 2 || !orig.keypoints[k - (k % 3) + 2] ? v : v + (k % 3 ? dy : dx)));
  }
  render(S);
}

function suppressNextClick(S, e) {
  // A click may or may not follow a drag (none after a middle-button one); if it does, it comes
  // right after the mouseup at the same point. A timer cannot tell: the browser runs queued input
  // before timers, so a quick next click would be eaten. Match the point and time instead.
  S.suppressClick = e.button === 0 ? { x: e.clientX, y: e.clientY, t: performance.now() } : null;
}

function isSuppressed(S, e) {
  const c = S.suppressClick;
  S.suppressClick = null;
  return !!c && c.x === e.clientX && c.y === e.clientY && performance.now() - c.t < 1000;
}

function onDragEnd(S, e) {
  const d = S.drag;
  if (!d) return;
  S.drag = null;
  S.root.removeAttribute("data-panning");
  if (d.type === "brush") { maskDragEnd(S, d); return; } // mask.js: the stroke becomes the mask, saved
  if (boxDragEnd(S, d, e)) return; // box.js: a new rectangle, saved
  if (assistDragEnd(S, d, e)) return; // assist.js: the box asks for a proposal
  if (d.type === "pan") { if (d.moved) suppressNextClick(S, e); render(S); return; }
  if (d.moved || d.inserted) {
    suppressNextClick(S, e);
    S.undo.push(d.before);
    S.redo = [];
    const inst = S.instances[d.i];
    if (inst) markEdited(inst);
    commit(S);
  } else if (d.type === "kp") {
    S.selected = d.i;
    render(S);
  }
}

function onClick(S, e) {
  if (isSuppressed(S, e)) return;
  if (S.data.mode === "review") { reviewClick(S, e); return; }
  if (S.locked || e.button !== 0 || S.spaceDown) return;
  const pt = clampPt(S, toImage(S, e));
  if (S.tool === "polygon") {
    if (!S.curClass) { render(S); return; }
    if (e.detail > 1) { closeDraft(S); return; } // second click of a double-click closes
    if (S.draft && S.draft.length >= 3) {
      const u = unitsPerPx(S);
      const f = S.draft[0];
      if (Math.hypot(f[0] - pt[0], f[1] - pt[1]) <= CLOSE_PX * u) { closeDraft(S); return; }
    }
    if (!S.draft) S.draft = [];
    S.draft.push(pt);
    S.mouse = pt;
    render(S);
  } else if (S.tool === "keypoint") {
    const h = hitInfo(e);
    if (h.k != null) return;
    placeKeypoint(S, pt, S.kpVis);
  } else if (S.tool === "assist") assistClick(S, e, pt); // assist.js: a point (Shift: background)
}

function deleteVertex(S, i, p, v) {
  const inst = S.instances[i];
  if (!inst) return;
  const poly = inst.polygons[p];
  if (poly.length <= 6) {
    S.notice = "A polygon needs at least 3 vertices: press Delete to remove the shape";
    renderHint(S);
    return;
  }
  snapshot(S);
  poly.splice(2 * v, 2);
  markEdited(inst);
  commit(S);
}

function clearKeypoint(S, i, k) {
  const inst = S.instances[i];
  if (!inst || !inst.keypoints) return;
  snapshot(S);
  inst.keypoints[3 * k] = 0; inst.keypoints[3 * k + 1] = 0; inst.keypoints[3 * k + 2] = 0;
  S.selected = i;
  S.kpNext = k;
  markEdited(inst);
  commit(S);
}

function isTyping(e) {
  const t = e.composedPath ? e.composedPath()[0] : e.target;
  if (!t) return false;
  const tag = (t.tagName || "").toUpperCase();
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || t.isContentEditable;
}

// A button, link or tab of the page outside the annotator keeps Space and Enter (pressing it).
const CONTROL_ROLES = ["button", "link", "tab", "checkbox", "radio", "switch", "menuitem", "option"];
function isOutsideControl(S, e) {
  const t = e.composedPath ? e.composedPath()[0] : e.target;
  if (!t || !t.tagName || S.root.contains(t)) return false;
  const tag = t.tagName.toUpperCase();
  return tag === "BUTTON" || tag === "A" || tag === "SUMMARY" || CONTROL_ROLES.includes(t.getAttribute("role"));
}

function onKeyDown(S, e) {
  if (!S.root.isConnected || isTyping(e) || S.pending) return; // keys wait for the next image's shapes
  const key = e.key;
  if ((key === " " || key === "Enter") && isOutsideControl(S, e)) return;
  if (S.data.mode === "review") { reviewKeyDown(S, e); return; }
  const ctrl = e.ctrlKey || e.metaKey;
  S.notice = "";
  let handled = true;
  if (key === " ") S.spaceDown = true;
  else if (key === "?") toggleKeysOverlay(S); // view_tools.js
  else if (key === "Escape" && keysOverlayOpen(S)) toggleKeysOverlay(S, false);
  else if (ctrl && key === "Enter") doneAndNext(S);
  else if (ctrl && (key === "z" || key === "Z")) { if (e.shiftKey) redo(S); else undo(S); }
  else if (ctrl && (key === "y" || key === "Y")) redo(S);
  else if (ctrl && shapeCtrlKey(S, e)) { /* shape_tools.js: C, V, Shift+V, D, ], [ */ }
  else if (ctrl) handled = false;
  else if (S.locked) handled = false;
  else if (assistKey(S, e)) { /* assist.js: Enter accepts the proposal, Esc drops the prompt */ }
  else if (key === "Escape") { S.draft = null; S.drag = null; render(S); }
  else if (key === "Enter") { if (!closeDraft(S)) handled = false; }
  else if (key === "Backspace" && S.draft) { S.draft.pop(); if (!S.draft.length) S.draft = null; render(S); }
  else if (key === "Delete" || key === "Backspace") { if (!refuseLocked(S)) deleteSelected(S); }
  else if (key === "a" || key === "A" || key === "ArrowLeft") navigate(S, -1);
  else if (key === "d" || key === "D" || key === "ArrowRight") navigate(S, 1);
  else if (key === "v" || key === "V") setTool(S, "select");
  else if (key === "p" || key === "P") setTool(S, "polygon");
  else if (key === "r" || key === "R") setTool(S, "box");
  else if (key === "k" || key === "K") setTool(S, "keypoint");
  else if (key === "b" || key === "B") setTool(S, "brush"); // mask.js: brush, eraser, size, part mode
  else if (key === "e" || key === "E") setTool(S, "eraser");
  else if (key === "m" || key === "M") setTool(S, "assist"); // assist.js
  else if (key === "i" || key === "I") autoLabel(S); // assist.js: the chosen run on this image
  else if (key === "[" || key === "]") resizeBrush(S, key === "]" ? 1 : -1);
  else if (key === "N" && e.shiftKey) togglePartMode(S); // mask.js: Shift+N part mode
  else if (key === "n") newShape(S); // view_tools.js: a new shape of the current class, last tool
  else if (key === "o" || key === "O") { S.kpVis = S.kpVis === 2 ? 1 : 2; render(S); }
  else if ((key === "x" || key === "X") && S.tool === "keypoint") placeKeypoint(S, [0, 0], 0);
  else if (key === "+" || key === "=") zoomAt(S, 1.25, S.vb.x + S.vb.w / 2, S.vb.y + S.vb.h / 2);
  else if (key === "-") zoomAt(S, 0.8, S.vb.x + S.vb.w / 2, S.vb.y + S.vb.h / 2);
  else if (key === "f" || key === "F" || key === "0") { fit(S); render(S); }
  else if (/^(Digit|Numpad)[1-9]$/.test(e.code) && !e.altKey) {
    // 1-9: the class of the next shape; Shift + 1-9: relabel the selected shape
    const c = S.categories[Number(e.code.slice(-1)) - 1];
    if (c && e.shiftKey) relabelSelected(S, c.name); else if (c) setClass(S, c.name);
  }
  else if (shapeKey(S, e)) { /* shape_tools.js: H, L, PageUp, PageDown */ }
  else handled = false;
  if (handled) { e.preventDefault(); e.stopPropagation(); }
}

// Focus goes back to the annotator once a page control (a filter, the image picker, a button) has
// done its job, so the next key draws instead of typing "v" into a dropdown's search.
function isPageControl(S, t) {
  if (!t || !t.closest || S.root.contains(t)) return false;
  return !!t.closest('[role="option"], [role="listbox"], button, [data-testid="stSelectbox"], [role="checkbox"], [role="radio"]');
}

// Only the control that was used (or a dropdown's input, which Streamlit focuses again after a
// rerun) gives the focus back: an element the user has moved to since keeps it.
function refocus(S, trigger) {
  if (!S.root.isConnected) return;
  const a = document.activeElement;
  if (!a || a === document.body || S.root.contains(a) || a.shadowRoot) return;
  if (a.getAttribute && a.getAttribute("aria-expanded") === "true") return; // a list still open
  const combobox = a.getAttribute && a.getAttribute("role") === "combobox";
  if (!combobox && a !== trigger) return;
  if (a.blur) a.blur();
  S.root.focus({ preventScroll: true });
}

// A rerun on a slow machine can give the focus back to the dropdown seconds later: until the user
// clicks or tabs somewhere, a focus the page takes back in that window is returned at once.
const REFOCUS_WINDOW_MS = 5000;
function refocusSoon(S, trigger) {
  // the dropdown closes, then Streamlit reruns and may give the focus back to it: try again after
  S.refocusArm = { trigger, until: Date.now() + REFOCUS_WINDOW_MS };
  for (const ms of [60, 300, 800]) setTimeout(() => refocus(S, trigger), ms);
}

function refocusIfArmed(S) {
  const arm = S.refocusArm;
  if (!arm || Date.now() > arm.until) return;
  setTimeout(() => refocus(S, arm.trigger), 0);
}

function hasDraft(S) { return !!(S.draft && S.draft.length) || S.drafts.size > 0; }

function attachWindowListeners(S) {
  const h = {
    click: (e) => {
      const t = e.composedPath ? e.composedPath()[0] : e.target;
      if (!isPageControl(S, t)) return;
      if (e.detail === 0 && t.closest("button")) return; // a button pressed with the keyboard keeps its focus
      refocusSoon(S, t.closest("button, [role=checkbox], [role=radio]"));
    },
    keyup2: (e) => { // Enter or Esc in a dropdown: it has closed
      const t = e.composedPath ? e.composedPath()[0] : e.target;
      const inSelect = t && t.closest && t.closest('[data-testid="stSelectbox"], [role="listbox"], [role="option"]');
      if ((e.key === "Enter" || e.key === "Escape") && inSelect) refocusSoon(S, null);
    },
    beforeunload: (e) => { if (hasDraft(S)) { e.preventDefault(); e.returnValue = ""; } },
    keydown: (e) => { if (e.key === "Tab") S.refocusArm = null; onKeyDown(S, e); },
    pointerdown: () => { S.refocusArm = null; }, // the user's own click ends the window (an option's click arms it after)
    focusin: () => refocusIfArmed(S),
    keyup: (e) => { if (e.key === " ") S.spaceDown = false; },
    mousemove: (e) => onDragMove(S, e),
    mouseup: (e) => onDragEnd(S, e),
    resize: () => { fitStageHeight(S); render(S); updateTiles(S); },
  };
  window.addEventListener("keydown", h.keydown, true);
  window.addEventListener("keyup", h.keyup, true);
  window.addEventListener("click", h.click, true);
  window.addEventListener("pointerdown", h.pointerdown, true);
  window.addEventListener("focusin", h.focusin, true);
  window.addEventListener("keyup", h.keyup2, true);
  window.addEventListener("beforeunload", h.beforeunload);
  window.addEventListener("mousemove", h.mousemove);
  window.addEventListener("mouseup", h.mouseup);
  window.addEventListener("resize", h.resize);
  S.handlers = h;
  S.windowListening = true;
}

function detachWindowListeners(S) {
  const h = S.handlers;
  if (!h) return;
  window.removeEventListener("keydown", h.keydown, true);
  window.removeEventListener("keyup", h.keyup, true);
  window.removeEventListener("click", h.click, true);
  window.removeEventListener("pointerdown", h.pointerdown, true);
  window.removeEventListener("focusin", h.focusin, true);
  window.removeEventListener("keyup", h.keyup2, true);
  window.removeEventListener("beforeunload", h.beforeunload);
  window.removeEventListener("mousemove", h.mousemove);
  window.removeEventListener("mouseup", h.mouseup);
  window.removeEventListener("resize", h.resize);
  S.handlers = null;
  S.windowListening = false;
}
