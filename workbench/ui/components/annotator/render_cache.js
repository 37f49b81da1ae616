// Many shapes (issue 11): render() draws each shape into a <g> of its own, kept while the shape would be
// drawn the same (its data, index, colour, selection, hover), so a drag redraws the dragged shape, a
// click two shapes and a zoom none (their zoom-dependent sizes are rescaled in place). The shape list
// rebuilds only the rows whose shape, index, selection or hover changed. Past LABELS_MAX shapes only
// the selected and hovered shapes carry a text label (the browser lays out every SVG text again on each
// pan and zoom frame; the list and the colours still tell the classes).

const LABELS_MAX = 200;

function showLabel(S, sel, hov) {
  return sel || hov || S.instances.length <= LABELS_MAX;
}

function startShapeGroups(S, u) {
  const cats = JSON.stringify(S.categories);
  const C = S.shapeCache;
  if (!C || C.cats !== cats || C.tool !== S.tool) S.shapeCache = { cats, tool: S.tool, byKey: new Map(), u };
  return { u, order: [], seen: new Map(), hits: [] };
}

// The <g> to draw this shape into, or null when the one drawn before is still right (kept in place).
function shapeGroup(S, groups, inst, i, color, sel, hov) {
  // masks are painted on canvases mask.js moves between renders: always drawn afresh
  const sig = inst.rle || inst.mask ? null
    : [i, color, sel, hov, showLabel(S, sel, hov), sel ? groups.u : 0, JSON.stringify(inst)].join("|");
  const hit = S.shapeCache.byKey.get(inst.key);
  if (sig !== null && hit && hit.sig === sig && !groups.seen.has(inst.key)) {
    groups.order.push(hit.node); groups.seen.set(inst.key, hit); groups.hits.push(hit.node);
    return null;
  }
  const node = document.createElementNS(SVGNS, "g");
  node.setAttribute("class", "wb-shapeg");
  groups.order.push(node);
  if (!groups.seen.has(inst.key)) groups.seen.set(inst.key, { sig, node });
  return node;
}

// Put the groups into the shapes layer in order with as few DOM moves as possible (anything else in
// the layer goes); returns the layer, to which the ghosts are added after.
function placeShapeGroups(S, groups) {
  const g = S.shapesG, C = S.shapeCache;
  const want = new Set(groups.order);
  for (const n of [...g.childNodes]) if (!want.has(n)) n.remove();
  let cur = g.firstChild;
  for (const n of groups.order) {
    if (n === cur) cur = cur.nextSibling;
    else g.insertBefore(n, cur);
  }
  if (C.u !== groups.u) { // kept groups were sized for the last render's zoom
    const f = groups.u / C.u, dy = 4 * (C.u - groups.u);
    for (const n of groups.hits) {
      for (const t of n.querySelectorAll(".wb-label")) {
        t.setAttribute("font-size", String(Number(t.getAttribute("font-size")) * f));
        t.setAttribute("y", String(Number(t.getAttribute("y")) + dy));
      }
      for (const c of n.querySelectorAll(".wb-kpt")) c.setAttribute("r", String(Number(c.getAttribute("r")) * f));
    }
  }
  C.byKey = groups.seen;
  C.u = groups.u;
  return g;
}

// The list row of a shape whose row would come out the same: buildList puts a placeholder for it and
// renderList keeps the row on the page (true); else the row is built (its signature noted for next time).
function keptRow(S, ul, inst, i) {
  const sig = [inst.key, i === S.selected, i === S.hover, colorOf(S, inst.category), JSON.stringify(inst)].join("|");
  S.listNext[i] = sig;
  const old = (S.listRows || [])[i];
  if (!old || old.sig !== sig || old.li.parentNode !== S.list) return false;
  const ph = ul.appendChild(document.createElement("li"));
  ph.wbKeep = old.li;
  return true;
}

function renderList(S) {
  const fresh = document.createElement("ul");
  S.listNext = [];
  buildList(S, fresh);
  const ul = S.list;
  const old = [...ul.children], now = [...fresh.children].map((li) => li.wbKeep || li);
  for (let k = old.length - 1; k >= now.length; k--) old[k].remove();
  now.forEach((li, k) => {
    if (k >= old.length) ul.appendChild(li);
    else if (old[k] !== li) ul.replaceChild(li, old[k]);
  });
  const rows = [];
  for (const li of now) if (li.dataset.i != null) rows[Number(li.dataset.i)] = { sig: S.listNext[Number(li.dataset.i)], li };
  S.listRows = rows;
}
