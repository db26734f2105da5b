"""The scene configuration of a run's training data, for checkpoint provenance.

``sst simulate`` writes the full scene configuration it used into every clip-set folder as
``sim_config.yaml`` (the :class:`~sst_ros.sim.config.SceneConfig` fields plus two run keys,
``duration_s_used`` and ``seed``). A training run records that configuration in its
checkpoints (provenance keys ``scene_config``, ``clip_duration_s`` and ``scene_config_from``),
so that ``sst adapt`` can later simulate source clips like the ones the model learnt from.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sst_ros.train.config import TrainConfig

__all__ = ["SIM_CONFIG_FILE", "ClipSetScenes", "read_clipset_scenes", "scene_provenance"]

log = logging.getLogger(__name__)

SIM_CONFIG_FILE = "sim_config.yaml"
_RUN_KEYS = ("duration_s_used", "seed")  # written by `sst simulate` beside the SceneConfig fields


@dataclass(frozen=True)
class ClipSetScenes:
    """How a simulated clip set was made (from its ``sim_config.yaml``).

    Attributes:
        scene_config: the scene configuration as plain data (SceneConfig fields only).
        duration_s: clip length used, seconds.
        seed: base seed of the set, or None when not recorded.
        path: the ``sim_config.yaml`` it was read from.
    """

    scene_config: dict[str, Any]
    duration_s: float
    seed: int | None
    path: Path


def read_clipset_scenes(folder: str | os.PathLike[str]) -> ClipSetScenes | None:
    """The scene configuration of the clip set in ``folder``; None without a readable ``sim_config.yaml``.

    Unreadable files are logged (warning) and treated as absent: provenance is best effort.
    """
    path = Path(folder) / SIM_CONFIG_FILE
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        log.warning("cannot read %s (%s); its scene configuration is not recorded", path, err)
        return None
    if not isinstance(data, dict):
        log.warning("%s is not a mapping; its scene configuration is not recorded", path)
        return None
    run = {k: data.pop(k) for k in _RUN_KEYS if k in data}
    duration = run.get("duration_s_used", data.get("duration_s"))
    if not isinstance(duration, (int, float)):
        log.warning("%s names no clip duration; its scene configuration is not recorded", path)
        return None
    seed = run.get("seed")
    return ClipSetScenes(data, float(duration), int(seed) if isinstance(seed, int) else None, path.resolve())


def scene_provenance(cfg: TrainConfig) -> dict[str, Any]:
    """Provenance entries describing the scenes a run trains on ({} when unknown).

    Returns:
        ``scene_config`` (plain data), ``clip_duration_s`` (seconds) and ``scene_config_from``
        (the file it came from): the on-the-fly simulation config, or the ``sim_config.yaml``
        of the first training clip set that has one (a warning when the sets disagree).
    """
    if cfg.simulate_config:
        from sst_ros.sim.config import load_scene_config

        path = Path(cfg.simulate_config)
        return {
            "scene_config": load_scene_config(cfg.simulate_config).to_dict(),
            "clip_duration_s": float(cfg.sim_duration_s),
            "scene_config_from": str(path.resolve() if path.is_file() else path),
        }
    found = [s for s in (read_clipset_scenes(d) for d in cfg.data) if s is not None]
    if not found:
        return {}
    first = found[0]
    if any(s.scene_config != first.scene_config or s.duration_s != first.duration_s for s in found[1:]):
        log.warning(
            "training clip sets were simulated with different scene configurations; provenance records %s",
            first.path,
        )
    return {
        "scene_config": first.scene_config,
        "clip_duration_s": first.duration_s,
        "scene_config_from": str(first.path),
    }
