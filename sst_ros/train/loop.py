"""Source training of the CRNN tracker on labelled clip sets (or on-the-fly simulation).

Per step: ``batch_size`` random crops of ``crop_s`` seconds (aligned to the 100 ms label
grid) from the training clips, optionally transformed by a random array symmetry
(:mod:`sst_ros.train.augment`), turned into causal features, passed through the CRNN from a
zero state. Loss = ``spectrum_weight * L_spec + activity_weight * L_act``, where ``L_spec``
is the binary cross-entropy (or MSE) of the spatial spectrum against a Gaussian bump around
the true azimuth, zeroed on inactive frames (:meth:`AzimuthGrid.targets`), and ``L_act`` the
binary cross-entropy of the activity output against the label. Adam with a cosine learning
rate decay.

Every ``val_every`` steps the model runs over the whole validation clips (offline, causal)
and MAE, ACC5/ACC10 (active frames) and activity F1 are logged to ``metrics.jsonl``. The run
folder keeps ``config.yaml`` (the typed config), ``latest.pt`` (with optimiser state, to
resume) and ``best.pt`` (lowest validation MAE, no optimiser state); both checkpoints carry
geometry, configs, label resolution and provenance (data, seed, steps, metrics).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from sst_ros.errors import ConfigError, DataError
from sst_ros.geometry import MicArray, load_array
from sst_ros.model.azimuth import grid_for_array
from sst_ros.model.checkpoint import load_checkpoint, save_checkpoint
from sst_ros.model.crnn import CRNN, ModelConfig
from sst_ros.model.features import FeatureConfig, compute_features, feature_config_for
from sst_ros.train.augment import Symmetry, apply_symmetry, array_symmetries
from sst_ros.train.losses import task_loss_per_frame
from sst_ros.train.metrics import doa_metrics

__all__ = ["ClipSource", "TrainConfig", "evaluate_clips", "train"]

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything a training run needs (saved as ``config.yaml`` in the run folder).

    Attributes:
        array: array name or geometry YAML path.
        data: training clip-set folders.
        val_data: validation clip-set folders (empty: hold out ``val_fraction`` of the training clips).
        simulate_config: scene config YAML for on-the-fly simulation instead of ``data`` (optional).
        preset: model size preset (``cpu``, ``tiny``, ``paper``).
        model: overrides of :class:`ModelConfig` fields.
        features: overrides of :class:`FeatureConfig` fields.
        resolution_deg: azimuth bin spacing, degrees.
        sigma_deg: Gaussian target width, degrees.
        crop_s: training crop length, seconds (multiple of 0.1).
        batch_size: clips per step.
        steps: optimisation steps.
        lr: peak learning rate (Adam); cosine decay to ``lr * lr_final_fraction``.
        lr_final_fraction: final learning rate as a fraction of ``lr``.
        weight_decay: Adam weight decay.
        loss: spectrum loss, ``bce`` or ``mse``.
        spectrum_weight: weight of the spectrum loss.
        activity_weight: weight of the activity loss.
        augment_symmetry: apply random array symmetries.
        gain_db_range: random overall gain, dB (features are normalised; this exercises it).
        val_every: steps between validations.
        val_clips: at most this many validation clips (0 = all).
        val_fraction: held-out fraction when no ``val_data`` is given.
        seed: seed of everything random.
        num_threads: torch threads.
        max_time_min: stop early (checkpointing) after this wall time, minutes (0 = no limit).
        sim_duration_s: clip length for on-the-fly simulation, seconds.
    """

    array: str = "respeaker_usb_v2"
    data: list[str] = field(default_factory=list)
    val_data: list[str] = field(default_factory=list)
    simulate_config: str | None = None
    preset: str = "cpu"
    model: dict[str, Any] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)
    resolution_deg: float = 5.0
    sigma_deg: float = 10.0
    crop_s: float = 4.0
    batch_size: int = 16
    steps: int = 2000
    lr: float = 2e-3
    lr_final_fraction: float = 0.05
    weight_decay: float = 0.0
    loss: str = "bce"
    spectrum_weight: float = 5.0
    activity_weight: float = 0.2
    augment_symmetry: bool = True
    gain_db_range: float = 6.0
    val_every: int = 200
    val_clips: int = 200
    val_fraction: float = 0.05
    seed: int = 0
    num_threads: int = 2
    max_time_min: float = 0.0
    sim_duration_s: float = 5.0

    def __post_init__(self) -> None:
        if self.loss not in ("bce", "mse"):
            raise ConfigError(f"train config: loss must be 'bce' or 'mse', got '{self.loss}'")
        if self.batch_size < 1 or self.steps < 0 or self.val_every < 1:
            raise ConfigError("train config: batch_size and val_every must be >= 1 and steps >= 0")
        if self.crop_s <= 0:
            raise ConfigError(f"train config: crop_s must be > 0, got {self.crop_s}")
        if isinstance(self.data, str):
            self.data = [d for d in self.data.split(",") if d]
        if isinstance(self.val_data, str):
            self.val_data = [d for d in self.val_data.split(",") if d]

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> TrainConfig:
        """Load from YAML; unknown keys are a :class:`ConfigError` naming them."""
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"train config {p}: cannot read: {err}") from err
        if not isinstance(data, dict):
            raise ConfigError(f"train config {p}: must be a mapping")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"train config {p}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return dataclasses.asdict(self)


