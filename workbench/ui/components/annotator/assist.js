// Assist tool (M): a box or clicks on the image -> a shape proposed by a tool Python runs
// (services/assist_ui.py): GrabCut, magic wand, intelligent scissors, SAM, or a trained run's mask.
// Part of the annotator module (see JS_PARTS): functions only, called from annotator.js.
//
// Drag = the box (a new box starts a new object: its clicks are dropped); click = a positive point,
// Shift-click (or Alt-click) a negative one. Every prompt change sends one "assist" request (its own
// trigger, not a save); the answer comes back in data.assist_answer, by request token, and is shown as
// a dashed proposal. Enter accepts it as an ordinary shape of the current class (a polygon, or a mask
// where it has holes), saved like a drawn one; Esc drops the prompt. "Auto label" (I) asks the chosen
// run for all its detections on the open image at the threshold: they arrive as pre-labels
// (source "predicted", with their scores), saved at once, edited like any shape.

function assistState(S) {
  if (!S.assist) {
    const q = (role) => S.root.querySelector(`[data-role="${role}"]`);
    S.assist = { box: null, points: [], proposal: null, boxDraft: null, token: null, seq: 0, busy: false,
      error: "", imageId: null, optionsSig: null, warmed: null,
      bar: q("assistbar"), method: q("assist-method"), tol: q("assist-tol"), simplify: q("assist-simplify"),
      maxv: q("assist-maxv"), run: q("assist-run"), thr: q("assist-thr") };
  }
  return S.assist;
}

function assistMethod(S) {
  const A = assistState(S);
  const opts = (S.data.assist_options || {}).methods || [];
  return opts.find((m) => m.value === A.method.value) || opts[0] || null;
}

// applyData: the options into the bar, a new image drops the prompt, the answer to our last request.
function assistSync(S, data) {
  const A = assistState(S);
  const opts = data.assist_options || null;
  A.bar.hidden = S.tool !== "assist" || data.mode === "review";
  if (opts) {
    const sig = JSON.stringify([opts.methods, opts.runs]);
    if (sig !== A.optionsSig) {
      A.optionsSig = sig;
      fillSelect(A.method, opts.methods.map((m) => [m.value, m.label]), A.method.value);
      fillSelect(A.run, opts.runs.map((r) => [String(r.id), r.label]), A.run.value);
      if (!A.simplify.value) A.simplify.value = String(opts.simplify);
      if (!A.maxv.value) A.maxv.value = String(opts.max_vertices);
      if (!A.thr.value) A.thr.value = String(opts.threshold);
    }
    S.root.querySelector('[data-cmd="autolabel"]').disabled = !opts.runs.length;
  }
  if (A.imageId !== S.imageId) {
    A.imageId = S.imageId;
    A.box = null; A.points = []; A.proposal = null; A.error = ""; A.busy = false; A.token = null;
    warmSam(S);
  }
  const a = data.assist_answer;
  if (!a || !A.token || a.req !== A.token) return;
  A.token = null;
  A.busy = false;
  if (a.image_id !== S.imageId) return;
  if (a.error) { A.error = a.error; A.proposal = null; S.notice = a.error; return; }
  if (a.kind === "auto") { addPrelabels(S, a.shapes || [], a.notice); return; }
  if (a.kind === "shape") { A.proposal = (a.shapes || [])[0] || null; A.error = ""; }
}

function fillSelect(sel, pairs, keep) {
  sel.replaceChildren();
  for (const [value, label] of pairs) {
    const o = document.createElement("option");
    o.value = value; o.textContent = label; // textContent: run names are user text
    sel.appendChild(o);
  }
  if (pairs.some(([v]) => v === keep)) sel.value = keep;
}

function numberOf(input) {
  const v = input.value.trim();
  return v === "" ? null : Number(v);
}

function sendAssist(S, body) {
  const A = assistState(S);
  if (S.imageId == null || !S.setTriggerValue) return;
  A.seq += 1;
  A.token = `${S.uidBase}-a${A.seq}`;
  A.busy = body.kind !== "warm";
  A.error = "";
  const payload = Object.assign({ req: A.token, image_id: S.imageId, simplify: numberOf(A.simplify),
    max_vertices: numberOf(A.maxv) }, body);
  if (window.__wbAssist) window.__wbAssist.push(payload); // tests: what each request carried
  S.setTriggerValue("assist", payload);
}

