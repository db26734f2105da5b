"""Model checkpoints: everything needed to run a trained tracker, in one file.

A checkpoint is a ``torch.save`` mapping of plain data (loadable with ``weights_only=True``):

* ``format``: ``"sst_ros.crnn"``, ``version``: :data:`CHECKPOINT_VERSION`
* ``state_dict``: network weights
* ``model_config``, ``feature_config``: :class:`ModelConfig` / :class:`FeatureConfig` as dicts
* ``array``: the microphone geometry the model was trained for (:meth:`MicArray.to_dict`)
* ``label_frame_s``: output frame length in seconds (``OUTPUT_FRAME_S``, 0.1)
* ``provenance``: free-form dict (data sets, seed, steps, metrics, git revision, times)
* optional ``direction_prior``: per-bin spectrum weights learned by ``sst adapt``
  (:class:`~sst_ros.model.direction_prior.DirectionPrior`; absent = none)
* optional ``train_state`` (optimiser, step counters) in training checkpoints only; the
  shipped default model leaves it out to stay small.

Files are only ever read with ``torch.load(..., weights_only=True)`` (:func:`load_torch_file`):
a file holding any other Python object (an old-format file, or a crafted one whose unpickling
would run code) is refused with an error, never unpickled. :func:`tensors_and_plain_data`
turns state to be saved (optimiser state, metrics with numpy numbers, dataclasses) into what
that loader accepts.

Inference code loads models with :func:`sst_ros.model.runtime.load_model`, which reads a
checkpoint here and an ONNX export (``sst export --onnx``, runs without torch) there.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sst_ros.errors import ConfigError, ModelError, SstError
from sst_ros.geometry import MicArray
from sst_ros.model.crnn import CRNN, ModelConfig, StreamState
from sst_ros.model.direction_prior import DirectionPrior
from sst_ros.model.features import FeatureConfig
from sst_ros.model.fused import FusedCRNN, FusedState
from sst_ros.model.runtime import check_feature_geometry, default_model_path
from sst_ros.timebase import OUTPUT_FRAME_S

__all__ = [
    "CHECKPOINT_VERSION",
    "LoadedModel",
    "load_checkpoint",
    "load_torch_file",
    "save_checkpoint",
    "tensors_and_plain_data",
]

CHECKPOINT_VERSION = 1
_FORMAT = "sst_ros.crnn"


def tensors_and_plain_data(value: Any, where: str = "state") -> Any:
    """``value`` as tensors and plain data only: what ``torch.load(weights_only=True)`` reads back.

    Tensors are kept (detached, on the CPU); dicts, lists and tuples are walked; str / int /
    float / bool subclasses become the plain type; numpy scalars become Python numbers, numpy
    arrays lists; dataclass instances dicts of their fields; paths and enums strings / their
    values. Dict keys become str, int, float or bool.

    Args:
        value: the state to save (e.g. an optimiser ``state_dict`` with progress counters).
        where: what is being saved, for the error message.
    Raises:
        ModelError: a value of another type (naming its place in ``value``): such a value would
            need unpickling code to load, which :func:`load_torch_file` refuses.
    """
    return _tensors_and_plain(value, where, "")


_NOT_SCALAR = object()


def _plain_scalar(value: Any) -> Any:
    """A number, bool or string subclass (numpy included) as the plain type, else ``_NOT_SCALAR``."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, enum.Enum):
        return _plain_scalar(value.value)
    return _NOT_SCALAR


