"""Every dataclass configuration read from plain data names unknown fields and the known ones."""

from __future__ import annotations

import pytest

from sst_ros.errors import ConfigError
from sst_ros.model.crnn import ModelConfig
from sst_ros.model.features import FeatureConfig
from sst_ros.train.config import TrainConfig


def test_unknown_fields_are_named(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"model config: unknown fields \['gru_size'\]; known: .*'gru_hidden'"):
        ModelConfig.from_dict({**ModelConfig.preset("tiny", n_mics=4).to_dict(), "gru_size": 3})
    with pytest.raises(ConfigError, match=r"feature config: unknown fields \['nfft'\]"):
        FeatureConfig.from_dict({"nfft": 512})
    cfg = tmp_path / "train.yaml"
    cfg.write_text("steps: 10\nwarmup: 5\n")
    with pytest.raises(ConfigError, match=r"train config .*train.yaml: unknown fields \['warmup'\]; .*'warmup_steps'"):
        TrainConfig.from_yaml(cfg)
    cfg.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        TrainConfig.from_yaml(cfg)
    cfg.write_text("steps: 10\nwarmup_steps: 5\n")
    assert TrainConfig.from_yaml(cfg).warmup_steps == 5
