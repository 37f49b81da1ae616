// Working-speed helpers: N (a new shape of the current class with the last drawing tool), "Done and
// next", the "?" overlay of every shortcut, and display-only image adjustments (brightness, contrast,
// gamma: an SVG filter on the image and its tiles; nothing is saved or sent to Python).
// Part of the annotator module (see JS_PARTS): functions only, called from annotator.js.

const DRAW_TOOLS = ["polygon", "box", "keypoint", "brush"];

function rememberTool(S, tool) {
  if (DRAW_TOOLS.includes(tool)) S.lastDrawTool = tool;
}

function newShape(S) {
  S.selected = -1;
  S.draft = null;
  const tool = S.lastDrawTool || "polygon";
  setTool(S, tool);
  S.notice = S.curClass ? `New ${S.curClass}: ${tool === "box" ? "drag a box" : tool === "keypoint" ? "place its keypoints" : tool === "brush" ? "paint it" : "click its vertices"}` : "";
  render(S);
}

function doneAndNext(S) {
  if (S.locked || S.imageId == null) return;
  const img = S.data.image;
  if (!img || img.index + 1 >= img.count) { setStatus(S, "done"); return; } // the last image: done only
  navigate(S, 1, "done");
}

function toggleKeysOverlay(S, show) {
  const o = S.root.querySelector('[data-role="keys"]');
  if (!o) return;
  const on = show === undefined ? o.hidden : show;
  o.hidden = !on;
}

function keysOverlayOpen(S) {
  const o = S.root.querySelector('[data-role="keys"]');
  return !!o && !o.hidden;
}

// ---------------------------------------------------------------- image adjustments

function adjustState(S) {
  if (!S.adjust) S.adjust = { brightness: 0, contrast: 1, gamma: 1 };
  return S.adjust;
}

function attachAdjustListeners(S) {
  const panel = S.root.querySelector('[data-role="adjust"]');
  if (!panel) return;
  panel.addEventListener("input", (e) => {
    const t = e.target;
    if (!t || !t.dataset || !t.dataset.adjust) return;
    const a = adjustState(S);
    a[t.dataset.adjust] = Number(t.value);
    applyAdjust(S);
  });
  panel.addEventListener("click", (e) => {
    if (e.target && e.target.dataset && e.target.dataset.act === "adjust-reset") {
      S.adjust = { brightness: 0, contrast: 1, gamma: 1 };
      for (const inp of panel.querySelectorAll("input[data-adjust]")) inp.value = String(S.adjust[inp.dataset.adjust]);
      applyAdjust(S);
    }
  });
}

function toggleAdjustPanel(S) {
  const panel = S.root.querySelector('[data-role="adjust"]');
  if (panel) panel.hidden = !panel.hidden;
}

// brightness b in [-1, 1] adds to every channel; contrast c scales around mid-grey; gamma g > 1 brightens
// the mid-tones (out = in^(1/g)); all three are one SVG filter whose id is unique to this annotator
function applyAdjust(S) {
  const a = adjustState(S);
  const neutral = a.brightness === 0 && a.contrast === 1 && a.gamma === 1;
  const id = `wb-adjust-${S.uidBase}`;
  let f = S.svg.querySelector(`#${id}`);
  if (!f) {
    let defs = S.svg.querySelector("defs");
    if (!defs) { defs = document.createElementNS(SVGNS, "defs"); S.svg.insertBefore(defs, S.svg.firstChild); }
    f = document.createElementNS(SVGNS, "filter");
    f.setAttribute("id", id);
    f.setAttribute("color-interpolation-filters", "sRGB");
    const gamma = el("feComponentTransfer", { result: "g" }, f);
    const lin = el("feComponentTransfer", { in: "g" }, f);
    for (const ch of ["R", "G", "B"]) {
      el(`feFunc${ch}`, { type: "gamma", amplitude: 1, exponent: 1, offset: 0, "data-part": "gamma" }, gamma);
      el(`feFunc${ch}`, { type: "linear", slope: 1, intercept: 0, "data-part": "linear" }, lin);
    }
    defs.appendChild(f);
  }
  for (const fn of f.querySelectorAll('[data-part="gamma"]')) fn.setAttribute("exponent", String(1 / a.gamma));
  for (const fn of f.querySelectorAll('[data-part="linear"]')) {
    fn.setAttribute("slope", String(a.contrast));
    fn.setAttribute("intercept", String(0.5 - 0.5 * a.contrast + a.brightness));
  }
  const targets = [S.img, S.svg.querySelector('[data-role="tiles"]')].filter(Boolean);
  for (const t of targets) {
    if (neutral) t.removeAttribute("filter"); else t.setAttribute("filter", `url(#${id})`);
  }
  S.root.setAttribute("data-adjusted", neutral ? "" : "1");
}
