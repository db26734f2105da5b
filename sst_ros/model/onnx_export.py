"""Export a checkpoint's streaming step to ONNX, checked against torch before it is written.

The graph is :meth:`CRNN.step <sst_ros.model.crnn.CRNN.step>`, computed time-major
(``_StepGraph``: the same weights and outputs, cheaper to run), traced by PyTorch's
``torch.export``-based ONNX exporter twice, for one output frame and for a block of
:data:`BLOCK_OUTPUT_FRAMES` per call (fixed shapes each, see :mod:`sst_ros.model.onnx_format`),
the two joined by an ``If`` on the input's length into one graph: every convolution's history
and the GRU hidden state are graph inputs and outputs. Fixed shapes suit the runtime (one call
per 100 ms, as the node runs; a block per call offline) and leave the time pooling without a
remainder, so neither trace has shape-dependent branches.

Before writing, :func:`export_onnx` streams a deterministic test signal's features through the
torch network and through the new graph with the ONNX runtime code itself
(:meth:`OnnxModel.step <sst_ros.model.onnx_runtime.OnnxModel.step>`, in uneven chunks) and
refuses to write a file whose spectrum or activity (both in [0, 1]) differ by more than
``tolerance`` anywhere, or whose carried state after the signal does, relative to the state's
magnitude (activations of a few units carry float32 rounding of a few 1e-5).

Needs torch, onnx, onnxscript and onnxruntime (``pip install sst_ros[export]``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from sst_ros.errors import ModelError
from sst_ros.model.checkpoint import LoadedModel, load_checkpoint
from sst_ros.model.crnn import CRNN, StreamState
from sst_ros.model.features import compute_features
from sst_ros.model.fused import folded_blocks
from sst_ros.model.onnx_format import DEFAULT_TOLERANCE, METADATA_KEY, OnnxMetadata, StateTensor
from sst_ros.model.onnx_runtime import OnnxModel, onnx_model_from_bytes
from sst_ros.model.runtime import ONNX_SUFFIX, default_model_path

__all__ = [
    "BLOCK_OUTPUT_FRAMES",
    "OPSET",
    "ExportResult",
    "StepDifference",
    "check_features",
    "export_onnx",
    "step_difference",
]

OPSET = 18  # ONNX Runtime >= 1.14 runs it
CHECK_SECONDS = 6.0  # length of the export check's test signal, s
CHECK_CHUNKS = (1, 3, 5, 7, 2, 11, 4, 263)  # feature frames per call in the check, cycled: remainders of every
# size, and one chunk long enough for the block graph (at least BLOCK_OUTPUT_FRAMES whole output frames)
BLOCK_OUTPUT_FRAMES = 20
"""Output frames per call of the graph's block branch (offline: a whole clip in few calls; 20 x 100 ms)."""
_CHATTY_LOGGERS = ("torch", "onnxscript", "onnx_ir")  # the exporter logs a line per graph rewrite

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_onnx` wrote.

    Attributes:
        path: the ONNX file.
        source: the checkpoint exported. sha256: its SHA-256 (hex).
        difference: what the check against torch found.
        size_bytes: size of the file.
    """

    path: Path
    source: Path
    sha256: str
    difference: StepDifference
    size_bytes: int


@dataclass(frozen=True)
class StepDifference:
    """How far two backends of one network are apart on the same features (:func:`step_difference`).

    Attributes:
        outputs: largest |difference| of spectrum and activity over all frames.
        state: largest |difference| of the carried state after the last call, divided by the
            largest magnitude of that state tensor (at least 1); 0 when not comparable.
        n_frames: output frames compared.
    """

    outputs: float
    state: float
    n_frames: int

    def within(self, tolerance: float) -> bool:
        """Both differences at most ``tolerance`` (False for NaN)."""
        return self.outputs <= tolerance and self.state <= tolerance


class _StepGraph(nn.Module):
    """:meth:`CRNN.step` for whole output frames, time-major, with the carried state as flat
    tensors: what is exported.

    The network computes on (B, C, azimuth, time) maps, so at 5 feature frames a call each
    convolution's history (its last 2 input frames) is a strided copy of 2 of every 7 values,
    and its 3x3 kernel runs along rows of 7 time frames. Here the maps are (B, C, time,
    azimuth): a history is contiguous rows, and the kernels run along rows of 128, 64, ...
    azimuths. ONNX Runtime then spends about 0.65x the time per call on the same weights
    (BatchNorm folded, kernels transposed), with the same outputs to float rounding. Its
    feature input is time-major as well, (1, P, T, F): the memory order of the feature
    extractor's output, so the runtime feeds it without a copy. The graph's convolution
    histories are (1, C, 2, F), the network's :class:`StreamState` ones transposed
    (:func:`_graph_state`).
    """

    def __init__(self, model: CRNN) -> None:
        super().__init__()
        self.model = model
        blocks = folded_blocks(model)
        self._pools = [(block.time_pool, block.freq_pool) for block in blocks]  # (time, azimuth) of each block
        for i, (w, b) in enumerate(conv for block in blocks for conv in block.convs):
            self.register_buffer(f"weight_{i}", w.transpose(2, 3).contiguous())  # (C_out, C_in, time, azimuth)
            self.register_buffer(f"bias_{i}", b)

    def forward(
        self, features: torch.Tensor, conv: tuple[torch.Tensor, ...], gru: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        x = features  # (1, P, T, F): the time-major input (format version 3)
        history = []
        i = 0
        for pool in self._pools:
            for _ in range(self.model.cfg.convs_per_block):
                w, b = getattr(self, f"weight_{i}"), getattr(self, f"bias_{i}")
                z = torch.cat([conv[i], x], dim=2)
                history.append(z[:, :, z.shape[2] - (w.shape[2] - 1) :])
                x = F.conv2d(z, w, b, padding=(0, w.shape[3] // 2)).relu()
                i += 1
            # whole output frames only: no time-pooling remainder before or after (as at the start)
            x = F.max_pool2d(x, pool)
        B, C, T, Fo = x.shape
        h, g = self.model.gru(x.transpose(1, 2).reshape(B, T, C * Fo), gru)  # (C, F) per frame, as CRNN.step
        spectrum, activity = self.model.head(h)
        return (spectrum, activity, *history, g)


def _graph_state(state: StreamState) -> list[torch.Tensor]:
    """The graph's state tensors, in graph order, from the network's: convolution histories
    (1, C, F, 2) transposed to the graph's (1, C, 2, F) (see :class:`_StepGraph`), the GRU's as is."""
    return [*(c.transpose(2, 3).contiguous() for c in state.conv), state.gru]


def _require_exporter() -> None:
    """onnx and onnxscript (torch's exporter needs both), or a ModelError naming the install."""
    for name in ("onnx", "onnxscript"):
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ModelError(
                f"exporting to ONNX needs the packages onnx and onnxscript ({err}); install them with "
                "`pip install sst_ros[export]`"
            ) from err


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _trace(loaded: LoadedModel, names: _Names, n_out: int = 1) -> Any:
    """The exported graph for ``n_out`` output frames per call (an ``onnx.ModelProto``), torch's
    progress output kept out of the console."""
    model = loaded.model
    *conv, gru = _graph_state(model.init_state(1))
    x = torch.zeros(1, model.cfg.n_in_planes, model.cfg.frames_per_output * n_out, model.cfg.n_freq)  # time-major
    args = (x, tuple(conv), gru)
    quiet = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), _quiet_loggers(), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracing notes, not ours
            program = torch.onnx.export(
                _StepGraph(model).eval(), args, dynamo=True, opset_version=OPSET, verbose=False,
                input_names=names.inputs, output_names=names.outputs,
            )  # fmt: skip
    except Exception as err:  # the exporter raises many types
        raise ModelError(
            f"exporting {loaded.path} to ONNX failed ({type(err).__name__}: {str(err)[:500]}); torch "
            f"{torch.__version__}'s exporter output:\n{quiet.getvalue()[-2000:]}"
        ) from err
    if program is None:  # only when given a file to write, which is not done here
        raise ModelError(f"exporting {loaded.path} to ONNX gave no program (torch {torch.__version__})")
    return program.model_proto


def _two_graphs(single: Any, block: Any, names: _Names, block_frames: int) -> Any:
    """One model that runs ``block`` when given ``block_frames`` feature frames, else ``single``.

    Both traces become the branches of an ``If`` on the feature input's time length (each branch
    keeps its own weights, so ONNX Runtime optimises it as the stand-alone graph); the feature
    input's time dimension is left free. Every name inside a branch is prefixed, except the outer
    inputs it reads, so the model stays single-assignment.
    """
    import onnx
    from onnx import TensorProto, helper

    outer = set(names.inputs)

    def branch(model: Any, prefix: str) -> Any:
        g = model.graph

        def rename(name: str) -> str:
            return name if (not name or name in outer) else prefix + name

        nodes = []
        for node in g.node:
            n = onnx.NodeProto()
            n.CopyFrom(node)
            n.name = prefix + (node.name or node.op_type)
            n.input[:] = [rename(v) for v in node.input]
            n.output[:] = [rename(v) for v in node.output]
            nodes.append(n)
        outputs = []
        for o in g.output:
            if o.name in outer:  # an input passed straight through: a branch output needs its own name
                nodes.append(helper.make_node("Identity", [o.name], [prefix + o.name], name=prefix + o.name))
            v = onnx.ValueInfoProto()
            v.CopyFrom(o)
            v.name = prefix + o.name
            outputs.append(v)
        inits = [_renamed_copy(t, onnx.TensorProto(), rename) for t in g.initializer]
        infos = [_renamed_copy(vi, onnx.ValueInfoProto(), rename) for vi in g.value_info]
        return helper.make_graph(nodes, prefix.rstrip("/"), [], outputs, inits, value_info=infos)

    then_g, else_g = branch(block, "block/"), branch(single, "single/")
    time_dim = "frames"
    inputs = []
    for i in single.graph.input:
        v = onnx.ValueInfoProto()
        v.CopyFrom(i)
        if v.name == names.inputs[0]:
            dim = v.type.tensor_type.shape.dim[2]  # time-major (1, P, frames, F)
            dim.Clear()
            dim.dim_param = time_dim
        inputs.append(v)
    outputs = []
    for o in single.graph.output:
        v = onnx.ValueInfoProto()
        v.CopyFrom(o)
        if v.name in (names.outputs[0], names.outputs[1]):
            dim = v.type.tensor_type.shape.dim[1]
            dim.Clear()
            dim.dim_param = "output_frames"
        outputs.append(v)
    nodes = [
        helper.make_node("Shape", [names.inputs[0]], ["sst_frames"], start=2, end=3),
        helper.make_node("Constant", [], ["sst_block_frames"],
                         value=helper.make_tensor("sst_block_frames_value", TensorProto.INT64, [1], [block_frames])),
        helper.make_node("Equal", ["sst_frames", "sst_block_frames"], ["sst_is_block_1"]),
        helper.make_node("Squeeze", ["sst_is_block_1"], ["sst_is_block"]),
        helper.make_node("If", ["sst_is_block"], list(names.outputs), then_branch=then_g, else_branch=else_g),
    ]  # fmt: skip
    graph = helper.make_graph(nodes, single.graph.name or "sst_ros_step", inputs, outputs)
    merged = helper.make_model(graph, opset_imports=list(single.opset_import), ir_version=single.ir_version)
    merged.producer_name, merged.producer_version = single.producer_name, single.producer_version
    onnx.checker.check_model(merged)
    return merged


@contextlib.contextmanager
def _quiet_loggers() -> Iterator[None]:
    """The exporter's chatter (a line per graph rewrite, notes on torchvision) off while it runs."""
    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@dataclass(frozen=True)
class _Names:
    """Graph input and output names, in graph order."""

    n_conv: int

    @property
    def inputs(self) -> list[str]:
        return ["features", *(f"conv_history_{i}" for i in range(self.n_conv)), "gru_hidden"]

    @property
    def outputs(self) -> list[str]:
        return ["spectrum", "activity", *(f"conv_history_{i}_next" for i in range(self.n_conv)), "gru_hidden_next"]


def _metadata(loaded: LoadedModel, names: _Names, sha256: str, block_frames: int) -> OnnxMetadata:
    shapes = [tuple(t.shape) for t in _graph_state(loaded.model.init_state(1))]
    return OnnxMetadata(
        array=loaded.array,
        feature_cfg=loaded.feature_cfg,
        model_cfg=loaded.model_cfg,
        label_frame_s=loaded.frame_s,
        provenance=loaded.provenance,
        source={"path": str(loaded.path), "sha256": sha256},
        features_input=names.inputs[0],
        spectrum_output=names.outputs[0],
        activity_output=names.outputs[1],
        state=tuple(StateTensor(i, o, s) for i, o, s in zip(names.inputs[1:], names.outputs[2:], shapes, strict=True)),
        frames_per_call=loaded.model_cfg.frames_per_output,
        block_frames=block_frames,
        direction_prior=loaded.direction_prior,
        time_major=True,
        export={
            "torch": str(torch.__version__).split("+")[0],
            "opset": OPSET,
            "exported_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )


def _with_metadata(proto: Any, meta: OnnxMetadata) -> bytes:
    """The serialized model with ``meta`` as its only :data:`METADATA_KEY` entry."""
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key != METADATA_KEY]
    del proto.metadata_props[:]
    for key, value in [*keep, (METADATA_KEY, meta.to_json())]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return bytes(proto.SerializeToString())


def check_features(loaded: LoadedModel | OnnxModel, seconds: float = CHECK_SECONDS, seed: int = 0) -> np.ndarray:
    """Features of a deterministic test signal for the model: noise bursts that differ between
    microphones, with pauses and a level that changes (the running normaliser and the activity
    output both move).

    Returns:
        float32 (P, F, T) features, ``T = seconds / feature frame``.
    """
    fs = loaded.feature_cfg.sample_rate_hz
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    envelope = (np.sin(2 * np.pi * 0.7 * t) > -0.3) * (0.02 + 0.2 * (1 + np.sin(2 * np.pi * 0.13 * t)))
    source = rng.standard_normal(n)
    audio = np.stack([np.roll(source, k) for k in range(loaded.array.n_mics)], axis=1)
    audio = envelope[:, None] * (audio + 0.1 * rng.standard_normal(audio.shape))
    return compute_features(audio.astype(np.float32), loaded.feature_cfg)


def step_difference(
    reference: LoadedModel | OnnxModel, other: LoadedModel | OnnxModel, features: np.ndarray,
    chunks: tuple[int, ...] = CHECK_CHUNKS,
) -> StepDifference:  # fmt: skip
    """Stream ``features`` through two models in the same uneven chunks and compare.

    Args:
        reference, other: two backends of one network (e.g. a checkpoint and its export).
        features: (P, F, T) features.
        chunks: feature frames per call, cycled.
    Returns:
        the :class:`StepDifference`.
    Raises:
        ModelError: the two give different numbers of frames or spectrum bins.
    """
    specs: list[list[np.ndarray]] = [[], []]
    acts: list[list[np.ndarray]] = [[], []]
    states: list[Any] = [None, None]
    k = t = 0
    while t < features.shape[-1]:
        part = features[..., t : t + chunks[k % len(chunks)]]
        for i, model in enumerate((reference, other)):
            spec, act, states[i] = model.step(part, states[i])
            specs[i].append(spec)
            acts[i].append(act)
        t += part.shape[-1]
        k += 1
    a, b = np.concatenate(specs[0]), np.concatenate(specs[1])
    if a.shape != b.shape:
        raise ModelError(f"the two models give {a.shape} and {b.shape} spectra for the same features")
    act_a, act_b = np.concatenate(acts[0]), np.concatenate(acts[1])
    out = max(np.abs(a - b).max(initial=0.0), np.abs(act_a - act_b).max(initial=0.0))
    state = 0.0
    if states[0] is not None and states[1] is not None:
        # the graph's layout of the histories: time-major unless an older export (format < 3) is compared
        time_major = all(getattr(getattr(m, "metadata", None), "time_major", True) for m in (reference, other))
        flat = [_flat_state(s, time_major) for s in states]
        pairs = zip(flat[0], flat[1], strict=True)
        state = max(float(np.abs(x - y).max() / max(1.0, np.abs(x).max())) for x, y in pairs)
    return StepDifference(float(out), state, int(a.shape[0]))


def _flat_state(state: Any, time_major: bool = True) -> list[np.ndarray]:
    """The network state as arrays in graph order (conv histories, GRU), whichever backend made it:
    a torch state's histories in the graph's layout, time-major (1, C, 2, F) or, for exports
    before format 3, the network's own (1, C, F, 2)."""
    if isinstance(state, StreamState):
        tensors = _graph_state(state) if time_major else [*state.conv, state.gru]
        return [t.detach().numpy() for t in tensors]
    return [np.asarray(t) for t in state.tensors]


def export_onnx(
    model_path: str | os.PathLike[str] | None,
    out_path: str | os.PathLike[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ExportResult:
    """Export a checkpoint's streaming step to ONNX; written only if it agrees with torch.

    Args:
        model_path: the checkpoint (``*.pt``); None = the shipped default model.
        out_path: the ``*.onnx`` file to write (atomically; folders are created).
        tolerance: largest accepted |onnx - torch| over outputs and state (default 1e-4).
    Returns:
        the :class:`ExportResult`.
    Raises:
        ModelError: a bad checkpoint, missing exporter packages (naming the install), an
            export that fails, or a graph that disagrees with torch by more than ``tolerance``
            (nothing is written then).
    """
    out = Path(out_path)
    if out.suffix.lower() != ONNX_SUFFIX:
        raise ModelError(f"the ONNX file must end in {ONNX_SUFFIX} (the runtime picks the backend by it), got {out}")
    _require_exporter()
    source = Path(model_path) if model_path is not None else default_model_path()
    loaded = load_checkpoint(source)
    t0 = time.perf_counter()
    names = _Names(n_conv=len(loaded.model.convs))
    block_frames = loaded.model_cfg.frames_per_output * BLOCK_OUTPUT_FRAMES
    proto = _two_graphs(_trace(loaded, names), _trace(loaded, names, BLOCK_OUTPUT_FRAMES), names, block_frames)
    meta = _metadata(loaded, names, _sha256(source), block_frames)
    exported = onnx_model_from_bytes(_with_metadata(proto, meta), None, threads=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one frame at a time: a thread pool only adds overhead (the node runs on one too)
    try:
        diff = step_difference(loaded, exported, check_features(loaded))
    finally:
        torch.set_num_threads(threads)
    if not diff.within(tolerance):
        raise ModelError(
            f"the ONNX graph of {source} disagrees with torch by up to {diff.outputs:.3g} in its outputs and "
            f"{diff.state:.3g} (relative) in its state over {diff.n_frames} frames, above the tolerance "
            f"{tolerance:g}; {out} was not written (exporter: torch {torch.__version__}, opset {OPSET})"
        )
    check = {"max_abs_diff": diff.outputs, "max_state_rel_diff": diff.state, "check_frames": diff.n_frames}
    meta = replace(meta, export={**meta.export, **check})
    data = _with_metadata(proto, meta)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    log.debug("exported %s in %.1f s", out, time.perf_counter() - t0)
    return ExportResult(out, source, meta.source["sha256"], diff, len(data))


def _renamed_copy(proto: Any, empty: Any, rename: Callable[[str], str]) -> Any:
    """``empty`` (a new proto of ``proto``'s type) filled with a copy of ``proto`` under ``rename(proto.name)``."""
    empty.CopyFrom(proto)
    empty.name = rename(proto.name)
    return empty
