"""Synthetic labelled clips for the model/training tests: plane waves of noise bursts.

Not a room simulator: a free-field plane wave from a known azimuth reaches each microphone
with the exact (fractional) delay ``-(p_m . u) / c``; bursts of noise alternate with silence so
labels have active and inactive frames; a little independent sensor noise is added.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sst_ros.data.clipset import Labels, write_array_yaml, write_clip
from sst_ros.geometry import MicArray
from sst_ros.sim.plane_wave import FS_HZ, plane_wave, with_sensor_noise

if TYPE_CHECKING:
    from sst_ros.model.checkpoint import LoadedModel

FS = FS_HZ
FRAME = 1600


def make_clip(
    array: MicArray,
    azimuth_deg: float,
    n_frames: int,
    rng: np.random.Generator,
    active_pattern: np.ndarray | None = None,
    source: np.ndarray | None = None,
) -> tuple[np.ndarray, Labels]:
    """A static source at ``azimuth_deg``, on where ``active_pattern`` (per 100 ms frame): band-limited
    noise bursts, or ``source`` ((n_frames * FRAME + 256,) samples, e.g.
    :func:`sst_ros.sim.plane_wave.speech_signal`), over a sensor noise floor."""
    if active_pattern is None:
        active_pattern = np.ones(n_frames, dtype=bool)
        active_pattern[rng.integers(0, n_frames, size=max(1, n_frames // 5))] = False
    wave = plane_wave(array, azimuth_deg, n_frames * FRAME, rng, source)
    gate = np.repeat(active_pattern.astype(np.float32), FRAME)[:, None]
    audio = with_sensor_noise(wave * gate, rng)
    labels = Labels(
        time_s=np.arange(n_frames) * 0.1,
        azimuth_deg=np.full(n_frames, azimuth_deg),
        elevation_deg=np.zeros(n_frames),
        active=active_pattern,
    )
    return audio, labels


def write_clipset(
    out_dir: Path, array: MicArray, azimuths_deg: list[float], n_frames: int, seed: int
) -> Path:
    """A clip-set folder (array.yaml + WAV/CSV pairs), one static source per clip."""
    rng = np.random.default_rng(seed)
    write_array_yaml(out_dir, array)
    for i, az in enumerate(azimuths_deg):
        audio, labels = make_clip(array, az, n_frames, rng)
        write_clip(out_dir, f"clip{i:03d}", audio, FS, labels)
    return out_dir


def tiny_adaptation_inputs(tmp_path: Path, rng: np.random.Generator) -> dict:
    """A tiny adaptation problem on a two-microphone pair: an untrained ``tiny`` source model
    (torch seed 0), 4 labelled 2 s plane-wave clips and 2 unlabelled 3 s target WAVs.

    Returns:
        dict with ``ckpt`` (source checkpoint), ``src`` (clip set), ``tgt`` (target folder),
        ``out`` (where an adapted model would go), ``array`` and ``model_cfg``.
    """
    import torch

    from sst_ros.audio.wav import write_wav
    from sst_ros.geometry import load_array
    from sst_ros.model.azimuth import grid_for_array
    from sst_ros.model.checkpoint import save_checkpoint
    from sst_ros.model.crnn import CRNN, ModelConfig
    from sst_ros.model.features import FeatureConfig

    torch.manual_seed(0)
    array = load_array({"name": "test_pair", "microphones_m": [[0.0, 0.09, 0.0], [0.0, -0.09, 0.0]]})
    mc = ModelConfig.preset("tiny", array.n_mics, grid=grid_for_array(array))
    ckpt = save_checkpoint(tmp_path / "source.pt", CRNN(mc).eval(), array, FeatureConfig(), mc, {"kind": "test"})
    src = tmp_path / "sim"
    for i in range(4):
        az = float(rng.uniform(-90, 90))
        lab = Labels(np.arange(20) * 0.1, np.full(20, az), np.zeros(20), np.ones(20, bool))
        write_clip(src, f"c{i}", plane_wave(array, az, 2 * FS, rng), FS, lab)
    write_array_yaml(src, array)
    for i in range(2):
        write_wav(tmp_path / "tgt" / f"r{i}.wav", 3 * plane_wave(array, 10.0 * i, 3 * FS, rng), FS)
    return {"ckpt": ckpt, "src": src, "tgt": tmp_path / "tgt", "out": tmp_path / "adapted.pt", "array": array,
            "model_cfg": mc}  # fmt: skip


def random_model(
    array: MicArray, preset: str, seed: int, phase_reference: bool = True, kind: str = "stft", **overrides: Any
) -> LoadedModel:
    """An untrained network of ``preset`` for ``array`` with non-trivial BatchNorm statistics (as after
    training), in eval mode: ``stft`` features (phase-referenced or not) or ``srp`` features;
    ``overrides``: other :class:`ModelConfig` fields (e.g. ``interferer_map=True``)."""
    import torch

    from sst_ros.model.azimuth import grid_for_array
    from sst_ros.model.checkpoint import LoadedModel
    from sst_ros.model.crnn import CRNN, ModelConfig
    from sst_ros.model.features import FeatureConfig, feature_config_for

    torch.manual_seed(seed)
    if kind == "srp":
        fcfg = feature_config_for(array.positions_m, kind="srp")
        cfg = ModelConfig.preset(
            preset, array.n_mics, grid=grid_for_array(array), n_freq=fcfg.n_rows,
            in_planes=fcfg.n_planes(array.n_mics), freq_pool=(2, 2, 2, 2, 2), **overrides,
        )  # fmt: skip
    else:
        fcfg = FeatureConfig(phase_reference=phase_reference)
        cfg = ModelConfig.preset(preset, array.n_mics, grid=grid_for_array(array), **overrides)
    model = CRNN(cfg)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return LoadedModel(model.eval(), array, fcfg, cfg, {"test": True})