// Ask Python to compute the SAM embeddings of this image and the next ones in the background.
function warmSam(S) {
  const A = assistState(S);
  const m = assistMethod(S);
  if (S.tool !== "assist" || !m || !m.value.startsWith("sam:") || m.missing || S.imageId == null) return;
  const key = `${m.value}|${S.imageId}`;
  if (A.warmed === key || A.token) return; // an answer is awaited: the warm-up would replace its request
  A.warmed = key;
  sendAssist(S, { kind: "warm", method: m.value });
  A.token = null; A.busy = false;
}

// Whether the prompt is enough for the method; else the hint says what it needs.
function promptNeeds(S, m) {
  const A = assistState(S);
  const pos = A.points.filter((p) => p[2]).length;
  if (m.missing) return m.missing;
  if (m.needs === "box" && !A.box) return "Drag a box around the object";
  if (m.needs === "point" && !pos) return "Click on the object";
  if (m.needs === "points3" && A.points.length < 3) return `Click along the outline (${A.points.length}/3 or more)`;
  if (m.needs === "box_or_point" && !A.box && !pos) return "Drag a box around the object (or click on it)";
  if (m.needs === "any" && !A.box && !A.points.length) return "Drag a box or click on the object";
  return null;
}

function requestProposal(S) {
  const A = assistState(S);
  const m = assistMethod(S);
  if (!m) return;
  const need = promptNeeds(S, m);
  if (need) { A.proposal = null; if (m.missing) { A.error = m.missing; S.notice = m.missing; } render(S); return; }
  const body = { kind: "shape", method: m.value, box: A.box ? A.box.map((v) => Math.round(v * 100) / 100) : null,
    points: A.points.map((p) => [Math.round(p[0] * 100) / 100, Math.round(p[1] * 100) / 100, p[2]]) };
  if (m.value === "wand") body.tolerance = numberOf(A.tol);
  sendAssist(S, body);
  render(S);
}

function assistDown(S, e, pt) {
  if (!S.curClass) { render(S); return; }
  startDrag(S, e, { type: "assistbox", start: clampPt(S, pt) });
}

// true when the drag is the assist tool's box
function assistDragMove(S, d, pt) {
  if (d.type !== "assistbox") return false;
  assistState(S).boxDraft = boxOf(d.start, pt); // box.js
  renderDraft(S, unitsPerPx(S));
  return true;
}

function assistDragEnd(S, d, e) {
  if (d.type !== "assistbox") return false;
  const A = assistState(S);
  const b = A.boxDraft;
  A.boxDraft = null;
  if (!d.moved || !b || b[2] < BOX_MIN_PX || b[3] < BOX_MIN_PX) { render(S); return true; } // a click: onClick
  suppressNextClick(S, e);
  A.box = b;
  A.points = []; // a new box is a new object
  requestProposal(S);
  return true;
}

function assistClick(S, e, pt) {
  if (!S.curClass) { render(S); return; }
  const A = assistState(S);
  A.points.push([pt[0], pt[1], !(e.shiftKey || e.altKey)]);
  requestProposal(S);
}

function acceptProposal(S) {
  const A = assistState(S);
  const p = A.proposal;
  if (!p || !S.curClass) return false;
  snapshot(S);
  const inst = fromPython(S, Object.assign({}, p, { category: S.curClass }));
  if (inst.rle) { MASK_TOUCHED.add(inst.key); inst.mask = Object.assign({}, inst.mask, { rev: newMaskRev() }); } // mask.js
  S.instances.push(inst);
  S.selected = -1; // as a closed polygon: the next class key is for the next shape
  A.proposal = null; A.box = null; A.points = [];
  commit(S);
  return true;
}

function clearAssist(S) {
  const A = assistState(S);
  const had = !!(A.box || A.points.length || A.proposal);
  A.box = null; A.points = []; A.proposal = null; A.error = ""; A.boxDraft = null;
  return had;
}

