"""A trained tracker loaded for inference, whichever backend runs it.

Two backends run the same network on the same numpy features
(:mod:`sst_ros.model.features`):

* **PyTorch**: a checkpoint (``*.pt``, written by training and adaptation) loaded by
  :func:`sst_ros.model.checkpoint.load_checkpoint` into a ``LoadedModel``; needs torch.
* **ONNX Runtime**: an export (``*.onnx``, written by ``sst export --onnx``) loaded by
  :func:`sst_ros.model.onnx_runtime.load_onnx` into an ``OnnxModel``; needs onnxruntime and
  not torch (a robot's install: ``pip install sst_ros[onnx]``).

Both are a :class:`TrackerModel`: the geometry, feature and network configuration, provenance,
and one streaming :meth:`TrackerModel.step`. Everything that runs a model (streaming
:class:`~sst_ros.model.stream.StreamingTracker`, offline
:func:`~sst_ros.model.infer.predict_audio`, the node's pipeline, ``sst predict`` and ``sst
evaluate``) uses only that, through :func:`load_model`, which picks the backend from the file
name. This module imports neither torch nor onnxruntime: :func:`load_model` imports the one the
file needs, and names the fix when it is missing.

The package ships the default model twice: ``sst_ros/models/default.pt`` and its export
``default.onnx`` (:func:`default_model_path`). Without a path, :func:`load_model` loads the
export where onnxruntime is installed (the cheaper runtime) and the checkpoint where only torch is.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sst_ros.errors import ConfigError, ModelError
from sst_ros.geometry import MicArray
from sst_ros.model.config import ModelConfig
from sst_ros.model.device import check_device_spec, resolve_device
from sst_ros.model.direction_prior import DirectionPrior
from sst_ros.model.features import FeatureConfig

__all__ = [
    "ONNX_SUFFIX",
    "TrackerModel",
    "check_array_matches",
    "check_audio_matches",
    "check_feature_geometry",
    "default_model_path",
    "load_model",
]

ONNX_SUFFIX = ".onnx"
"""File name ending of an ONNX export; every other model file is read as a PyTorch checkpoint."""

log = logging.getLogger(__name__)


class TrackerModel(Protocol):
    """What inference needs from a loaded model (``LoadedModel`` or ``OnnxModel``).

    Attributes:
        array: microphone geometry the model was trained for.
        feature_cfg: feature parameters (sample rate, STFT, feature kind).
        model_cfg: network shape and azimuth grid (``model_cfg.grid``).
        provenance: training provenance (data, seed, steps, metrics, ...); an export's also
            names its source checkpoint and that file's SHA-256.
        path: file it was loaded from (None if built in memory).
        direction_prior: spectrum weights learned by ``sst adapt``
            (:mod:`sst_ros.model.direction_prior`), applied by :meth:`step`; None = none.
    """

    array: MicArray
    feature_cfg: FeatureConfig
    model_cfg: ModelConfig
    provenance: dict[str, Any]
    path: Path | None
    direction_prior: DirectionPrior | None

    @property
    def backend(self) -> str:
        """What runs the network: ``"torch"`` or ``"onnxruntime"``."""
        ...

    @property
    def frame_s(self) -> float:
        """Output frame length in seconds (100 ms)."""
        ...

    def step(self, features: np.ndarray, state: Any | None = None) -> tuple[np.ndarray, np.ndarray, Any]:
        """Streaming pass over newly arrived feature frames.

        Args:
            features: float32 (``feature_cfg.n_planes(M)``, ``model_cfg.n_freq``, t_new) feature
                frames in time order (any t_new >= 0, e.g. from
                :meth:`~sst_ros.model.features.StreamingFeatures.process`).
            state: what the previous call returned (None = start of a stream). Opaque: only the
                backend that made it reads it.
        Returns:
            spectrum float32 (T_out, K) in [0, 1], activity float32 (T_out,) in [0, 1] for the
            output frames these frames complete (the spectrum weighted by
            :attr:`direction_prior` when set), and the new state. From ``None`` over a
            whole clip this is the offline pass (causal: streaming and offline agree).
        """
        ...


def default_model_path(onnx: bool = False) -> Path:
    """Path of the shipped default model: the PyTorch checkpoint ``sst_ros/models/default.pt``, or with
    ``onnx`` its ONNX export ``default.onnx`` (``sst export --onnx``; runs without torch)."""
    return Path(__file__).resolve().parent.parent / "models" / ("default" + (ONNX_SUFFIX if onnx else ".pt"))


def load_model(
    path: str | os.PathLike[str] | None = None,
    *,
    threads: int | None = None,
    device: str = "cpu",
    direction_prior: bool = True,
) -> TrackerModel:
    """Load a model for inference with the backend its file needs.

    Args:
        path: ``*.onnx`` (an ``sst export --onnx`` file: ONNX Runtime) or a PyTorch checkpoint
            (any other name, e.g. ``*.pt``); None = the shipped default model: its ONNX export where
            onnxruntime is installed, else the checkpoint (logged).
        threads: CPU threads for the network: ONNX Runtime's intra-op threads of this model's
            session, or torch's process-wide ``torch.set_num_threads``. None = the backend's
            default (all cores).
        device: where a PyTorch checkpoint's network runs (``cpu``, ``auto``, ``cuda``, ``cuda:N``:
            :func:`~sst_ros.model.device.resolve_device`); an ONNX export runs on the CPU only, and
            without a path a CUDA device picks the checkpoint.
        direction_prior: keep the file's direction prior (``sst adapt``), if it has one; False
            runs without it (the model's ``direction_prior`` is None).
    Returns:
        a :class:`TrackerModel` (``OnnxModel`` or ``LoadedModel``).
    Raises:
        ConfigError: ``threads`` below 1; a device that is not there, or an ONNX export asked
            to run on CUDA.
        ModelError: the file is missing, unreadable or inconsistent, or the backend it needs is
            not installed (the message names the package to install, or for a checkpoint without
            torch, the export that avoids it).
    """
    if threads is not None and int(threads) < 1:
        raise ConfigError(f"model threads must be >= 1, got {threads}")
    spec = check_device_spec(device)
    given = Path(path) if path is not None else None
    onnx_given = given is not None and given.suffix.lower() == ONNX_SUFFIX
    target = None if onnx_given and spec == "auto" else _accelerator(spec)  # an export runs on the CPU
    p = given if given is not None else (default_model_path() if target is not None else _default_model())
    if p.suffix.lower() == ONNX_SUFFIX:
        if target is not None:
            raise ConfigError(
                f"model {p} is an ONNX export, which runs on the CPU (onnxruntime); use --device cpu, or give the "
                "PyTorch checkpoint it was exported from to run on CUDA"
            )
        from sst_ros.model.onnx_runtime import load_onnx

        model: TrackerModel = load_onnx(p, threads=threads)
    else:
        torch = _import_torch(p)
        if threads is not None:
            torch.set_num_threads(int(threads))
        from sst_ros.model.checkpoint import load_checkpoint

        loaded = load_checkpoint(p)
        model = loaded.to(target) if target is not None else loaded
    if not direction_prior:
        model.direction_prior = None
    return model


def _accelerator(spec: str) -> Any | None:
    """The non-CPU ``torch.device`` that ``spec`` names, or None where it names the CPU (``cpu``;
    ``auto`` without a GPU or without torch).

    Raises:
        ConfigError: a GPU that is not there, or asked for without torch installed.
    """
    if spec == "cpu":
        return None
    try:
        dev = resolve_device(spec)
    except ImportError as err:
        if spec == "auto":
            return None
        raise ConfigError(f"--device {spec} needs torch, which is not installed ({err}); use --device cpu") from err
    return None if dev.type == "cpu" else dev


def _default_model() -> Path:
    """The shipped default model for the installed runtimes (one log line says which).

    The ONNX export ``default.onnx`` where onnxruntime imports: the same network (within 1e-4 of
    the checkpoint, checked when it was exported) at about two thirds of the CPU on the node's
    path and a third of the memory, because torch is not imported at all
    (``bench/bench_streaming.py``). Otherwise the checkpoint ``default.pt`` where torch imports;
    with neither, the export (loading it names the install).
    """
    onnx, checkpoint = default_model_path(onnx=True), default_model_path()
    try:
        import onnxruntime  # noqa: F401  # imported, not looked up: a broken install must not be picked
    except ImportError as err:
        try:
            import torch  # noqa: F401
        except ImportError:
            return onnx
        log.info("default model: the shipped checkpoint %s (torch; onnxruntime is not installed: %s)", checkpoint, err)
        return checkpoint
    log.info("default model: the shipped ONNX export %s (onnxruntime)", onnx)
    return onnx


def _import_torch(checkpoint: Path) -> Any:
    """torch, or a ModelError naming the two fixes (export to ONNX, or install torch)."""
    try:
        import torch
    except ImportError as err:
        onnx = checkpoint.with_suffix(ONNX_SUFFIX)
        raise ModelError(
            f"model file {checkpoint} is a PyTorch checkpoint and torch is not installed ({err}); either run an "
            f"ONNX export of it, made once on a machine with torch (`sst export --onnx {checkpoint} {onnx}`, then "
            f"pass {onnx.name} as the model; needs only `pip install sst_ros[onnx]`), or install torch "
            "(`pip install sst_ros[train]`)"
        ) from err
    return torch


def check_feature_geometry(feature_cfg: FeatureConfig, array: MicArray, where: str) -> None:
    """SRP features steer with their own copy of the geometry: it must be the array's.

    Raises:
        ModelError: naming ``where`` (the file) and the fix.
    """
    if feature_cfg.mic_positions_m is None:
        return
    pos = np.asarray(feature_cfg.mic_positions_m, dtype=np.float64)
    if pos.shape != array.positions_m.shape or float(np.abs(pos - array.positions_m).max()) > 1e-6:
        raise ModelError(
            f"{where}: the features steer with microphone positions that are not those of array "
            f"'{array.name}'; the file is inconsistent, re-train or re-export it"
        )


def check_audio_matches(loaded: TrackerModel, n_channels: int) -> None:
    """Refuse microphone audio whose channel count is not the model's microphone count.

    The model takes microphone audio only: select the microphones of a device stream first
    (:meth:`sst_ros.geometry.MicArray.microphone_audio`).

    Raises:
        ModelError: naming both counts and the fix.
    """
    arr = loaded.array
    if n_channels != arr.n_mics:
        raise ModelError(
            f"audio has {n_channels} channels but the model was trained for array '{arr.name}' with "
            f"{arr.n_mics} microphones and takes microphone audio only; use a model trained for this array "
            "(`sst train --array ...`), or select the microphones of the device stream first "
            "(MicArray.microphone_audio)"
        )


def check_array_matches(loaded: TrackerModel, array: MicArray) -> None:
    """Refuse a geometry that differs from the one the model was trained for.

    Microphone count and positions (:meth:`MicArray.geometry_mismatch`, in the model's
    microphone order) must match.

    Raises:
        ModelError: naming both arrays, what differs and the fix.
    """
    mismatch = loaded.array.geometry_mismatch(array)
    if mismatch is not None:
        raise ModelError(
            f"{mismatch}, and the model was trained for '{loaded.array.name}': a model only works for the "
            f"geometry it was trained for; train one with `sst train --array {array.name}`"
        )
