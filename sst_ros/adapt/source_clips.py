"""Labelled synthetic source clips for ``sst adapt``: simulated for the model, cached on disk.

When no ``--source-clips`` are given, ``sst adapt`` simulates them (:func:`ensure_source_clips`)
for the model's microphone array with the scene configuration the model was trained with,
chosen by :func:`scene_for_model` in this order:

1. an explicit scene config (``--source-config``);
2. the checkpoint provenance's ``scene_config`` (written by ``sst train``, with ``clip_duration_s``);
3. the ``sim_config.yaml`` of a training clip set named in the provenance, if it still exists;
4. the package default ``config/sim/default.yaml``, with a warning naming it.

An adapted checkpoint is searched through to the provenance of the model it was adapted from.
The clips go to ``<cache>/adapt_source_<array>_<hash>/``, the hash covering the scene
config, the array geometry, the number of clips, the seed and the clip duration; the cache
folder is the source tree's ``training/data`` or, for an installed package,
``$SST_CACHE_DIR`` / ``~/.cache/sst_ros`` (``--cache-dir`` overrides). A set is simulated
into a temporary sibling (``<name>.partial-<pid>``) and renamed when complete, so a cached
folder is either complete (``n`` WAV + CSV pairs, ``sim_config.yaml``, ``array.yaml``,
``scenes.jsonl``) or not used: an incomplete one is simulated again, and partial folders of
processes that no longer run are deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sst_ros.errors import ConfigError
from sst_ros.train.scene_provenance import SIM_CONFIG_FILE, read_clipset_scenes

if TYPE_CHECKING:  # sst_ros.sim imports pyroomacoustics (seconds): loaded when first needed
    from sst_ros.geometry import MicArray
    from sst_ros.sim.config import SceneConfig

__all__ = [
    "CACHE_PREFIX",
    "DEFAULT_SOURCE_N",
    "DEFAULT_SOURCE_SEED",
    "SceneChoice",
    "SourceClips",
    "SourcePlan",
    "default_cache_dir",
    "default_workers",
    "ensure_source_clips",
    "is_complete",
    "plan_source_clips",
    "scene_for_model",
]

log = logging.getLogger(__name__)

# 400 clips (the --max-source-clips default for given sets): measured 141 s for 400 10 s scenes
# with 2 workers on the 2-core development machine (2.8 scenes/s; 6 s scenes 3.2/s), see training/README.md.
DEFAULT_SOURCE_N = 400
DEFAULT_SOURCE_SEED = 1000  # the recipes simulate training sets with seeds 0-2: fresh scenes here
CACHE_PREFIX = "adapt_source"
_SUBTYPE = "PCM_16"
_PARTIAL, _STALE = ".partial-", ".stale-"
_HASH_CHARS = 12


@dataclass(frozen=True)
class SceneChoice:
    """The scene configuration chosen for a model's source clips.

    Attributes:
        config: the validated scene configuration.
        duration_s: the clip length the model was trained with, seconds (None: not known).
        origin: where it came from, in words (logged, summarised, recorded in provenance).
        fallback: True when it is the package default, not the model's own configuration.
    """

    config: SceneConfig
    duration_s: float | None
    origin: str
    fallback: bool = False


@dataclass(frozen=True)
class SourcePlan:
    """A set of source clips to simulate (or to find in the cache).

    Attributes:
        scene: the scene configuration and where it came from.
        array: microphone geometry of the model (the clips hold its microphones in order).
        n: number of clips.
        seed: base seed (scene ``i`` uses ``scene_seed(seed, i)``).
        duration_s: clip length, seconds.
        cache_dir: folder holding the cached sets.
    """

    scene: SceneChoice
    array: MicArray
    n: int
    seed: int
    duration_s: float
    cache_dir: Path

    def key(self) -> str:
        """Hash (hex) of everything that determines the clips: scene config, geometry, n, seed, duration."""
        payload = {
            "scene_config": self.scene.config.to_dict(),
            "array": {"name": self.array.name, "microphones_m": self.array.to_dict()["microphones_m"]},
            "n": self.n,
            "seed": self.seed,
            "duration_s": round(self.duration_s, 6),
            "subtype": _SUBTYPE,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:_HASH_CHARS]

    @property
    def folder(self) -> Path:
        """The cached set's folder, ``<cache_dir>/adapt_source_<array>_<key>``."""
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.array.name) or "array"
        return self.cache_dir / f"{CACHE_PREFIX}_{name}_{self.key()}"


