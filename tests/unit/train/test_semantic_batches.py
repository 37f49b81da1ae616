"""A step of one image cannot train a batch-normalised image-level pooling (DeepLabV3's ASPP pooling,
a U-Net's 1 x 1 bottleneck at 32 px): the sampler folds a lone last image into the batch before it, and a config that
would give every step one image is refused naming the setting."""

from __future__ import annotations

import pytest

from workbench.train.config import ConfigError, TrainConfig
from workbench.train.sampler import GroupedBatchSampler


@pytest.mark.parametrize(("n", "sizes"), [(5, [2, 3]), (4, [2, 2]), (1, [1])])
def test_a_lone_last_image_joins_the_batch_before_it(n: int, sizes: list[int]) -> None:
    sampler = GroupedBatchSampler([1.0] * n, 2, group=False, min_batch=2)
    batches = list(sampler)
    assert sorted(len(b) for b in batches) == sorted(sizes)
    assert sorted(i for b in batches for i, _ in b) == list(range(n))
    assert [len(b) for b in GroupedBatchSampler([1.0] * 5, 2, group=False)] == [2, 2, 1]  # Mask R-CNN's: as before


def test_one_image_a_step_is_refused_where_batchnorm_needs_two() -> None:
    with pytest.raises(ConfigError, match="batch_size must be at least 2 for arch deeplabv3"):
        TrainConfig(task="semantic", arch="deeplabv3", weights="none", batch_size=1)
    with pytest.raises(ConfigError, match="image_size must be at least 64 for arch unet at batch_size 1"):
        TrainConfig(task="semantic", arch="unet", weights="none", batch_size=1, image_size=32)
    TrainConfig(task="semantic", arch="unet", weights="none", batch_size=1, image_size=64)
    TrainConfig(task="semantic", arch="fcn", weights="none", batch_size=1)
    TrainConfig(task="semantic", arch="pspnet", weights="none", batch_size=1)  # smp keeps BatchNorm out of its 1 x 1 bin


def test_deeplabv3_trains_an_odd_number_of_images_through_the_trainer(make_run) -> None:  # noqa: ANN001
    from workbench.train.loop import Trainer

    # 3 images at batch 2: without the fold, the second step would hold one image and fail in BatchNorm
    run = make_run(n_train=3, task="semantic", arch="deeplabv3", encoder="mobilenet_v3_large", image_size=64, epochs=1,
                   batch_size=2, eval_every=1)
    assert Trainer(run).train() == "succeeded"
