// Review mode of the annotator (data.mode === "review"): a run's predictions over the image's ground
// truth on the same zoomable canvas. Nothing is edited here: the ground truth is drawn faintly and
// takes no clicks; a click on a pending prediction selects it and opens a small Accept / Reject box
// (keys A and R do the same), and the side list has a row per prediction with the same two buttons.
// Hovering a row highlights its shape. Zoom and pan are the core's (wheel, +/-, F, drag).
//
// Python sends the shapes on every rerun (data.instances: role "truth" or "prediction"); they are
// taken each time (reviewSync) so that a decision shows at once, while the view (zoom, pan) stays:
// it is reset only when data.epoch changes (another image or run). A decision goes to Python as one
// action {kind: "accept" | "reject", prediction_id, image_id, epoch, seq}.

function reviewSync(S, data) {
  const pidOf = (i) => (S.instances[i] ? S.instances[i].prediction_id : null);
  const selPid = pidOf(S.selected);
  const hovPid = pidOf(S.hover);
  S.instances = (data.instances || []).map((inst) => ({
    key: newUid(S),
    id: inst.id ?? null,
    role: inst.role === "prediction" ? "prediction" : "truth",
    prediction_id: inst.prediction_id ?? null,
    status: inst.status || null,
    verdict: inst.verdict || null,
    iou: inst.iou ?? null,
    missed: !!inst.missed,
    category: inst.category,
    polygons: (inst.polygons || []).map((p) => p.slice()),
    keypoints: inst.keypoints ? inst.keypoints.slice() : null,
    bbox: inst.bbox || null,
    rle: false,
    source: inst.source || "manual",
    score: inst.score ?? null,
    hidden: false,
  }));
  const find = (pid) => (pid == null ? -1 : S.instances.findIndex((x) => x.prediction_id === pid));
  S.selected = find(selPid);
  if (S.selected >= 0 && S.instances[S.selected].status !== "pending") S.selected = -1;
  S.hover = find(hovPid);
  S.draft = null;
  S.tool = "select";
}

function reviewShown(inst) {
  // accepted predictions are ground truth now (drawn as such); rejected ones are gone
  return inst.role === "truth" || inst.status === "pending";
}

function renderReview(S) {
  S.root.setAttribute("data-mode", "review");
  const u = unitsPerPx(S);
  const g = S.shapesG;
  g.replaceChildren();
  S.draftG.replaceChildren();
  S.kppanel.replaceChildren();
  if (!S.pending) {
    const order = S.instances.map((_, i) => i).filter((i) => reviewShown(S.instances[i]));
    // truth under predictions; the selected and hovered prediction on top
    const rank = (i) => (S.instances[i].role === "truth" ? 0 : 1) + (i === S.selected ? 1 : 0) + (i === S.hover ? 2 : 0);
    order.sort((a, b) => rank(a) - rank(b) || a - b);
    for (const i of order) reviewShape(S, S.instances[i], i, u, g);
  }
  reviewList(S);
  reviewPopup(S);
  S.hint.textContent = S.locked ? "Loading…" : S.notice
    || "Click a prediction to accept (A) or reject (R) it · wheel or +/- zoom, F fit, drag to pan";
}

function reviewShape(S, inst, i, u, g) {
  const color = inst.missed ? "#e53e3e" : colorOf(S, inst.category);
  const pred = inst.role === "prediction";
  const cls = (pred ? "wb-shape wb-rv-pred" : "wb-rv-truth") + (inst.missed ? " wb-rv-missed" : "")
    + (i === S.selected ? " wb-sel" : "") + (i === S.hover ? " wb-hover" : "");
  const attrs = (extra) => Object.assign({ fill: color, stroke: color, class: cls }, pred
    ? { "data-i": i, "data-prediction-id": inst.prediction_id } : {}, extra);
  inst.polygons.forEach((poly) => {
    const pts = [];
    for (let k = 0; k < poly.length; k += 2) pts.push(`${poly[k]},${poly[k + 1]}`);
    el("polygon", attrs({ points: pts.join(" ") }), g);
  });
  if (!inst.polygons.length && inst.bbox) {
    const [x, y, w, h] = inst.bbox;
    el("rect", attrs({ x, y, width: w, height: h }), g);
  }
  const kp = inst.keypoints;
  if (kp) {
    for (let k = 0; k < kp.length / 3; k++) {
      if (kp[3 * k + 2] > 0) el("circle", { cx: kp[3 * k], cy: kp[3 * k + 1], r: 3 * u, fill: color, class: "wb-rv-kpt" }, g);
    }
  }
  if (pred) {
    const at = inst.bbox ? [inst.bbox[0], inst.bbox[1]] : inst.polygons.length ? [inst.polygons[0][0], inst.polygons[0][1]] : null;
    if (at) {
      const t = el("text", { x: at[0], y: at[1] - 4 * u, class: "wb-label", "font-size": 12 * u }, g);
      t.textContent = `${inst.category} ${inst.score != null ? inst.score.toFixed(2) : ""}`;
    }
  }
}