def _tensors_and_plain(value: Any, where: str, at: str) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, dict):
        return {_plain_key(k, where, at): _tensors_and_plain(v, where, f"{at}[{k!r}]") for k, v in value.items()}
    if isinstance(value, tuple) and not hasattr(value, "_fields"):  # torch.Size and plain tuples
        return tuple(_tensors_and_plain(v, where, f"{at}[{i}]") for i, v in enumerate(value))
    if isinstance(value, (list, tuple)):  # lists and named tuples
        return [_tensors_and_plain(v, where, f"{at}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return _tensors_and_plain(value.tolist(), where, at)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return {f.name: _tensors_and_plain(getattr(value, f.name), where, f"{at}.{f.name}") for f in fields}
    plain = _plain_scalar(value)
    if plain is _NOT_SCALAR:
        raise ModelError(
            f"{where}: cannot save {type(value).__module__}.{type(value).__qualname__} at {at or 'the top'} as "
            "tensors and plain data (it would need unpickling code to load); convert it to plain data first"
        )
    return plain


def _plain_key(key: Any, where: str, at: str) -> Any:
    if type(key) in (str, int, float, bool):
        return key
    plain = _tensors_and_plain(key, where, f"{at} (a key)")
    if type(plain) not in (str, int, float, bool):
        raise ModelError(f"{where}: dict key {key!r} at {at or 'the top'} is not a str or a number; use plain keys")
    return plain


def load_torch_file(path: Path, what: str, error: type[SstError], fix: str) -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain data, never other objects.

    Args:
        path: the file (existence is the caller's check).
        what: what the file is, for messages (e.g. "model file", "adaptation state").
        error: the :class:`SstError` subclass to raise.
        fix: what the user should do about a refused or unreadable file.
    Raises:
        error: the file holds objects other than tensors and plain data (an old-format file or
            a crafted one; unpickling it could run code, so it is refused, never loaded), or it
            is corrupt or not a PyTorch file. The message names the path, the problem and ``fix``.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "global" not in str(err).lower():  # not a refused object: garbage the unpickler cannot parse
            raise error(f"{what} {path} is corrupt or not a PyTorch file (it cannot be parsed); {fix}") from err
        raise error(
            f"{what} {path} holds Python objects other than tensors and plain data (an old-format file, or a "
            f"crafted one); loading them could run code, so the file is refused and was not loaded; {fix}"
        ) from err
    except Exception as err:  # torch raises many types for a bad file
        raise error(
            f"{what} {path} is corrupt or not a PyTorch file ({type(err).__name__}: {str(err)[:200]}); {fix}"
        ) from err


@dataclass
class LoadedModel:
    """A trained tracker ready to run with PyTorch (a :class:`~sst_ros.model.runtime.TrackerModel`).

    Attributes:
        model: the network, in eval mode, on the CPU (or the device of :meth:`to`).
        array: microphone geometry it was trained for.
        feature_cfg: feature parameters (sample rate, STFT).
        model_cfg: network shape and azimuth grid.
        provenance: training provenance (data, seed, steps, metrics, ...).
        path: file it was loaded from.
        label_frame_s: output frame length, seconds.
        extra: the checkpoint's ``train_state`` when present (training checkpoints only).
        direction_prior: spectrum weights :meth:`step` applies (None = none; set it to None to
            run without the file's prior).
    """

    model: CRNN
    array: MicArray
    feature_cfg: FeatureConfig
    model_cfg: ModelConfig
    provenance: dict[str, Any]
    path: Path | None = None
    label_frame_s: float = OUTPUT_FRAME_S
    extra: dict[str, Any] = field(default_factory=dict)
    direction_prior: DirectionPrior | None = None

    @property
    def backend(self) -> str:
        """``"torch"``."""
        return "torch"

    @property
    def frame_s(self) -> float:
        """Output frame length in seconds (100 ms)."""
        return self.feature_cfg.frame_s * self.model_cfg.frames_per_output

    def to(self, device: torch.device) -> LoadedModel:
        """Move the network to ``device`` (e.g. CUDA for ``sst predict --device cuda``); returns self."""
        self.model.to(device)
        return self

    def step(
        self, features: np.ndarray, state: StreamState | None = None
    ) -> tuple[np.ndarray, np.ndarray, StreamState]:
        """Streaming pass (:meth:`TrackerModel.step <sst_ros.model.runtime.TrackerModel.step>`):
        numpy (P, F, t_new) features in, numpy spectrum (T_out, K) and activity (T_out,) out;
        the state is the network's :class:`~sst_ros.model.crnn.StreamState`.

        An eval-mode network runs in its inference form (:class:`~sst_ros.model.fused.FusedCRNN`:
        BatchNorm folded, channels-last; equal to ``CRNN.step`` to float rounding), built when a
        stream starts (``state`` None) and carried in the state. On another device (:meth:`to`)
        the network's own step runs there; its outputs come back to the CPU. The spectrum is
        weighted by :attr:`direction_prior` when there is one."""
        x = torch.from_numpy(np.asarray(features, dtype=np.float32))[None]  # strides kept: the step lays it out once
        device = next(self.model.parameters()).device
        if self.model.training or device.type != "cpu":  # batch statistics / not the CPU engine
            with torch.inference_mode():
                out, state = self.model.step(x.to(device), state)
            spec, act = out.spectrum[0].cpu().numpy(), out.activity[0].cpu().numpy()
        else:  # the inference form, built at the start of each stream (weights may change between streams)
            engine = state.engine if isinstance(state, FusedState) else None
            if engine is not None and engine.model is not self.model:  # a state from another model's stream
                engine = None
            out, state = (engine or FusedCRNN(self.model)).step(x, state)
            spec, act = out.spectrum[0].numpy(), out.activity[0].numpy()
        if self.direction_prior is not None:
            spec = self.direction_prior.apply(spec)
        return spec, act, state


def save_checkpoint(
    path: str | os.PathLike[str],
    model: CRNN,
    array: MicArray,
    feature_cfg: FeatureConfig,
    model_cfg: ModelConfig,
    provenance: dict[str, Any],
    train_state: dict[str, Any] | None = None,
    direction_prior: DirectionPrior | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file, then rename).

    Args:
        path: destination file.
        model: trained network (its ``state_dict`` is saved).
        array: geometry the model was trained for.
        feature_cfg: feature parameters.
        model_cfg: network shape.
        provenance: plain-data dict (str/int/float/bool/list/dict/None values).
        train_state: optional optimiser state and counters for resuming; saved as tensors and
            plain data (:func:`tensors_and_plain_data`).
        direction_prior: spectrum weights to store with the model (``sst adapt``), or None.
    Returns:
        the path written.
    Raises:
        ModelError: geometry or channel count inconsistent, or a ``train_state`` value that is
            not tensors and plain data.
    """
    check_feature_geometry(feature_cfg, array, "save_checkpoint")
    if model_cfg.n_mics != array.n_mics:
        raise ModelError(
            f"model has {model_cfg.n_mics} microphone inputs but array '{array.name}' has {array.n_mics}; "
            "train the model for this array"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "format": _FORMAT,
        "version": CHECKPOINT_VERSION,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "model_config": model_cfg.to_dict(),
        "feature_config": feature_cfg.to_dict(),
        "array": array.to_dict(),
        "label_frame_s": feature_cfg.frame_s * model_cfg.frames_per_output,
        "provenance": _plain(provenance),
    }
    if direction_prior is not None:
        if direction_prior.weights.size != model_cfg.grid.n_bins:
            raise ModelError(
                f"direction prior has {direction_prior.weights.size} weights, "
                f"the model's grid {model_cfg.grid.n_bins} bins"
            )
        payload["direction_prior"] = _plain(direction_prior.to_dict())
    if train_state is not None:
        payload["train_state"] = tensors_and_plain_data(train_state, f"training state for {path}")
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def _plain(value: Any) -> Any:
    """Plain Python data only (loadable with ``weights_only=True``): str subclasses such as
    ``torch.__version__`` become str, numpy scalars and arrays become numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    return str(value)


def load_checkpoint(path: str | os.PathLike[str] | None = None, with_train_state: bool = False) -> LoadedModel:
    """Load a checkpoint (None = the shipped default model).

    Args:
        path: checkpoint file, or None for :func:`default_model_path`.
        with_train_state: kept for callers that resume (``extra["train_state"]`` is filled
            whenever the file has one); every file is loaded with ``weights_only=True``.
    Returns:
        the :class:`LoadedModel` with the network in eval mode on the CPU.
    Raises:
        ModelError: the file is missing, unreadable, not an sst_ros checkpoint, inconsistent, or
            holds Python objects beyond tensors and plain data (refused unloaded: unpickling them
            could run code); the message names the path and the problem.
    """
    p = Path(path) if path is not None else default_model_path()
    if not p.exists():
        hint = (
            "the package ships sst_ros/models/default.pt; reinstall the package or train one (training/README.md)"
            if path is None
            else "check the path or train a model with `sst train`"
        )
        raise ModelError(f"model file {p} does not exist; {hint}")
    if not p.is_file():
        raise ModelError(f"model file {p} is not a regular file")
    data = load_torch_file(
        p, "model file", ModelError,
        "re-copy it from a trusted source or re-train it with this sst_ros (`sst train`)",
    )  # fmt: skip
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ModelError(f"model file {p} is not an sst_ros CRNN checkpoint (no format '{_FORMAT}')")
    if int(data.get("version", -1)) > CHECKPOINT_VERSION:
        raise ModelError(
            f"model file {p} has checkpoint version {data.get('version')}, newer than this sst_ros "
            f"(supports {CHECKPOINT_VERSION}); update sst_ros"
        )
    missing = [k for k in ("state_dict", "model_config", "feature_config", "array") if k not in data]
    if missing:
        raise ModelError(f"model file {p} is incomplete: missing {missing}")
    try:
        model_cfg = ModelConfig.from_dict(data["model_config"])
        feature_cfg = FeatureConfig.from_dict(data["feature_config"])
        array = MicArray.from_dict(data["array"], origin=f"{p} (array)")
    except (ConfigError, TypeError, ValueError) as err:
        raise ModelError(f"model file {p} holds an invalid configuration: {err}") from err
    if model_cfg.n_mics != array.n_mics:
        raise ModelError(f"model file {p} is inconsistent: {model_cfg.n_mics} model inputs, {array.n_mics} mics")
    check_feature_geometry(feature_cfg, array, f"model file {p}")
    model = CRNN(model_cfg)
    try:
        model.load_state_dict(data["state_dict"])
    except (RuntimeError, KeyError, TypeError) as err:
        raise ModelError(f"model file {p}: weights do not match its model configuration: {err}") from err
    model.eval()
    prior = DirectionPrior.from_data(data.get("direction_prior"), model_cfg.grid.n_bins, str(p))
    return LoadedModel(
        model=model,
        array=array,
        feature_cfg=feature_cfg,
        model_cfg=model_cfg,
        provenance=dict(data.get("provenance") or {}),
        path=p,
        label_frame_s=float(data.get("label_frame_s", OUTPUT_FRAME_S)),
        extra={"train_state": data["train_state"]} if "train_state" in data else {},
        direction_prior=prior,
    )
