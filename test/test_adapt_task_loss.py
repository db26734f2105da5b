"""Regression: adaptation optimises the task loss its checkpoint was trained with.

Adaptation used to call the task loss without the spectrum weight, so it weighed spectrum to
activity 1 : 0.2 while source training used 5 : 0.2 (activity was 39 % of the adaptation task
loss instead of 12 %).
"""

from __future__ import annotations

import pytest
import torch

from sst_ros.adapt.config import AdaptConfig
from sst_ros.errors import ConfigError
from sst_ros.train.config import TrainConfig
from sst_ros.train.losses import TaskLoss, task_loss_per_frame


def test_unset_fields_take_the_training_loss() -> None:
    train = TrainConfig()
    assert AdaptConfig().task_loss() == TaskLoss(train.loss, train.spectrum_weight, train.activity_weight)
    assert AdaptConfig().task_loss().spectrum_weight == 5.0
    trained = {"loss": "mse", "spectrum_weight": 3.0, "activity_weight": 0.5}
    assert AdaptConfig().task_loss(trained) == TaskLoss("mse", 3.0, 0.5)
    resolved = AdaptConfig(activity_weight=0.1).with_training_loss(trained)
    assert (resolved.spectrum_loss, resolved.spectrum_weight, resolved.activity_weight) == ("mse", 3.0, 0.1)
    assert resolved.to_dict()["spectrum_weight"] == 3.0  # the provenance records what was optimised


def test_task_loss_equals_source_training_objective() -> None:
    g = torch.Generator().manual_seed(0)
    spec, act = torch.randn(2, 5, 8, generator=g), torch.randn(2, 5, generator=g)
    target, active = torch.rand(2, 5, 8, generator=g), (torch.rand(2, 5, generator=g) > 0.5).float()
    train = TrainConfig()
    expected = task_loss_per_frame(
        spec, act, target, active, spectrum_loss=train.loss, spectrum_weight=train.spectrum_weight,
        activity_weight=train.activity_weight,
    )
    torch.testing.assert_close(AdaptConfig().task_loss().per_frame(spec, act, target, active), expected)
    # The old weighting (spectrum 1) is a different objective.
    assert not torch.allclose(task_loss_per_frame(spec, act, target, active), expected)


def test_bad_task_loss_settings_are_named() -> None:
    with pytest.raises(ConfigError, match="spectrum loss must be one of bce, mse, got 'l1'"):
        AdaptConfig(spectrum_loss="l1")
    with pytest.raises(ConfigError, match="weights must be >= 0"):
        AdaptConfig(spectrum_weight=-1.0)