function autoLabel(S) {
  const A = assistState(S);
  const opts = S.data.assist_options || {};
  if (!(opts.runs || []).length) { S.notice = "Auto label needs a run with a model: train one first"; render(S); return; }
  if (!A.run.value) A.run.value = String(opts.runs[0].id);
  sendAssist(S, { kind: "auto", run: Number(A.run.value), threshold: numberOf(A.thr) });
  S.notice = "Auto-labelling this image…";
  render(S);
}

function addPrelabels(S, shapes, notice) {
  S.notice = notice || "";
  if (!shapes.length) { render(S); return; }
  snapshot(S);
  for (const p of shapes) {
    if (!S.catByName.has(p.category)) continue;
    const inst = fromPython(S, p);
    if (inst.rle) { MASK_TOUCHED.add(inst.key); inst.mask = Object.assign({}, inst.mask, { rev: newMaskRev() }); }
    S.instances.push(inst);
  }
  S.selected = -1;
  commit(S);
}

function assistKey(S, e) {
  // true when the key was the assist tool's (Enter accepts, Esc drops the prompt)
  if (S.tool !== "assist") return false;
  if (e.key === "Enter") return acceptProposal(S);
  if (e.key === "Escape") { const had = clearAssist(S); render(S); return had; }
  return false;
}

function renderAssistDraft(S, g, u) {
  if (S.tool !== "assist" || !S.assist) return;
  const A = S.assist;
  const b = A.boxDraft || A.box;
  if (b) el("rect", { x: b[0], y: b[1], width: b[2], height: b[3], class: "wb-assistbox" }, g);
  const p = A.proposal;
  if (p) {
    const color = colorOf(S, S.curClass);
    for (const poly of p.polygons || []) {
      const pts = [];
      for (let k = 0; k < poly.length; k += 2) pts.push(`${poly[k]},${poly[k + 1]}`);
      el("polygon", { points: pts.join(" "), stroke: color, fill: color, class: "wb-proposal" }, g);
    }
    if (p.rle && p.bbox) {
      const [x, y, w, h] = p.bbox;
      el("rect", { x, y, width: w, height: h, stroke: color, fill: color, class: "wb-proposal" }, g);
    }
  }
  A.points.forEach(([x, y, pos]) => {
    el("circle", { cx: x, cy: y, r: 5 * u, class: pos ? "wb-assistpt wb-pos" : "wb-assistpt wb-neg" }, g);
  });
  S.root.setAttribute("data-assist", A.busy ? "busy" : p ? "proposal" : "idle");
}

function assistHint(S) {
  const A = assistState(S);
  const m = assistMethod(S);
  if (!m) return "No assist method";
  if (A.busy) return `${m.label}: working…`;
  if (A.error) return A.error;
  if (A.proposal) {
    const n = (A.proposal.polygons || []).reduce((a, q) => a + q.length / 2, 0);
    const what = A.proposal.rle ? "a mask (it has holes)" : `${n} points`;
    return `Proposal: ${what}. Enter accepts as ${S.curClass}; click to refine (Shift-click: not this); Esc drops`;
  }
  return `${promptNeeds(S, m) || "Enter accepts"} · Shift-click marks background · Esc drops`;
}

function attachAssistListeners(S) {
  const A = assistState(S);
  A.method.addEventListener("change", () => {
    A.proposal = null; A.error = "";
    const m = assistMethod(S);
    if (m && m.missing) { A.error = m.missing; S.notice = m.missing; }
    else if (A.box || A.points.length) requestProposal(S);
    warmSam(S);
    render(S);
    S.root.focus({ preventScroll: true });
  });
  for (const input of [A.tol, A.simplify, A.maxv]) {
    input.addEventListener("change", () => {
      if (A.proposal || A.box || A.points.length) requestProposal(S);
      S.root.focus({ preventScroll: true });
    });
  }
}

function syncAssistBar(S) {
  const A = assistState(S);
  A.bar.hidden = S.tool !== "assist" || S.data.mode === "review";
  const m = A.bar.hidden ? null : assistMethod(S);
  A.tol.parentElement.hidden = !m || m.value !== "wand";
}

function assistToolChanged(S, from, to) {
  if (from === "assist" && to !== "assist") clearAssist(S);
  if (to === "assist" && from !== "assist") setTimeout(() => warmSam(S), 0); // after S.tool is set
}
