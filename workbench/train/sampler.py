"""The batch sampler of training: seeded, resumable, grouped by aspect ratio, split across DDP ranks.

As torchvision's reference ``group_by_aspect_ratio.py``: images of one orientation are batched
together so that padding to the batch's largest image wastes little.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence

import torch


def sample_seed(run_seed: int, epoch: int, index: int) -> int:
    return (run_seed * 1_000_003 + epoch * 7_919 * 65_537 + index) % (2**31)


class GroupedBatchSampler(torch.utils.data.Sampler):
    """Seeded batches of ``(index, seed)`` pairs, grouped by aspect ratio (landscape vs portrait).

    Like torchvision's reference GroupedBatchSampler, images of one orientation are batched together
    so that padding to the batch's largest image wastes little. Deterministic per (seed, epoch), so a
    resumed run sees the same order and skips the batches it already did (``start_batch``).
    Under DDP each rank takes every ``world_size``-th batch.
    """

    def __init__(
        self,
        aspect_ratios: Sequence[float],
        batch_size: int,
        *,
        seed: int = 0,
        group: bool = True,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        min_batch: int = 1,
    ) -> None:
        self.groups = [int(r >= 1.0) if group else 0 for r in aspect_ratios]
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.min_batch = min_batch
        """A last batch smaller than this joins the one before it: BatchNorm in training (the semantic
        models' image-level pooling) cannot normalise a single image's 1 x 1 features."""
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def _all_batches(self) -> list[list[int]]:
        order = list(range(len(self.groups)))
        rng = random.Random(self.seed * 100_003 + self.epoch)
        if self.shuffle:
            rng.shuffle(order)
        buckets: dict[int, list[int]] = {}
        batches: list[list[int]] = []
        for i in order:
            bucket = buckets.setdefault(self.groups[i], [])
            bucket.append(i)
            if len(bucket) == self.batch_size:
                batches.append(bucket.copy())
                bucket.clear()
        leftovers = [i for g in sorted(buckets) for i in buckets[g]]
        for j in range(0, len(leftovers), self.batch_size):
            batches.append(leftovers[j : j + self.batch_size])
        if len(batches) > 1 and len(batches[-1]) < self.min_batch:
            batches[-2].extend(batches.pop())
        if self.world_size > 1:  # same number of batches on every rank: wrap around to fill the last round
            per_rank = math.ceil(len(batches) / self.world_size)
            batches = [batches[j % len(batches)] for j in range(self.rank, per_rank * self.world_size, self.world_size)]
        return batches

    def __len__(self) -> int:
        return len(self._all_batches())

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for batch in self._all_batches()[self.start_batch :]:
            yield [(i, sample_seed(self.seed, self.epoch, i)) for i in batch]
        self.start_batch = 0
