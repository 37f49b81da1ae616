"""The annotator's saves as deltas: what changed since a state Python has acknowledged, not every shape.

A save on an image of 1,000 shapes used to carry all of them through the page, the service and the
store. Now the browser (``send`` in annotator.js) sends only the shapes whose content changed since
its base, in full (added and edited ones), and the uids of the shapes it removed. Its base is the
state of its last action that Python acknowledged (``ack_seq``), or the epoch's loaded shapes (seq 0):
a newer action may replace an older one before Python reads it (Streamlit keeps only the newest
trigger value), so each delta holds everything since a state Python is known to have.

Python keeps the tab's whole shape list for each action it read (``tabs[epoch][seq]``: a dict from
uid to the item the browser sent; unchanged items are the same objects from state to state), and
rebuilds the new list from the action's base. A base it no longer has answers None: the page asks
the browser for its whole list (``data["resync"]``), as every save sent before deltas.

Shapes loaded from the store get their uid here (``py:<epoch>:<row id>``, a form a browser uid never
has), so both sides name every shape the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from workbench.domain import Instance, ValidationError
from workbench.ui.components.annotator.annotator import instance_to_payload

Item = dict[str, Any]
TabStates = dict[int, dict[int, dict[str, Item]]]
"""epoch -> seq -> (uid -> item): the tab's shape list after each action read (seq 0: as loaded)."""


def loaded_uid(epoch: int, inst: Instance) -> str:
    return f"py:{epoch}:{inst.id}"


def loaded_items(instances: Sequence[Instance], epoch: int) -> tuple[list[Item], dict[str, Item]]:
    """The browser payload of an image's stored shapes (each with its uid), and the tab state they
    make: per uid, the item the browser would send for the shape untouched (its mask and box stay
    the stored ones, as ``payload_to_indexed_instances`` reads a missing mask and box)."""
    payload: list[Item] = []
    state: dict[str, Item] = {}
    for inst in instances:
        uid = loaded_uid(epoch, inst)
        item = {**instance_to_payload(inst), "uid": uid}
        payload.append(item)
        state[uid] = {**item, "rle": inst.rle is not None, "mask": None, "box": None}
    return payload, state


def item_key(item: Mapping[str, Any], n: int, seq: int) -> str:
    """A shape's name in the tab state: its uid (the browser always sends one); for a list without
    uids (an older client, a test) its row id, else its place in that action."""
    uid = item.get("uid")
    if uid is not None:
        return str(uid)
    if item.get("id") is not None:
        return f"id:{item['id']}"
    return f"new:{seq}:{n}"


def rebuild(tabs: TabStates, action: Mapping[str, Any]) -> dict[str, Item] | None:
    """The tab's whole shape list after ``action`` (kept as the state of its seq), or None where the
    action is a delta from a state no longer kept.

    An action carries either ``instances`` (the whole list) or ``base`` (the seq of the state it
    changes), ``changed`` (items, whole) and ``deleted`` (uids). States of older epochs, and of seqs
    older than the base (the browser never goes back to them), are dropped.
    """
    epoch = int(action.get("epoch") or 0)
    seq = int(action.get("seq") or 0)
    for old in [e for e in tabs if e < epoch]:
        del tabs[old]
    states = tabs.setdefault(epoch, {})
    if "instances" in action and action.get("base") is None:
        raw = _items(action.get("instances"))
        items = {item_key(it, n, seq): it for n, it in enumerate(raw)}
    else:
        try:
            base = int(action["base"])
        except (KeyError, TypeError, ValueError):
            return None
        if base not in states:
            return None
        items = dict(states[base])
        for n, it in enumerate(_items(action.get("changed"))):
            items[item_key(it, n, seq)] = it
        for uid in action.get("deleted") or []:
            items.pop(str(uid), None)
        for old_seq in [k for k in states if k < base]:
            del states[old_seq]
    states[seq] = items
    return items


def _items(raw: Any) -> list[Item]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(it, dict) for it in raw):
        raise ValidationError("annotator sent a shape list that is not a list of shapes")
    return raw


def changes(items: Mapping[str, Item], saved: Mapping[str, Item]) -> tuple[list[str], list[str]]:
    """(uids whose item differs from the saved one or is new, uids saved but gone): what a save
    writes. Unchanged items are mostly the very objects of the saved state (an identity check)."""
    changed = [k for k, it in items.items() if saved.get(k) is not it and saved.get(k) != it]
    gone = [k for k in saved if k not in items]
    return changed, gone