function reviewVerdict(inst) {
  if (!inst.verdict) return "";
  const iou = inst.iou != null ? ` (IoU ${inst.iou.toFixed(2)})` : "";
  return inst.verdict.replace(/_/g, " ") + iou;
}

function reviewList(S) {
  const ul = S.list;
  ul.replaceChildren();
  if (S.pending) return;
  const preds = S.instances.map((inst, i) => [inst, i]).filter(([inst]) => inst.role === "prediction");
  const truth = S.instances.filter((inst) => inst.role === "truth");
  const missed = truth.filter((inst) => inst.missed).length;
  const title = document.createElement("li");
  title.className = "wb-rv-title";
  title.textContent = "Predictions";
  ul.appendChild(title);
  const head = document.createElement("li");
  head.className = "wb-empty";
  head.textContent = `${truth.length} ground truth shape${truth.length === 1 ? "" : "s"}`
    + (missed ? `, ${missed} missed (red)` : "") + (preds.length ? "" : " · no predictions at this score");
  ul.appendChild(head);
  for (const [inst, i] of preds) {
    const li = document.createElement("li");
    li.dataset.i = String(i);
    li.dataset.predictionId = String(inst.prediction_id);
    li.dataset.status = inst.status || "";
    li.className = (i === S.selected ? "wb-selected " : "") + (i === S.hover ? "wb-hover " : "")
      + (inst.status === "pending" ? "" : "wb-rv-decided");
    const sw = document.createElement("span");
    sw.className = "wb-swatch";
    sw.style.background = colorOf(S, inst.category);
    const name = document.createElement("span");
    name.className = "wb-name";
    name.textContent = inst.category;
    name.title = [inst.category, reviewVerdict(inst)].filter(Boolean).join(" · ");
    const score = document.createElement("span");
    score.className = "wb-rv-score";
    score.textContent = inst.score != null ? inst.score.toFixed(2) : "";
    const tag = document.createElement("span");
    tag.className = "wb-tag";
    const status = inst.status === "accepting" || inst.status === "rejecting" ? "saving…" : inst.status;
    tag.textContent = [inst.verdict ? inst.verdict.replace(/_/g, " ") : "", status].filter(Boolean).join(" · ");
    tag.title = [reviewVerdict(inst), status].filter(Boolean).join(" · ");
    li.append(sw, name, score, tag);
    if (inst.status === "pending") li.append(...reviewButtons());
    ul.appendChild(li);
  }
  if (S.selected >= 0) {
    const row = ul.querySelector(`li[data-i="${S.selected}"]`);
    if (row && row.scrollIntoView) row.scrollIntoView({ block: "nearest" });
  }
}

function reviewButtons() {
  return [["accept", "Accept", "Accept as an annotation (A)"], ["reject", "Reject", "Reject (R)"]].map(([act, text, title]) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = `wb-mini wb-rv-${act}`;
    b.dataset.act = act;
    b.title = title;
    b.textContent = text;
    return b;
  });
}

