// Attribute panel (CVAT-style): the selected shape's attribute values, edited with the input that each
// of its class's definitions asks for: checkbox, select, text or number. Every class has `occluded` and
// `truncated` (Python sends them first among the definitions). An edit is one undo step and one save;
// keys the panel does not show (an import's) stay on the shape untouched.

function attrDefsOf(S, name) {
  const c = S.catByName.get(name);
  return (c && c.attributes) || [];
}

function renderAttrPanel(S) {
  const p = S.attrpanel || (S.attrpanel = S.root.querySelector('[data-role="attrpanel"]'));
  if (!p) return;
  const inst = S.pending ? null : S.instances[S.selected];
  const defs = inst ? attrDefsOf(S, inst.category) : [];
  // render() runs on every hover and drag: rebuilt only when what it shows changed, so a field being
  // typed into keeps its focus and caret
  const sig = inst && defs.length ? JSON.stringify([inst.key, inst.category, defs, inst.attributes || {}]) : "";
  if (p.__wbSig === sig) return;
  p.__wbSig = sig;
  p.replaceChildren();
  if (!sig) return;
  const title = document.createElement("div");
  title.className = "wb-side-title";
  title.textContent = "Attributes";
  p.appendChild(title);
  const values = inst.attributes || {};
  for (const def of defs) p.appendChild(attrRow(S, inst.key, def, values[def.name]));
}

function attrRow(S, key, def, value) {
  const row = document.createElement("label");
  row.className = "wb-attr";
  row.dataset.attr = def.name;
  const name = document.createElement("span");
  name.className = "wb-attr-name";
  name.textContent = def.name; // textContent: names are user text
  name.title = def.name;
  let input;
  if (def.kind === "checkbox") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = !!value;
    row.append(input, name);
  } else {
    if (def.kind === "select") {
      input = document.createElement("select");
      for (const opt of ["", ...def.options]) {
        const o = document.createElement("option");
        o.value = opt;
        o.textContent = opt === "" ? "—" : opt;
        input.appendChild(o);
      }
      input.value = typeof value === "string" && def.options.includes(value) ? value : "";
    } else {
      input = document.createElement("input");
      input.type = def.kind === "number" ? "number" : "text";
      if (def.kind === "number") input.step = "any";
      input.value = value == null ? "" : String(value);
    }
    row.append(name, input);
  }
  input.dataset.attr = def.name;
  input.addEventListener("change", () => {
    setAttr(S, key, def.name, attrValue(def, input));
    if (def.kind === "checkbox" || def.kind === "select") S.root.focus({ preventScroll: true }); // keys again
  });
  return row;
}

// The value an input holds as stored: a bool, an option, text or a number; null (unset) when empty.
function attrValue(def, input) {
  if (def.kind === "checkbox") return input.checked;
  if (input.value === "") return null;
  if (def.kind === "number") {
    const v = Number(input.value);
    return Number.isFinite(v) ? v : null;
  }
  return input.value;
}

function setAttr(S, key, name, value) {
  const inst = S.instances.find((x) => x.key === key);
  if (!inst || S.locked) return;
  const cur = inst.attributes || {};
  if ((cur[name] ?? null) === value) return;
  snapshot(S);
  const next = Object.assign({}, cur);
  if (value === null) delete next[name];
  else next[name] = value;
  inst.attributes = next;
  markEdited(inst);
  commit(S);
}
