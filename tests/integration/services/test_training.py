"""What the Train page and `train --wait` show of a run: loss curves by step, epochs from 1."""

from __future__ import annotations

import pytest

from workbench.services.training import RunProgress, epoch_text


def _row(step: int, loss: float) -> dict:
    return {"type": "train", "step": step, "epoch": 1, "loss": loss, "loss_mask": loss / 2, "lr": 0.01}


def test_loss_series_is_by_step_and_a_resumed_runs_later_rows_win() -> None:
    # steps 1..4 logged, killed, resumed from the step-2 checkpoint: steps 3 and 4 logged again
    rows = [_row(1, 4.0), _row(2, 3.0), _row(3, 2.9), _row(4, 2.8), _row(3, 2.5), _row(4, 2.0), _row(5, 1.5)]
    series = RunProgress(status={}, train_rows=rows).loss_series()
    assert series["step"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert series["loss"] == [4.0, 3.0, 2.5, 2.0, 1.5]
    assert series["loss_mask"] == [2.0, 1.5, 1.25, 1.0, 0.75]
    assert "lr" not in series


def test_loss_series_of_a_run_without_rows_is_empty() -> None:
    assert RunProgress(status={}).loss_series() == {}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"epoch": 0, "epochs": 3, "iter": 0, "iters_per_epoch": 4}, "epoch 1/3 · iteration 0/4"),
        ({"epoch": 1, "epochs": 3, "iter": 2, "iters_per_epoch": 4}, "epoch 2/3 · iteration 2/4"),
        ({"epoch": 3, "epochs": 3, "iter": 0, "iters_per_epoch": 4}, "epoch 3/3 · iteration 4/4"),
    ],
)
def test_epoch_text_reads_from_one(status: dict, expected: str) -> None:
    assert epoch_text(status) == expected