@dataclass(frozen=True)
class SourceClips:
    """Source clips ready for adaptation.

    Attributes:
        folder: the clip-set folder.
        cached: True when an earlier run's set was reused (no simulation).
        plan: what was asked for.
    """

    folder: Path
    cached: bool
    plan: SourcePlan

    def provenance(self) -> dict[str, Any]:
        """Plain-data record for the adapted checkpoint's provenance."""
        p = self.plan
        return {
            "folder": str(self.folder),
            "cached": self.cached,
            "simulated": True,
            "n": p.n,
            "seed": p.seed,
            "duration_s": p.duration_s,
            "scene_config_from": p.scene.origin,
            "scene_config_fallback": p.scene.fallback,
            "scene_config": p.scene.config.to_dict(),
        }


def default_cache_dir() -> Path:
    """``training/data`` of the source tree when running from one, else ``$SST_CACHE_DIR`` or ``~/.cache/sst_ros``."""
    root = Path(__file__).resolve().parents[2]
    if (root / "training").is_dir() and (root / "sst_ros" / "__init__.py").is_file():
        return root / "training" / "data"
    from sst_ros.sim.speech import cache_dir

    return cache_dir()


def default_workers() -> int:
    """Simulation processes: the CPUs this process may use, at most 4."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(4, n))


def _provenance_chain(provenance: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The provenance and those of the models it was adapted from (``source_provenance``)."""
    prov: Any = provenance
    while isinstance(prov, dict):
        yield prov
        prov = prov.get("source_provenance")


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _data_folders(prov: dict[str, Any]) -> list[str]:
    """Training clip-set folders named in one provenance (resolved paths, then the config's own)."""
    train_cfg = prov.get("train_config")
    names = _as_list(prov.get("data")) + _as_list(train_cfg.get("data") if isinstance(train_cfg, dict) else None)
    return list(dict.fromkeys(names))


def _recorded_scene(provenance: dict[str, Any]) -> SceneChoice | None:
    """Option 2 of the module docstring: the provenance's own ``scene_config``."""
    from sst_ros.sim.config import SceneConfig

    for prov in _provenance_chain(provenance):
        cfg = prov.get("scene_config")
        if isinstance(cfg, dict):
            try:
                config = SceneConfig.from_dict(cfg, origin="the model's provenance scene_config")
            except ConfigError as err:
                raise ConfigError(f"{err}; pass --source-config YAML or --source-clips DIR") from err
            dur = prov.get("clip_duration_s")
            return SceneChoice(config, float(dur) if isinstance(dur, (int, float)) else None, "the model's provenance")
    return None


def _training_set_scene(provenance: dict[str, Any]) -> SceneChoice | None:
    """Option 3 of the module docstring: ``sim_config.yaml`` of an existing training clip set."""
    from sst_ros.sim.config import SceneConfig

    for prov in _provenance_chain(provenance):
        for folder in _data_folders(prov):
            rec = read_clipset_scenes(folder) if Path(folder).is_dir() else None
            if rec is None:
                continue
            try:
                config = SceneConfig.from_dict(rec.scene_config, origin=str(rec.path))
            except ConfigError as err:
                log.warning("training clip set %s: %s; not used", folder, err)
                continue
            return SceneChoice(config, rec.duration_s, f"training clip set {rec.path}")
    return None


def scene_for_model(provenance: dict[str, Any], override: str | os.PathLike[str] | None = None) -> SceneChoice:
    """The scene configuration for a model's source clips (order in the module docstring).

    Args:
        provenance: the checkpoint's provenance.
        override: a scene config YAML (or a name under ``config/sim``) that takes precedence.
    """
    from sst_ros.sim.config import default_config_path, load_scene_config

    if override is not None:
        return SceneChoice(load_scene_config(override), None, f"--source-config {override}")
    choice = _recorded_scene(provenance) or _training_set_scene(provenance)
    if choice is not None:
        return choice
    path = default_config_path()
    log.warning(
        "the model's provenance records no scene configuration and names no existing training clip set "
        "with %s; the source clips use the package default scene config %s. To use another one pass "
        "--source-config YAML (e.g. training/configs/sim_train.yaml, which the shipped default model "
        "was trained with) or --source-clips DIR (clips from `sst simulate`)",
        SIM_CONFIG_FILE,
        path,
    )
    return SceneChoice(load_scene_config(None), None, f"package default {path}", fallback=True)


