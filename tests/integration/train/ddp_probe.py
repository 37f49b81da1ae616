"""Run under torchrun by tests/integration/train/test_ddp.py: one Trainer per rank that also records what it saw.

``python -m torch.distributed.run --standalone --nproc-per-node N tests/integration/train/ddp_probe.py RUN_DIR OUT_DIR``
writes ``OUT_DIR/rank<R>.json``: the image ids of every step, the final status and a checksum of the
weights, so the test can check that ranks split the data and end with the same model.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from workbench.runs.worker import stop_with_launcher
from workbench.train.loop import Trainer
from workbench.train.model import unwrap


class ProbeTrainer(Trainer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[list[int]] = []
        self.checksum = float("nan")
        self.param_checksum = float("nan")

    def _step(self, images, targets):  # noqa: ANN001, ANN202
        self.seen.append(sorted(int(t["image_id"]) for t in targets))
        if os.environ.get("PROBE_FAIL") == f"{self.rank}:{len(self.seen)}":  # a rank that crashes mid-run
            raise MemoryError(f"rank {self.rank} ran out of memory (probe)")
        return super()._step(images, targets)

    def _write_model_file(self) -> None:  # rank 0 then loads best.pt: sum the weights as trained
        weights = unwrap(self.model).state_dict()
        self.checksum = float(sum(v.double().sum() for v in weights.values() if v.is_floating_point()))
        # the parameters alone: BatchNorm's running statistics (semantic models) are each rank's own
        # after its last forward; DDP broadcasts rank 0's at the next forward, and only rank 0 writes
        self.param_checksum = float(sum(p.double().sum() for p in unwrap(self.model).parameters()))
        super()._write_model_file()


def main() -> int:
    stop_with_launcher()  # a probe whose torchrun is gone (a test timed out) ends instead of waiting
    run_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    torch.set_num_threads(1)
    trainer = ProbeTrainer(run_dir, resume="--resume" in sys.argv)
    status = trainer.train()
    rank = int(os.environ["RANK"])
    out = {"rank": rank, "status": status, "steps": trainer.seen, "checksum": trainer.checksum,
           "param_checksum": trainer.param_checksum}
    (out_dir / f"rank{rank}.json").write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # as the worker does under torchrun: no interpreter teardown racing gloo's threads
