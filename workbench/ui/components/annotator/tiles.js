// Native pixels past the display copy's scale. The display copy (longest side 2048) is drawn at the
// natural size; once the screen shows more device pixels per natural pixel than it has, the tiles of
// the original that are in view are laid over it, each an <image> at its natural box, drawn with
// `image-rendering: pixelated` so 1:1 and beyond shows the original's pixels crisp.
//
// Fast path: `data.image.tiles.direct` names the UI process's tile server (tile_server.py), and the
// tiles in view are fetched from it at once, no rerun between the zoom and the pixels. When one of
// those fails (the server cannot be reached from here), the tab falls back for good to asking
// Python, which registers tiles only when asked (the "tiles" event: a registration reads the file
// into Streamlit's memory): updateTiles asks for the visible ones it has no URL for, then places
// them when `data.image.tiles.urls` brings them. Called after every view change and data update.
// data-native-image on the root: the image's id once every tile in view is loaded and painted.

const TILE_ASK_MS = 80; // ask once the view has rested this long (a pan or a wheel zoom asks once)
const TILE_REASK_MS = 3000; // an ask with no answer (a dropped rerun) is repeated after this long
const TILE_PRELOAD_MS = 400; // an image shown this long gets the tiles of its 1:1 view preloaded

function tileState(S) {
  if (!S.tiles) {
    S.tiles = { key: null, shown: new Map(), asked: new Map(), failed: new Set(), timer: null,
      noDirect: false, pre: [], preTimer: null, g: S.root.querySelector('[data-role="tiles"]') };
    // the 1:1 button: one screen pixel per natural pixel, about the view's centre
    S.root.addEventListener("click", (e) => {
      const b = e.target.closest ? e.target.closest('[data-cmd="actual"]') : null;
      if (b && S.root.contains(b)) zoomActualPixels(S);
    });
  }
  return S.tiles;
}

function zoomActualPixels(S) {
  const r = S.svg.getBoundingClientRect();
  if (!r.width || !r.height) return;
  const cx = S.vb.x + S.vb.w / 2, cy = S.vb.y + S.vb.h / 2;
  // the viewBox has the stage's aspect ratio (no letterbox) and a whole-pixel origin
  S.vb = { x: Math.round(cx - r.width / 2), y: Math.round(cy - r.height / 2), w: r.width, h: r.height };
  applyViewBox(S);
  render(S);
}

function clearTiles(T) {
  for (const e of T.shown.values()) e.remove();
  T.shown.clear();
}

function visibleTiles(S, info, u = unitsPerPx(S)) {
  // the SVG fits the viewBox inside the stage (xMidYMid meet): the region in view is the stage's
  // size in natural units (u per CSS pixel) about the viewBox's centre, clipped to the image
  const r = S.svg.getBoundingClientRect();
  const cx = S.vb.x + S.vb.w / 2, cy = S.vb.y + S.vb.h / 2;
  const x0 = Math.max(0, cx - (r.width * u) / 2), x1 = Math.min(S.W, cx + (r.width * u) / 2);
  const y0 = Math.max(0, cy - (r.height * u) / 2), y1 = Math.min(S.H, cy + (r.height * u) / 2);
  const out = [];
  if (x1 <= x0 || y1 <= y0) return out;
  const t = info.side;
  const c1 = Math.min(info.cols - 1, Math.floor((x1 - 1e-6) / t));
  const r1 = Math.min(info.rows - 1, Math.floor((y1 - 1e-6) / t));
  for (let row = Math.floor(y0 / t); row <= r1; row++) {
    for (let col = Math.floor(x0 / t); col <= c1; col++) out.push(row * info.cols + col);
  }
  return out;
}

function directTileUrl(d, idx) {
  // a wildcard bind (host null) is reached under the name the page itself was loaded from
  return `http://${d.host || window.location.hostname}:${d.port}${d.path}${idx}${d.suffix}`;
}

function preloadOneToOne(S, T, key, info) {
  // the user has stayed on this image: fetch, at low priority, the tiles a 1:1 zoom from here
  // would show, so that the 1:1 button finds them in the browser's memory (held in T.pre)
  if (T.key !== key || T.noDirect || !S.svg.getBoundingClientRect().width) return;
  for (const idx of visibleTiles(S, info, 1 / (window.devicePixelRatio || 1))) {
    const im = new Image();
    im.fetchPriority = "low";
    im.src = directTileUrl(info.direct, idx);
    T.pre.push(im);
  }
}