def plan_source_clips(
    provenance: dict[str, Any],
    array: MicArray,
    *,
    n: int | None = None,
    seed: int | None = None,
    duration_s: float | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    scene_config: str | os.PathLike[str] | None = None,
) -> SourcePlan:
    """The source clips to use for a model (None = the defaults described in the module docstring).

    Args:
        provenance: the checkpoint's provenance.
        array: the checkpoint's microphone geometry.
        n: number of clips (default :data:`DEFAULT_SOURCE_N`).
        seed: base seed (default :data:`DEFAULT_SOURCE_SEED`).
        duration_s: clip length, seconds (default: the model's training clips', else the config's).
        cache_dir: cache folder (default :func:`default_cache_dir`).
        scene_config: scene config YAML overriding the model's.
    Raises:
        ConfigError: a count, seed or duration out of range, or an unusable scene config.
    """
    n = DEFAULT_SOURCE_N if n is None else int(n)
    seed = DEFAULT_SOURCE_SEED if seed is None else int(seed)
    if n < 2:
        raise ConfigError(f"--source-n must be >= 2 (training and validation clips), got {n}")
    if seed < 0:
        raise ConfigError(f"--source-seed must be >= 0, got {seed}")
    scene = scene_for_model(provenance, scene_config)
    dur = float(duration_s if duration_s is not None else scene.duration_s or scene.config.duration_s)
    if not dur > 0:
        raise ConfigError(f"--source-duration must be > 0 s, got {dur:g}")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return SourcePlan(scene, array.microphones_only(), n, seed, dur, cache)


def is_complete(folder: str | os.PathLike[str], n: int) -> bool:
    """True when ``folder`` holds exactly scenes ``0..n-1`` as non-empty WAV + CSV pairs and the set's metadata."""
    folder = Path(folder)
    if not all((folder / f).is_file() for f in (SIM_CONFIG_FILE, "array.yaml", "scenes.jsonl")):
        return False
    expected = {f"scene_{i:06d}" for i in range(n)}
    for ext in ("wav", "csv"):
        if {p.stem for p in folder.glob(f"scene_*.{ext}") if p.stat().st_size > 0} != expected:
            return False
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(final: Path) -> None:
    """Delete partial / replaced siblings of ``final`` left by processes that no longer run."""
    for marker in (_PARTIAL, _STALE):
        for path in final.parent.glob(f"{final.name}{marker}*"):
            pid = path.name[len(final.name) + len(marker) :]
            if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                log.info("removing %s (left by an interrupted run)", path)
                shutil.rmtree(path, ignore_errors=True)


def _publish(tmp: Path, final: Path, n: int) -> None:
    """Rename the finished set ``tmp`` to ``final`` (replacing an incomplete ``final``)."""
    if final.exists() and not is_complete(final, n):
        stale = final.with_name(f"{final.name}{_STALE}{os.getpid()}")
        final.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        tmp.rename(final)
    except OSError:  # another run published the same set first
        if not is_complete(final, n):
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_source_clips(plan: SourcePlan, *, workers: int | None = None, progress: bool = True) -> SourceClips:
    """The planned clip set: the cached one when complete, else simulated now (progress bar with ETA).

    Args:
        plan: what to simulate (:func:`plan_source_clips`).
        workers: simulation processes (default :func:`default_workers`).
        progress: show ``sst simulate``'s progress bar.
    """
    from sst_ros.sim.cli import run_simulate

    final = plan.folder
    if is_complete(final, plan.n):
        log.info("using cached source clips %s (%d clips, scene config from %s)", final, plan.n, plan.scene.origin)
        return SourceClips(final, True, plan)
    _remove_stale(final)
    if final.exists():
        log.warning("cached source clips %s are incomplete (an interrupted run?); simulating them again", final)
    tmp = final.with_name(f"{final.name}{_PARTIAL}{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    n_workers = default_workers() if workers is None else workers
    if n_workers < 1:
        raise ConfigError(f"--source-workers must be >= 1, got {n_workers}")
    log.info(
        "simulating %d source clips of %g s for array %s (scene config from %s, seed %d, %d workers) into %s",
        plan.n, plan.duration_s, plan.array.name, plan.scene.origin, plan.seed, n_workers, final,
    )  # fmt: skip
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        run_simulate(plan.scene.config, plan.array, plan.n, tmp, workers=n_workers, seed=plan.seed,
                     duration_s=plan.duration_s, subtype=_SUBTYPE, progress=progress)  # fmt: skip
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _publish(tmp, final, plan.n)
    log.info("source clips ready in %s (cached for later runs)", final)
    return SourceClips(final, False, plan)