function reviewPopup(S) {
  // the Accept / Reject box beside the selected prediction, in page pixels over the stage
  let pop = S.reviewPop;
  if (!pop) {
    pop = document.createElement("div");
    pop.className = "wb-rv-pop";
    pop.dataset.testid = "wb-review-popup";
    pop.addEventListener("mousedown", (e) => e.stopPropagation());
    pop.addEventListener("click", (e) => {
      const act = e.target.dataset ? e.target.dataset.act : null;
      if (act) reviewDecide(S, act, S.selected);
    });
    S.stage.appendChild(pop);
    S.reviewPop = pop;
  }
  const inst = S.instances[S.selected];
  const m = S.svg.getScreenCTM();
  if (!inst || inst.role !== "prediction" || inst.status !== "pending" || !m || S.pending) {
    pop.hidden = true;
    return;
  }
  const [x, y, w] = inst.bbox || [inst.polygons[0][0], inst.polygons[0][1], 0];
  const pt = S.svg.createSVGPoint();
  pt.x = x + w; pt.y = y;
  const at = pt.matrixTransform(m);
  const r = S.stage.getBoundingClientRect();
  const label = document.createElement("span");
  label.textContent = `${inst.category} ${inst.score != null ? inst.score.toFixed(2) : ""}`;
  pop.replaceChildren(label, ...reviewButtons());
  pop.hidden = false;
  const left = Math.min(Math.max(at.x - r.left + 6, 4), Math.max(r.width - pop.offsetWidth - 4, 4));
  const top = Math.min(Math.max(at.y - r.top - pop.offsetHeight - 4, 4), Math.max(r.height - pop.offsetHeight - 4, 4));
  pop.style.left = `${left}px`;
  pop.style.top = `${top}px`;
}

function reviewDecide(S, kind, i) {
  const inst = S.instances[i];
  if (!inst || inst.role !== "prediction" || inst.status !== "pending" || S.imageId == null) return;
  inst.status = kind === "accept" ? "accepting" : "rejecting"; // until Python's answer replaces it
  if (S.selected === i) S.selected = -1;
  S.reviewSeq = (S.reviewSeq || 0) + 1;
  S.setTriggerValue("action", { kind, prediction_id: inst.prediction_id, image_id: S.imageId,
    epoch: S.epoch, seq: S.reviewSeq });
  render(S);
}

function reviewMouseDown(S, e) {
  // A press selects the pending prediction under it (or nothing) and may start a pan, as the core
  // selects on press: the redraw replaces the pressed element, so no click names it afterwards.
  S.root.focus({ preventScroll: true });
  S.notice = "";
  if (S.locked || (e.button !== 0 && e.button !== 1)) return;
  if (e.button === 1) e.preventDefault();
  else {
    const h = hitInfo(e);
    const inst = h.i != null ? S.instances[h.i] : null;
    S.selected = inst && inst.role === "prediction" && inst.status === "pending" ? h.i : -1;
  }
  startDrag(S, e, { type: "pan", sx: e.clientX, sy: e.clientY, vb: { ...S.vb } });
  render(S);
}

function reviewClick() {
  // review mode draws nothing on a click (the press already selected): the core's click tools stay off
}

function reviewListClick(S, e) {
  const li = e.target.closest("li[data-i]");
  if (!li) return;
  const i = Number(li.dataset.i);
  const act = e.target.dataset ? e.target.dataset.act : null;
  if (act === "accept" || act === "reject") { reviewDecide(S, act, i); return; }
  const inst = S.instances[i];
  S.selected = inst && inst.status === "pending" ? i : -1;
  render(S);
}

function reviewKeyDown(S, e) {
  // the keys of review mode; the editing keys of the core do nothing here
  const key = e.key;
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  let handled = true;
  if (key === "+" || key === "=") zoomAt(S, 1.25, S.vb.x + S.vb.w / 2, S.vb.y + S.vb.h / 2);
  else if (key === "-") zoomAt(S, 0.8, S.vb.x + S.vb.w / 2, S.vb.y + S.vb.h / 2);
  else if (key === "f" || key === "F" || key === "0") { fit(S); render(S); }
  else if (key === "Escape" && S.selected >= 0) { S.selected = -1; render(S); }
  else if ((key === "a" || key === "A") && S.selected >= 0) reviewDecide(S, "accept", S.selected);
  else if ((key === "r" || key === "R") && S.selected >= 0) reviewDecide(S, "reject", S.selected);
  else handled = false;
  if (handled) { e.preventDefault(); e.stopPropagation(); }
}
