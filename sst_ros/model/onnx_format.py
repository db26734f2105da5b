"""What an ``sst export --onnx`` file holds besides the graph: one JSON metadata entry.

The graph (:mod:`sst_ros.model.onnx_export`) is the CRNN's streaming step for exactly one
output frame: ``frames_per_call`` (= ``model_cfg.frames_per_output``, 5 x 20 ms) feature frames
in, one frame's spectrum and activity out, with the carried network state as explicit inputs
and outputs (every convolution's two past frames, the GRU hidden state). One whole output frame
per call leaves no time-pooling remainder inside the graph; the runtime keeps the feature frames
of an unfinished output frame itself (:mod:`sst_ros.model.onnx_runtime`). Since version 2 the
same graph also takes ``block_frames`` feature frames (20 output frames) per call, with the same
state: an ``If`` on the input's length picks the block trace or the one-frame trace, so a long
input (an offline clip) needs a twentieth of the calls; the runtime uses blocks while at least
that many frames are at hand and single frames for the rest.

The model's ``metadata_props`` hold one entry, key :data:`METADATA_KEY`, whose value is the JSON
of :class:`OnnxMetadata`: the array geometry, the feature and network configurations, the output
frame length, the training provenance, the source checkpoint (path and SHA-256), how the export
was made and checked, and the names and shapes of the graph's inputs and outputs. So an export
runs on its own, with onnxruntime and numpy only. This module imports neither torch nor onnx.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from sst_ros.errors import ConfigError, ModelError
from sst_ros.geometry import MicArray
from sst_ros.model.config import ModelConfig
from sst_ros.model.direction_prior import DirectionPrior
from sst_ros.model.features import FeatureConfig
from sst_ros.model.runtime import check_feature_geometry

__all__ = ["DEFAULT_TOLERANCE", "METADATA_KEY", "ONNX_FORMAT", "ONNX_FORMAT_VERSION", "OnnxMetadata", "StateTensor"]

METADATA_KEY = "sst_ros"
"""Key of the JSON entry in the ONNX model's ``metadata_props``."""
ONNX_FORMAT = "sst_ros.crnn.onnx"
ONNX_FORMAT_VERSION = 3
"""2: the graph also takes ``block_frames`` feature frames per call (a block of output frames, for
offline runs). 3: the feature input is time-major, (1, P, frames, F), the memory order the
feature extractor writes (no copy per call). Version 1 (one output frame per call only) and 2
files ((1, P, F, frames)) are still read."""
DEFAULT_TOLERANCE = 1e-4
"""Largest accepted |onnx - torch| of an export's outputs (spectrum, activity: in [0, 1], unitless) and of
its carried state, relative to that state's largest magnitude (at least 1); ``sst export --onnx`` checks it."""


