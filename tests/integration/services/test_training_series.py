"""The Train page's validation chart: AP against the epoch counted from 1, as the progress text counts."""

from __future__ import annotations

from workbench.services.training import RunProgress


def test_val_series_is_by_epoch_from_1_and_a_resumed_runs_later_row_wins() -> None:
    rows = [
        {"type": "val", "epoch": 1, "segm_ap": 0.1, "bbox_ap": 0.2},
        {"type": "val", "epoch": 2, "segm_ap": 0.3, "bbox_ap": 0.4},
        {"type": "val", "epoch": 2, "segm_ap": 0.35, "bbox_ap": 0.45},  # resumed: epoch 2 again
        {"type": "val", "epoch": 3, "segm_ap": 0.5, "bbox_ap": 0.6},
    ]
    series = RunProgress(status={}, val_rows=rows).val_series()
    assert series == {"epoch": [1.0, 2.0, 3.0], "segm_ap": [0.1, 0.35, 0.5], "bbox_ap": [0.2, 0.45, 0.6]}


def test_val_series_of_a_run_without_validation_is_empty() -> None:
    assert RunProgress(status={}).val_series() == {}
    assert RunProgress(status={}, val_rows=[{"type": "val", "epoch": 1}]).val_series() == {}