# ---- data ----------------------------------------------------------------------------------
@dataclass
class _Example:
    audio: np.ndarray  # (n, M) float32 at the feature rate
    azimuth_deg: np.ndarray  # (F,)
    active: np.ndarray  # (F,) bool


class ClipSource:
    """Labelled clips from one or more clip-set folders, checked against the array.

    Args:
        dirs: clip-set folders.
        array: geometry the clips must have been made with (``array.yaml`` compared when present).
        sample_rate_hz: rate the audio is returned at (resampled when different).
    """

    def __init__(self, dirs: list[str | os.PathLike[str]], array: MicArray, sample_rate_hz: int) -> None:
        from sst_ros.data.clipset import ClipSet

        self.sets = []
        self.items: list[tuple[Any, Any]] = []
        for d in dirs:
            cs = ClipSet(d)
            if len(cs) == 0:
                raise DataError(f"clip set {d} holds no clips (<name>.wav + <name>.csv); check the path")
            if cs.array is not None:
                _check_same_geometry(cs.array, array, str(d))
            self.sets.append(cs)
            self.items.extend((cs, c) for c in cs.clips)
        self.array = array
        self.sample_rate_hz = sample_rate_hz

    def __len__(self) -> int:
        return len(self.items)

    def names(self) -> list[str]:
        """``<folder>/<clip>`` of every clip."""
        return [f"{cs.dir.name}/{c.name}" for cs, c in self.items]

    def load(self, index: int) -> _Example:
        """Clip ``index`` as audio (n, M) at the feature rate plus per-frame labels."""
        cs, clip = self.items[index]
        audio, fs, labels = cs.load(clip)
        if audio.shape[1] != self.array.n_mics:
            raise DataError(f"{clip.wav_path}: {audio.shape[1]} channels, array has {self.array.n_mics} microphones")
        if fs != self.sample_rate_hz:
            from sst_ros.audio.resample import resample

            audio = resample(audio, fs, self.sample_rate_hz)
        if abs(labels.frame_s - 0.1) > 1e-6:
            raise DataError(f"{clip.csv_path}: label frames of {labels.frame_s} s; the model needs 0.1 s")
        return _Example(np.asarray(audio, dtype=np.float32), labels.azimuth_deg, labels.active)


def _check_same_geometry(a: MicArray, b: MicArray, where: str) -> None:
    if a.n_mics != b.n_mics or float(np.abs(a.positions_m - b.positions_m).max()) > 1e-3:
        raise DataError(
            f"clip set {where} was made for array '{a.name}' ({a.n_mics} mics), not the training array "
            f"'{b.name}' ({b.n_mics} mics); pass the matching --array or regenerate the clips"
        )


