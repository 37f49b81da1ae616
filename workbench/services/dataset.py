"""Dataset-level use cases: deterministic stratified splits and statistics."""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from typing import Any

from workbench.domain import SPLITS, ValidationError
from workbench.services.permissions import requires
from workbench.services.workspace import Workspace
from workbench.store import datasets as dataset_repo
from workbench.store import images as image_repo
from workbench.store import projects as project_repo


def _rank(seed: int, image_id: int) -> str:
    return hashlib.sha256(f"{seed}:{image_id}".encode()).hexdigest()


def stratified_split(
    presence: dict[int, set[str]], ratios: tuple[float, float, float], seed: int
) -> dict[int, str]:
    """Assign each image to train/val/test, stratified by class presence, deterministic by seed.

    Images are grouped by the rarest class they show (images without objects form their own group);
    each group is ordered by a seeded hash and cut by the ratios with cumulative rounding, so every
    class lands in every split in proportion as far as its count allows.
    """
    if len(ratios) != 3 or not all(math.isfinite(r) and r >= 0 for r in ratios) or sum(ratios) <= 0:
        raise ValidationError(f"split ratios must be three non-negative numbers, got {ratios}")
    total = sum(ratios)
    ratios = tuple(r / total for r in ratios)  # type: ignore[assignment]
    freq = Counter(name for names in presence.values() for name in names)
    groups: dict[str, list[int]] = defaultdict(list)
    for image_id, names in presence.items():
        key = min(names, key=lambda n: (freq[n], n)) if names else ""
        groups[key].append(image_id)
    out: dict[int, str] = {}
    carry = [0.0, 0.0, 0.0]
    for key in sorted(groups):
        ids = sorted(groups[key], key=lambda i: _rank(seed, i))
        take = _group_counts(len(ids), ratios, carry)
        cuts = [take[0], take[0] + take[1]]
        for pos, image_id in enumerate(ids):
            out[image_id] = SPLITS[0] if pos < cuts[0] else SPLITS[1] if pos < cuts[1] else SPLITS[2]
    return out


def _group_counts(n: int, ratios: tuple[float, ...], carry: list[float]) -> list[int]:
    """How many of a group's ``n`` images go to each split: its share by the ratios plus what earlier
    groups' rounding left over (``carry``, updated), so that many small groups (rare classes) still
    fill val and test in proportion instead of each rounding its share away. Zero ratios get none."""
    want = [n * r + c if r > 0 else 0.0 for r, c in zip(ratios, carry, strict=True)]
    take = [max(0, math.floor(w)) for w in want]
    while sum(take) < n:  # the largest shortfall first; ties go to the earlier split
        j = max((j for j in range(3) if ratios[j] > 0), key=lambda j: (want[j] - take[j], -j))
        take[j] += 1
    while sum(take) > n:
        j = min((j for j in range(3) if take[j] > 0), key=lambda j: (want[j] - take[j], j))
        take[j] -= 1
    for j in range(3):
        carry[j] = want[j] - take[j]
    return take


@requires("dataset.edit")
def split_project(
    ws: Workspace,
    slug: str,
    *,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    only_unassigned: bool = False,
) -> dict[str, int]:
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        presence = dataset_repo.class_presence(s, pid)
        if only_unassigned:
            keep = {im.id for im in image_repo.list_images(s, pid, split="unassigned")}
            presence = {i: v for i, v in presence.items() if i in keep}
        assignment = stratified_split(presence, ratios, seed)
        image_repo.set_splits(s, pid, assignment)  # type: ignore[arg-type]
    return dict(Counter(assignment.values()))


@requires("project.read")
def project_stats(ws: Workspace, slug: str) -> dict[str, Any]:
    """Counts people look at before training: per class instances/images/keypoints, per split, status."""
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        info = project_repo.get_project(s, slug)
        ds = dataset_repo.load_dataset(s, pid)
    per_class: dict[str, dict[str, int]] = {
        c.name: {"instances": 0, "images": 0, "with_keypoints": 0, "crowd": 0} for c in ds.categories
    }
    split_cls: dict[str, Counter[str]] = defaultdict(Counter)
    for item in ds.items:
        seen: set[str] = set()
        for inst in item.instances:
            row = per_class[inst.category]
            row["instances"] += 1
            row["with_keypoints"] += inst.num_keypoints > 0
            row["crowd"] += bool(inst.iscrowd)
            seen.add(inst.category)
            split_cls[item.image.split or "unassigned"][inst.category] += 1
        for name in seen:
            per_class[name]["images"] += 1
    return {
        "project": info.slug,
        "images": info.num_images,
        "annotations": info.num_annotations,
        "status": info.status_counts,
        "splits": info.split_counts,
        "classes": per_class,
        "instances_per_split": {k: dict(v) for k, v in split_cls.items()},
    }
