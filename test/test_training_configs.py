"""Every config under ``training/configs`` loads: scene ranges (``sim_*.yaml``) as scene configs,
the rest as training configs; the clean scenes differ from the multi-talker ones only where stated."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import REPO_ROOT

from sst_ros.sim.config import load_scene_config
from sst_ros.train.config import TrainConfig

CONFIGS = sorted((REPO_ROOT / "training" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads(path: Path) -> None:
    if path.name.startswith("sim_"):
        load_scene_config(path)
    else:
        assert TrainConfig.from_yaml(path).steps > 0


def test_clean_scenes_are_the_multi_talker_scenes_without_the_room_and_the_noise() -> None:
    multi = load_scene_config(REPO_ROOT / "training" / "configs" / "sim_multi.yaml")
    clean = load_scene_config(REPO_ROOT / "training" / "configs" / "sim_multi_clean.yaml")
    assert clean.room.ism_max_order == 0 and max(clean.room.rt60_s) <= 0.15 and clean.room.hybrid_prob == 0
    assert min(clean.noise.snr_db) >= 30.0
    changed = {"room": {"rt60_s", "ism_max_order", "hybrid_prob"}, "noise": {"snr_db"}}
    for section, fields in multi.data.items():
        if not isinstance(fields, dict):
            assert clean.data[section] == fields, section
            continue
        for key, value in fields.items():
            if key not in changed.get(section, set()):
                assert clean.data[section][key] == value, f"{section}.{key}"
    assert TrainConfig.from_yaml(REPO_ROOT / "training" / "configs" / "multi_clean.yaml").interferer_weight == 1.0