@dataclass(frozen=True)
class StateTensor:
    """One carried state tensor of the graph: fed as ``input``, the next value comes out as ``output``.

    Attributes:
        input: graph input name. output: graph output name.
        shape: its fixed shape (batch 1), e.g. (1, C, 2, F) for a convolution's history
            ((1, C, F, 2) in exports made before the graph was time-major) or (layers, 1, H) for
            the GRU; zeros at the start of a stream. The runtime only feeds each back.
    """

    input: str
    output: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class OnnxMetadata:
    """Everything an ONNX export needs to run on its own (stored as JSON in the file).

    Attributes:
        array: microphone geometry the model was trained for.
        feature_cfg: feature parameters.
        model_cfg: network shape and azimuth grid.
        label_frame_s: output frame length, seconds.
        provenance: the checkpoint's training provenance (plain data).
        source: the source checkpoint: ``{"path": str, "sha256": hex str}``.
        export: how the file was made and checked (torch and opset versions, time, the largest
            difference to torch found by the export's check).
        features_input: name of the float32 feature input: (1, P, ``frames_per_call``, F) when
            ``time_major``, else (1, P, F, ``frames_per_call``).
        spectrum_output: name of the (1, 1, K) spectrum output. activity_output: the (1, 1) activity.
        state: the carried state tensors, in graph order.
        frames_per_call: feature frames per call (one output frame).
        block_frames: the other feature-frame count the graph takes per call, a multiple of
            ``frames_per_call`` (several whole output frames at once: fewer calls over a long
            input); 0 = none (version 1 files).
        direction_prior: the checkpoint's spectrum weights (``sst adapt``), applied by the
            runtime after the graph; None = none.
        time_major: the feature input's layout (see ``features_input``; True from version 3 on).
    """

    array: MicArray
    feature_cfg: FeatureConfig
    model_cfg: ModelConfig
    label_frame_s: float
    provenance: dict[str, Any]
    source: dict[str, Any]
    features_input: str
    spectrum_output: str
    activity_output: str
    state: tuple[StateTensor, ...]
    frames_per_call: int
    block_frames: int = 0
    export: dict[str, Any] = field(default_factory=dict)
    direction_prior: DirectionPrior | None = None
    time_major: bool = False

    def to_json(self) -> str:
        """The metadata entry's value."""
        return json.dumps(
            {
                "format": ONNX_FORMAT,
                "version": ONNX_FORMAT_VERSION,
                "array": self.array.to_dict(),
                "feature_config": self.feature_cfg.to_dict(),
                "model_config": self.model_cfg.to_dict(),
                "label_frame_s": self.label_frame_s,
                "provenance": self.provenance,
                "source": self.source,
                "export": self.export,
                "direction_prior": self.direction_prior.to_dict() if self.direction_prior is not None else None,
                "io": {
                    "features": self.features_input,
                    "spectrum": self.spectrum_output,
                    "activity": self.activity_output,
                    "frames_per_call": self.frames_per_call,
                    "block_frames": self.block_frames,
                    "time_major": self.time_major,
                    "state": [{"input": s.input, "output": s.output, "shape": list(s.shape)} for s in self.state],
                },
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str, origin: str) -> OnnxMetadata:
        """Parse and check a metadata entry.

        Args:
            text: the entry's JSON.
            origin: the file it came from, for messages.
        Raises:
            ModelError: not JSON, another format, a newer version, missing or invalid fields, or
                configurations that contradict each other (the message names ``origin``).
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ModelError(
                f"model file {origin}: its '{METADATA_KEY}' metadata is not JSON ({err}); re-export it"
            ) from err
        if not isinstance(data, dict) or data.get("format") != ONNX_FORMAT:
            raise ModelError(f"model file {origin}: its '{METADATA_KEY}' metadata is not of format '{ONNX_FORMAT}'")
        if int(data.get("version", -1)) > ONNX_FORMAT_VERSION:
            raise ModelError(
                f"model file {origin} is an export of version {data.get('version')}, newer than this sst_ros "
                f"(supports {ONNX_FORMAT_VERSION}); update sst_ros"
            )
        try:
            io = data["io"]
            meta = cls(
                array=MicArray.from_dict(data["array"], origin=f"{origin} (array)"),
                feature_cfg=FeatureConfig.from_dict(data["feature_config"]),
                model_cfg=ModelConfig.from_dict(data["model_config"]),
                label_frame_s=float(data["label_frame_s"]),
                provenance=dict(data.get("provenance") or {}),
                source=dict(data.get("source") or {}),
                export=dict(data.get("export") or {}),
                features_input=str(io["features"]),
                spectrum_output=str(io["spectrum"]),
                activity_output=str(io["activity"]),
                state=tuple(
                    StateTensor(str(s["input"]), str(s["output"]), tuple(int(v) for v in s["shape"]))
                    for s in io["state"]
                ),
                frames_per_call=int(io["frames_per_call"]),
                block_frames=int(io.get("block_frames", 0)),
                time_major=_flag(io.get("time_major", False), "io.time_major"),
                direction_prior=DirectionPrior.from_data(
                    data.get("direction_prior"), ModelConfig.from_dict(data["model_config"]).grid.n_bins, origin
                ),
            )
        except (KeyError, TypeError, ValueError, ConfigError) as err:
            raise ModelError(
                f"model file {origin}: its '{METADATA_KEY}' metadata is incomplete or invalid "
                f"({type(err).__name__}: {err}); re-export it with `sst export --onnx`"
            ) from err
        meta.check(origin)
        return meta

    def check(self, origin: str) -> None:
        """Refuse configurations that contradict each other (ModelError naming ``origin``)."""
        if self.model_cfg.n_mics != self.array.n_mics:
            raise ModelError(
                f"model file {origin} is inconsistent: {self.model_cfg.n_mics} model inputs, {self.array.n_mics} mics"
            )
        check_feature_geometry(self.feature_cfg, self.array, f"model file {origin}")
        if self.frames_per_call != self.model_cfg.frames_per_output:
            raise ModelError(
                f"model file {origin} is inconsistent: {self.frames_per_call} feature frames per call, but the "
                f"network makes one output frame of {self.model_cfg.frames_per_output}"
            )
        per_call = self.frames_per_call
        if self.block_frames and (self.block_frames <= per_call or self.block_frames % per_call):
            raise ModelError(
                f"model file {origin} is inconsistent: a block of {self.block_frames} feature frames per call is not "
                f"a multiple (> 1) of the {self.frames_per_call} frames of one output frame"
            )
        frame_s = self.feature_cfg.frame_s * self.model_cfg.frames_per_output
        if not math.isclose(self.label_frame_s, frame_s, rel_tol=1e-9):
            raise ModelError(
                f"model file {origin} is inconsistent: output frames of {self.label_frame_s} s, but the features "
                f"and network make {frame_s} s"
            )


def _flag(value: Any, name: str) -> bool:
    """A JSON boolean of the metadata (a string such as "false" is not read as True)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value