def _crop(ex: _Example, n_frames: int, samples_per_frame: int, rng: np.random.Generator) -> _Example:
    n_avail = min(len(ex.active), ex.audio.shape[0] // samples_per_frame)
    if n_avail >= n_frames:
        s = int(rng.integers(0, n_avail - n_frames + 1))
        a = ex.audio[s * samples_per_frame : (s + n_frames) * samples_per_frame]
        return _Example(a, ex.azimuth_deg[s : s + n_frames], ex.active[s : s + n_frames])
    a = np.zeros((n_frames * samples_per_frame, ex.audio.shape[1]), dtype=np.float32)
    a[: n_avail * samples_per_frame] = ex.audio[: n_avail * samples_per_frame]
    az = np.zeros(n_frames)
    act = np.zeros(n_frames, dtype=bool)
    az[:n_avail] = ex.azimuth_deg[:n_avail]
    act[:n_avail] = ex.active[:n_avail]
    return _Example(a, az, act)


# ---- the run -------------------------------------------------------------------------------
@dataclass
class _Setup:
    array: MicArray
    feature_cfg: FeatureConfig
    model_cfg: ModelConfig
    symmetries: list[Symmetry]


def _setup(cfg: TrainConfig) -> _Setup:
    array = load_array(cfg.array)
    fcfg = feature_config_for(array.positions_m, **cfg.features)  # srp steers with the training geometry
    grid = grid_for_array(array, cfg.resolution_deg, cfg.sigma_deg)
    overrides = dict(cfg.model)
    for k in ("conv_channels", "freq_pool", "time_pool", "head_hidden"):
        if k in overrides:
            overrides[k] = tuple(overrides[k])
    overrides.setdefault("in_planes", fcfg.n_planes(array.n_mics))
    mcfg = ModelConfig.preset(cfg.preset, array.n_mics, grid=grid, n_freq=fcfg.n_rows, **overrides)
    syms = array_symmetries(array) if cfg.augment_symmetry else []
    return _Setup(array, fcfg, mcfg, syms)


def _batch(
    examples: list[_Example], setup: _Setup, cfg: TrainConfig, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    spf = setup.feature_cfg.hop * setup.model_cfg.frames_per_output
    n_frames = max(1, int(round(cfg.crop_s / (spf / setup.feature_cfg.sample_rate_hz))))
    feats, targets, acts = [], [], []
    for ex in examples:
        ex = _crop(ex, n_frames, spf, rng)
        audio, az = ex.audio, ex.azimuth_deg
        if setup.symmetries:
            audio, az = apply_symmetry(audio, az, setup.symmetries[int(rng.integers(len(setup.symmetries)))])
        if cfg.gain_db_range > 0:
            audio = audio * np.float32(10 ** (rng.uniform(-cfg.gain_db_range, cfg.gain_db_range) / 20))
        feats.append(compute_features(audio, setup.feature_cfg))
        targets.append(torch.from_numpy(setup.model_cfg.grid.targets(az, ex.active)))
        acts.append(torch.from_numpy(ex.active.astype(np.float32)))
    return torch.stack(feats), torch.stack(targets), torch.stack(acts)


def _loss(model: CRNN, x: torch.Tensor, target: torch.Tensor, active: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    spec_logit, act_logit = model.head_logits(model.extract(x))
    T = min(spec_logit.shape[1], target.shape[1])
    spec_logit, act_logit, target, active = spec_logit[:, :T], act_logit[:, :T], target[:, :T], active[:, :T]
    return task_loss_per_frame(
        spec_logit, act_logit, target, active,
        spectrum_loss=cfg.loss, spectrum_weight=cfg.spectrum_weight, activity_weight=cfg.activity_weight,
    ).mean()


def evaluate_clips(
    model: CRNN, source: ClipSource, feature_cfg: FeatureConfig, indices: list[int] | None = None
) -> dict[str, float]:
    """Offline causal inference over whole clips; metrics pooled over all their frames."""
    model.eval()
    preds, trues, acts, pacts = [], [], [], []
    idx = range(len(source)) if indices is None else indices
    with torch.inference_mode():
        for i in idx:
            ex = source.load(i)
            out = model(compute_features(ex.audio, feature_cfg)[None])
            T = min(out.spectrum.shape[1], len(ex.active))
            preds.append(model.decode(out.spectrum[0, :T]))
            pacts.append(out.activity[0, :T].numpy())
            trues.append(ex.azimuth_deg[:T])
            acts.append(ex.active[:T])
    if not preds:
        return doa_metrics(np.zeros(0), np.zeros(0), np.zeros(0, bool), np.zeros(0))
    return doa_metrics(
        np.concatenate(preds),
        np.concatenate(trues),
        np.concatenate(acts),
        np.concatenate(pacts),
        identifiable=model.cfg.grid,
    )


def _git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _sim_iterator(cfg: TrainConfig, array: MicArray, seed: int) -> Iterator[_Example]:
    """Endless freshly simulated clips (``simulate_config``), seeds ``seed, seed + 1, ...``."""
    from sst_ros.sim import simulate_scene  # type: ignore[attr-defined]
    from sst_ros.sim.config import load_scene_config

    scfg = load_scene_config(cfg.simulate_config)
    k = seed
    while True:
        scene = simulate_scene(scfg, array, k, cfg.sim_duration_s)
        k += 1
        yield _Example(np.asarray(scene.audio, np.float32), scene.labels.azimuth_deg, scene.labels.active)


def train(
    cfg: TrainConfig,
    out_dir: str | os.PathLike[str],
    resume: bool = False,
    progress: bool = True,
    on_validation: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) a training run.

    Args:
        cfg: the run's configuration.
        out_dir: run folder (``config.yaml``, ``latest.pt``, ``best.pt``, ``metrics.jsonl``).
        resume: continue from ``out_dir/latest.pt``.
        progress: show a tqdm progress bar.
        on_validation: called with (step, metrics) after each validation.
    Returns:
        summary dict: steps, wall time, best and last validation metrics, checkpoint paths.
    """
    out = Path(out_dir)
    latest, best_path = out / "latest.pt", out / "best.pt"
    if latest.exists() and not resume:
        raise ConfigError(f"run folder {out} already holds a run (latest.pt); pass --resume or choose a new --out")
    torch.set_num_threads(max(1, cfg.num_threads))
    setup = _setup(cfg)
    fcfg, mcfg, array = setup.feature_cfg, setup.model_cfg, setup.array

    # data
    sim_iter: Iterator[_Example] | None = None
    if cfg.simulate_config:
        train_src = None
    else:
        if not cfg.data:
            raise ConfigError("no training data: give --data DIR[,DIR] or --simulate CONFIG")
        train_src = ClipSource(cfg.data, array, fcfg.sample_rate_hz)
    train_idx = list(range(len(train_src))) if train_src else []
    if cfg.val_data:
        val_src: ClipSource | None = ClipSource(cfg.val_data, array, fcfg.sample_rate_hz)
        val_idx = list(range(len(val_src)))
    elif train_src is not None and len(train_src) >= 2:
        n_val = max(1, int(round(cfg.val_fraction * len(train_src))))
        val_src, val_idx = train_src, train_idx[-n_val:]
        train_idx = train_idx[:-n_val]
    else:
        val_src, val_idx = None, []
    if cfg.val_clips > 0:
        val_idx = val_idx[: cfg.val_clips]

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = CRNN(mcfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, best_mae, history, elapsed_before = 0, math.inf, [], 0.0
    best_metrics: dict[str, float] = {}
    if resume:
        if not latest.exists():
            raise ConfigError(f"--resume: {latest} does not exist")
        ck = load_checkpoint(latest, with_train_state=True)
        ts = ck.extra.get("train_state") or {}
        model.load_state_dict(ck.model.state_dict())
        opt.load_state_dict(ts["optimizer"])
        step, best_mae = int(ts["step"]), float(ts["best_mae"])
        best_metrics = dict(ts.get("best_metrics", {}))
        elapsed_before = float(ts.get("elapsed_s", 0.0))
        rng = np.random.default_rng([cfg.seed, step])
        torch.manual_seed(cfg.seed + step)
        log.info("resumed %s at step %d", latest, step)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    def provenance(metrics: dict[str, float]) -> dict[str, Any]:
        return {
            "data": [str(Path(d).resolve()) for d in cfg.data],
            "val_data": [str(Path(d).resolve()) for d in cfg.val_data],
            "simulate_config": cfg.simulate_config,
            "n_train_clips": len(train_idx),
            "n_val_clips": len(val_idx),
            "seed": cfg.seed,
            "step": step,
            "batch_size": cfg.batch_size,
            "train_config": cfg.to_dict(),
            "val_metrics": metrics,
            "git_revision": _git_revision(),
            "torch": str(torch.__version__),
            "python": sys.version.split()[0],
            "host": platform.node(),
            "elapsed_s": round(elapsed_before + time.monotonic() - t_start, 1),
            "saved_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def lr_at(s: int) -> float:
        frac = min(1.0, s / max(1, cfg.steps))
        lo = cfg.lr * cfg.lr_final_fraction
        warm = min(1.0, (s + 1) / 50)
        return warm * (lo + 0.5 * (cfg.lr - lo) * (1 + math.cos(math.pi * frac)))

    def save_latest(metrics: dict[str, float]) -> None:
        ts = {
            "optimizer": opt.state_dict(),
            "step": step,
            "best_mae": best_mae,
            "best_metrics": best_metrics,
            "elapsed_s": elapsed_before + time.monotonic() - t_start,
        }
        save_checkpoint(latest, model, array, fcfg, mcfg, provenance(metrics), train_state=ts)

    def validate() -> dict[str, float]:
        nonlocal best_mae, best_metrics
        if val_src is None or not val_idx:
            return {}
        m = evaluate_clips(model, val_src, fcfg, val_idx)
        m = {k: (round(float(v), 5) if isinstance(v, float) else v) for k, v in m.items()}
        rec = {"step": step, "elapsed_s": round(elapsed_before + time.monotonic() - t_start, 1), **m}
        history.append(rec)
        with (out / "metrics.jsonl").open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        log.info(
            "step %d: val MAE %.2f deg, ACC5 %.3f, ACC10 %.3f, activity F1 %.3f (%d active frames)",
            step, m["mae_deg"], m["acc5"], m["acc10"], m["activity_f1"], m["n_active"],
        )
        if math.isfinite(m["mae_deg"]) and m["mae_deg"] < best_mae:
            best_mae, best_metrics = m["mae_deg"], m
            save_checkpoint(best_path, model, array, fcfg, mcfg, provenance(m))
        if on_validation is not None:
            on_validation(step, m)
        model.train()
        return m

    t_start = time.monotonic()
    log.info(
        "training %s (%d parameters) on %d clips (%d validation), %d steps of %d x %.1f s, %d symmetries",
        cfg.preset, model.n_parameters(), len(train_idx) if train_src else -1, len(val_idx),
        cfg.steps, cfg.batch_size, cfg.crop_s, len(setup.symmetries),
    )
    if train_src is not None and not train_idx:
        raise DataError("no training clips left after holding out validation clips; add clips or pass --val")
    if cfg.simulate_config:  # fresh scenes; a resumed run continues with new seeds
        sim_iter = _sim_iterator(cfg, array, cfg.seed * 1_000_003 + step * cfg.batch_size)
    model.train()
    order: list[int] = []
    bar = None
    if progress:
        from tqdm import tqdm

        interval = 1.0 if sys.stderr.isatty() else 30.0
        bar = tqdm(total=cfg.steps, initial=step, desc="train", unit="step", mininterval=interval)
    last_metrics: dict[str, float] = {}
    ema_loss = None
    stopped_early = False
    while step < cfg.steps:
        if sim_iter is not None:
            examples = [next(sim_iter) for _ in range(cfg.batch_size)]
        else:
            examples = []
            for _ in range(cfg.batch_size):
                if not order:
                    order = rng.permutation(train_idx).tolist()
                examples.append(train_src.load(order.pop()))  # type: ignore[union-attr]
        x, target, active = _batch(examples, setup, cfg, rng)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = _loss(model, x, target, active, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        lv = float(loss.detach())
        ema_loss = lv if ema_loss is None else 0.95 * ema_loss + 0.05 * lv
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{ema_loss:.4f}", lr=f"{lr_at(step):.1e}", refresh=False)
        if step % cfg.val_every == 0 or step == cfg.steps:
            last_metrics = validate() or last_metrics
            save_latest(last_metrics)
            log.info("step %d: train loss %.4f", step, ema_loss)
        if cfg.max_time_min > 0 and elapsed_before + time.monotonic() - t_start > 60 * cfg.max_time_min:
            log.warning("time limit of %.1f min reached at step %d; stopping", cfg.max_time_min, step)
            if step % cfg.val_every != 0:
                last_metrics = validate() or last_metrics
                save_latest(last_metrics)
            stopped_early = True
            break
    if bar is not None:
        bar.close()
    if not best_path.exists():  # no validation data: the last model is the best we know
        save_checkpoint(best_path, model, array, fcfg, mcfg, provenance(last_metrics))
    if not latest.exists():
        save_latest(last_metrics)
    summary = {
        "steps": step,
        "stopped_early": stopped_early,
        "wall_s": round(elapsed_before + time.monotonic() - t_start, 1),
        "best_val": best_metrics,
        "last_val": last_metrics,
        "final_train_loss": ema_loss,
        "latest": str(latest),
        "best": str(best_path),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