function updateTiles(S) {
  const T = tileState(S);
  const img = S.data && S.data.image;
  const info = img && img.tiles;
  const key = info && !S.pending && img.id === S.imageId ? `${S.imageId}:${S.epoch}` : null;
  if (key !== T.key) {
    clearTiles(T); T.asked.clear(); T.failed.clear(); T.key = key;
    S.root.removeAttribute("data-native-image");
    clearTimeout(T.preTimer); T.pre = [];
    if (key && info.direct && !T.noDirect) T.preTimer = setTimeout(() => preloadOneToOne(S, T, key, info), TILE_PRELOAD_MS);
  }
  if (!key || !T.g) return;
  const r = S.svg.getBoundingClientRect();
  if (!r.width || !r.height) return;
  const devicePxPerNatural = (window.devicePixelRatio || 1) / unitsPerPx(S);
  const wanted = devicePxPerNatural > info.display_scale * 1.05 ? visibleTiles(S, info) : [];
  const direct = info.direct && !T.noDirect ? info.direct : null;
  const urls = {};
  for (const idx of wanted) {
    const u = direct ? directTileUrl(direct, idx) : (info.urls || {})[idx];
    if (u) urls[idx] = u;
  }
  const want = new Set(wanted);
  for (const [idx, e] of T.shown) {
    if (!want.has(idx) || e.getAttribute("href") !== urls[idx]) { e.remove(); T.shown.delete(idx); }
  }
  const missing = [];
  for (const idx of wanted) {
    const url = urls[idx];
    if (!url) { missing.push(idx); continue; }
    if (T.failed.has(url)) continue;
    T.asked.delete(idx);
    if (T.shown.has(idx)) continue;
    const row = Math.floor(idx / info.cols), col = idx % info.cols;
    const x = col * info.side, y = row * info.side;
    const e = el("image", { x, y, width: Math.min(info.side, S.W - x), height: Math.min(info.side, S.H - y),
      preserveAspectRatio: "none", "data-tile": idx, style: "image-rendering: pixelated" }, null);
    e.addEventListener("load", () => { e.setAttribute("data-loaded", "1"); markNative(S, T, key); });
    // a tile that fails to load is dropped (the display copy shows there) and not placed again; a
    // direct one sends this tab to the Streamlit path instead
    e.addEventListener("error", () => {
      e.remove(); if (T.shown.get(idx) === e) T.shown.delete(idx); T.failed.add(url);
      if (direct && !T.noDirect) { T.noDirect = true; updateTiles(S); }
    });
    e.setAttribute("href", url);
    T.g.appendChild(e);
    T.shown.set(idx, e);
    perfMark("tile-placed");
  }
  markNative(S, T, key, wanted);
  askTiles(S, T, key, missing);
}

function markNative(S, T, key, wanted) {
  if (wanted) T.wanted = wanted;
  const all = T.wanted || [];
  const ready = all.length > 0 && all.every((idx) => {
    const e = T.shown.get(idx);
    return e && e.getAttribute("data-loaded") === "1";
  });
  if (!ready) { S.root.removeAttribute("data-native-image"); return; }
  const id = String(S.imageId);
  if (S.root.getAttribute("data-native-image") === id) return;
  requestAnimationFrame(() => {
    if (T.key !== key) return;
    perfMark("native");
    S.root.setAttribute("data-native-image", id);
  });
}

function askTiles(S, T, key, missing) {
  const now = performance.now();
  const fresh = missing.filter((idx) => !(now - (T.asked.get(idx) || -Infinity) < TILE_REASK_MS));
  clearTimeout(T.timer);
  if (!fresh.length || !S.setTriggerValue) return;
  T.timer = setTimeout(() => {
    if (T.key !== key) return;
    const t = performance.now();
    for (const idx of fresh) T.asked.set(idx, t);
    perfMark("tiles-asked");
    // every tile in view, so that Python keeps those registered when it has to drop older ones
    S.setTriggerValue("tiles", { image_id: S.imageId, tiles: T.wanted || fresh, at: Date.now() });
  }, TILE_ASK_MS);
}
