"""The ONNX Runtime backend: run an ``sst export --onnx`` file without torch.

:func:`load_onnx` gives an :class:`OnnxModel`, a :class:`~sst_ros.model.runtime.TrackerModel`
like the PyTorch ``LoadedModel``: the same features (numpy), the same streaming and offline code
(:class:`~sst_ros.model.stream.StreamingTracker`, :func:`~sst_ros.model.infer.predict_audio`),
the same node pipeline. The graph takes exactly one output frame's feature frames per call, or
a block of ``block_frames`` (:mod:`sst_ros.model.onnx_format`); :meth:`OnnxModel.step` runs
blocks while it has that many frames and single output frames for the rest, and keeps the frames
of an unfinished output frame in its :class:`OnnxState`, so any chunking gives the same outputs,
as with torch.

Needs ``onnxruntime`` and numpy only (``pip install sst_ros[onnx]``); imports no torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sst_ros.errors import ModelError
from sst_ros.geometry import MicArray
from sst_ros.model.config import ModelConfig
from sst_ros.model.direction_prior import DirectionPrior
from sst_ros.model.features import FeatureConfig
from sst_ros.model.onnx_format import METADATA_KEY, OnnxMetadata

__all__ = ["OnnxModel", "OnnxState", "import_onnxruntime", "load_onnx", "onnx_model_from_bytes"]


def import_onnxruntime() -> Any:
    """The ``onnxruntime`` module, or a ModelError naming how to install it."""
    try:
        import onnxruntime
    except ImportError as err:
        raise ModelError(
            f"running an ONNX model needs onnxruntime, which is not installed ({err}); install it with "
            "`pip install sst_ros[onnx]` (or `pip install onnxruntime`, or your distribution's onnxruntime "
            "package for Python)"
        ) from err
    return onnxruntime


@dataclass(frozen=True)
class OnnxState:
    """The carried state of an ONNX stream.

    Attributes:
        tensors: the graph's state tensors (convolution histories, GRU hidden state), in the
            order of :attr:`OnnxMetadata.state`.
        pending: float32 feature frames of the output frame not yet complete (r <
            frames_per_call), in the graph's layout: (P, r, F) time-major (version 3 files),
            else (P, F, r).
    """

    tensors: tuple[np.ndarray, ...]
    pending: np.ndarray


@dataclass
class OnnxModel:
    """A trained tracker ready to run with ONNX Runtime (a :class:`~sst_ros.model.runtime.TrackerModel`).

    Attributes:
        array: microphone geometry it was trained for.
        feature_cfg: feature parameters.
        model_cfg: network shape and azimuth grid.
        provenance: training provenance, plus ``source_checkpoint`` (path and SHA-256 of the
            exported checkpoint) and ``export`` (how it was made and checked).
        path: file it was loaded from (None when built from bytes).
        label_frame_s: output frame length, seconds.
        metadata: the file's :class:`OnnxMetadata`.
        session: the ``onnxruntime.InferenceSession``.
        direction_prior: spectrum weights :meth:`step` applies (the file's; None = none; set it
            to None to run without it).
    """

    array: MicArray
    feature_cfg: FeatureConfig
    model_cfg: ModelConfig
    provenance: dict[str, Any]
    path: Path | None
    label_frame_s: float
    metadata: OnnxMetadata = field(repr=False)
    session: Any = field(repr=False)
    direction_prior: DirectionPrior | None = None

    def __post_init__(self) -> None:
        meta = self.metadata
        self._outputs = [meta.spectrum_output, meta.activity_output, *(s.output for s in meta.state)]
        self._planes = self.feature_cfg.n_planes(self.array.n_mics)

    @property
    def backend(self) -> str:
        """``"onnxruntime"``."""
        return "onnxruntime"

    @property
    def frame_s(self) -> float:
        """Output frame length in seconds (100 ms)."""
        return self.feature_cfg.frame_s * self.model_cfg.frames_per_output

    def init_state(self) -> OnnxState:
        """Zero state: the start of a stream (as the torch network's)."""
        meta = self.metadata
        P, F = self._planes, self.model_cfg.n_freq
        return OnnxState(
            tensors=tuple(np.zeros(s.shape, dtype=np.float32) for s in meta.state),
            pending=np.zeros((P, 0, F) if meta.time_major else (P, F, 0), dtype=np.float32),
        )

    def step(self, features: np.ndarray, state: OnnxState | None = None) -> tuple[np.ndarray, np.ndarray, OnnxState]:
        """Streaming pass (:meth:`TrackerModel.step <sst_ros.model.runtime.TrackerModel.step>`): one
        graph call per block of ``block_frames`` feature frames while there are that many, then one
        per completed output frame.

        Args:
            features: float32 (P, F, t_new) new feature frames.
            state: what the previous call returned (None = start of a stream).
        Returns:
            spectrum float32 (T_out, K), activity float32 (T_out,), the new :class:`OnnxState`.
        Raises:
            ModelError: features whose shape is not the model's.
        """
        x = np.asarray(features, dtype=np.float32)
        P, F = self._planes, self.model_cfg.n_freq
        if x.ndim != 3 or x.shape[:2] != (P, F):
            raise ModelError(f"the ONNX model expects features (P={P}, F={F}, t), got {x.shape}")
        st = self.init_state() if state is None else state
        meta = self.metadata
        # the graph's layout; time-major: the features' own memory order, so a slice is contiguous
        frames = x.transpose(0, 2, 1) if meta.time_major else x
        axis = 1 if meta.time_major else 2
        frames = np.concatenate([st.pending, frames], axis=axis) if st.pending.shape[axis] else frames
        n = meta.frames_per_call
        n_out = frames.shape[axis] // n
        tensors = st.tensors
        spec = np.empty((n_out, self.model_cfg.grid.n_bins), dtype=np.float32)
        act = np.empty(n_out, dtype=np.float32)
        feeds: dict[str, np.ndarray] = {}
        block = meta.block_frames // n  # output frames per block call (0: no block graph)
        i = 0
        while i < n_out:
            k = block if block and n_out - i >= block else 1
            part = frames[:, i * n : (i + k) * n] if meta.time_major else frames[:, :, i * n : (i + k) * n]
            feeds[meta.features_input] = np.ascontiguousarray(part[None])
            feeds.update((s.input, t) for s, t in zip(meta.state, tensors, strict=True))
            out = self.session.run(self._outputs, feeds)
            spec[i : i + k] = out[0].reshape(k, -1)
            act[i : i + k] = out[1].reshape(k)
            tensors = tuple(out[2:])
            i += k
        rest = frames[:, n_out * n :] if meta.time_major else frames[:, :, n_out * n :]
        pending = np.array(rest, dtype=np.float32)  # a copy: the caller's array is not kept
        if self.direction_prior is not None:
            spec = self.direction_prior.apply(spec)
        return spec, act, OnnxState(tensors=tensors, pending=pending)


def load_onnx(path: str | os.PathLike[str], *, threads: int | None = None) -> OnnxModel:
    """Load an ``sst export --onnx`` file.

    Args:
        path: the ``*.onnx`` file.
        threads: ONNX Runtime intra-op threads of the session; None = its default (all cores).
    Returns:
        the :class:`OnnxModel`.
    Raises:
        ModelError: onnxruntime is missing (naming the install), the file is missing, not an
            ONNX model, not an sst_ros export, or inconsistent; the message names the path.
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(f"model file {p} does not exist; check the path or export one with `sst export --onnx`")
    if not p.is_file():
        raise ModelError(f"model file {p} is not a regular file")
    try:
        data = p.read_bytes()
    except OSError as err:
        raise ModelError(f"model file {p} cannot be read: {err}") from err
    return onnx_model_from_bytes(data, p, threads=threads)


def onnx_model_from_bytes(data: bytes, path: Path | None, *, threads: int | None = None) -> OnnxModel:
    """An :class:`OnnxModel` from a serialized export (:func:`load_onnx` reads the file; the
    exporter checks its graph before writing it).

    Args:
        data: the serialized ONNX model with its :data:`~sst_ros.model.onnx_format.METADATA_KEY` entry.
        path: where it comes from (None: in memory), for messages and :attr:`OnnxModel.path`.
        threads: intra-op threads; None = ONNX Runtime's default.
    Raises:
        ModelError: see :func:`load_onnx`.
    """
    ort = import_onnxruntime()
    origin = str(path) if path is not None else "<in memory>"
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads) if threads else 0
    opts.inter_op_num_threads = 1  # one graph call at a time: nothing to run in parallel between nodes
    opts.log_severity_level = 3  # errors only: ONNX Runtime's warnings are about its graph rewrites
    try:
        session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own types (Fail, InvalidGraph, ...) for a bad file
        raise ModelError(
            f"model file {origin} is not a valid ONNX model ({type(err).__name__}: {str(err)[:200]}); re-copy it or "
            "re-export it with `sst export --onnx`"
        ) from err
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if text is None:
        raise ModelError(
            f"model file {origin} is an ONNX model but not an sst_ros export (no '{METADATA_KEY}' metadata); "
            "export a checkpoint with `sst export --onnx MODEL.pt OUT.onnx`"
        )
    meta = OnnxMetadata.from_json(text, origin)
    _check_graph(session, meta, origin)
    provenance = dict(meta.provenance)
    provenance["source_checkpoint"] = meta.source
    provenance["export"] = meta.export
    return OnnxModel(
        array=meta.array,
        feature_cfg=meta.feature_cfg,
        model_cfg=meta.model_cfg,
        provenance=provenance,
        path=path,
        label_frame_s=meta.label_frame_s,
        metadata=meta,
        session=session,
        direction_prior=meta.direction_prior,
    )


def _check_graph(session: Any, meta: OnnxMetadata, origin: str) -> None:
    """The graph's inputs and outputs are the ones the metadata names, with its shapes."""
    planes, rows = meta.feature_cfg.n_planes(meta.array.n_mics), meta.model_cfg.n_freq
    time_axis = 2 if meta.time_major else 3
    n = meta.frames_per_call
    shape: list[Any] = [1, planes, n, rows] if meta.time_major else [1, planes, rows, n]
    want_in: dict[str, list[Any]] = {meta.features_input: shape}
    want_in.update({s.input: list(s.shape) for s in meta.state})
    have_in = {i.name: list(i.shape) for i in session.get_inputs()}
    feat = have_in.get(meta.features_input)
    if feat is not None and len(feat) == 4 and isinstance(feat[time_axis], str):
        shape[time_axis] = feat[time_axis]  # a free time length (version 2 on): one output frame or a block
    have_out = {o.name for o in session.get_outputs()}
    want_out = {meta.spectrum_output, meta.activity_output, *(s.output for s in meta.state)}
    if have_in != want_in or not want_out <= have_out:
        raise ModelError(
            f"model file {origin}: the graph's inputs {have_in} and outputs {sorted(have_out)} are not those its "
            f"metadata describes (inputs {want_in}, outputs {sorted(want_out)}); re-export it with `sst export --onnx`"
        )
