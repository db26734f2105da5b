"""Parameters of the tracker node: one table, named and defaulted after the tracking configuration.

The run-time tunables are the fields of :class:`~sst_ros.tracking.types.PeakConfig`,
:class:`~sst_ros.tracking.types.TrackerConfig` and
:class:`~sst_ros.tracking.pipeline.PipelineConfig` (same names, defaults taken from the
dataclasses); :func:`pipeline_config` turns parameter values back into those dataclasses.
``config/tracker.yaml`` holds the same names and defaults (a test keeps them equal). The
parameters' old names (:data:`RENAMED`) are still accepted at start-up, with a warning.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

from sst_ros.errors import ConfigError
from sst_ros.ros.params import DIAGNOSTICS_PARAMETERS, ParamSpec
from sst_ros.tracking.pipeline import PipelineConfig
from sst_ros.tracking.types import PeakConfig, TrackerConfig

__all__ = ["DEFAULT_FRAME_ID", "PARAMETERS", "RENAMED", "pipeline_config", "renamed_value"]

DEFAULT_FRAME_ID = "mic_array"  # frame of the outputs when neither frame_id nor the audio header names one


def _config_defaults() -> dict[str, Any]:
    """Field name -> default of the tracking configuration dataclasses."""
    return {
        f.name: f.default
        for cls in (PeakConfig, TrackerConfig, PipelineConfig)
        for f in fields(cls)
        if f.default is not MISSING
    }


_DEFAULTS = _config_defaults()
#: Run-time tunables: tracking configuration field -> (description, low, high); defaults from the dataclasses.
_TUNABLES: dict[str, tuple[str, float, float]] = {
    "max_peaks": ("most simultaneous sources (spectrum peaks per frame)", 1, 8),
    "threshold": ("minimum spectrum peak height, [0, 1]", 0.0, 1.0),
    "activity_threshold": ("frames with model activity below this give no peaks, [0, 1]", 0.0, 1.0),
    "min_separation_deg": ("peaks closer than this to a higher one are ignored, degrees", 0.0, 180.0),
    "gate_deg": ("association gate around a track's predicted azimuth, degrees", 1.0, 180.0),
    "gate_growth_deg_s": ("gate widening per second a track goes without a peak, degrees per second", 0.0, 1000.0),
    "handover_deg": ("a new track this close to a track that lost its peak takes over its id (0 = off)", 0.0, 180.0),
    "birth_hits": ("frames with a peak before a track is published (birth hysteresis)", 1, 50),
    "birth_window": ("... within this many frames", 1, 100),
    "coast_misses": ("a track is published until it misses this many frames in a row (1: only with a peak)", 1, 200),
    "death_misses": ("frames without a peak before a track's identity ends (hidden after coast_misses)", 1, 1000),
    "smoothing": ("weight of a new measurement in the track update, (0, 1]", 0.01, 1.0),
    "velocity_gain": ("beta of the alpha-beta track filter, [0, 1]", 0.0, 1.0),
    "max_speed_deg_s": ("cap on a track's estimated angular speed, degrees per second", 0.0, 3600.0),
    "gap_tolerance_s": ("longest audio gap (s) bridged with silence; longer ones reset the stream state", 0.0, 10.0),
    "clip_level": ("absolute sample value counted as clipped (full scale 1)", 0.01, 1.0),
}

PARAMETERS: dict[str, ParamSpec] = {
    "model": ParamSpec(
        "", "model file: a .pt checkpoint (needs torch) or an .onnx export (`sst export --onnx`, needs onnxruntime "
        "only); empty = the shipped default model (default.onnx where onnxruntime is installed, else default.pt)",
    ),  # fmt: skip
    "array": ParamSpec("", "array config (name or YAML path) of the incoming stream; empty = the model's geometry"),
    "audio_topic": ParamSpec("audio", "audio input: AudioDataStamped, AudioStamped or AudioData (the installed stack)"),
    "info_topic": ParamSpec("audio_info", "audio_common_msgs/AudioInfo topic (transient local)"),
    "poses_topic": ParamSpec("tracks", "geometry_msgs/PoseArray output, one pose per track"),
    "markers_topic": ParamSpec("track_markers", "visualization_msgs/MarkerArray output for rviz"),
    "frame_id": ParamSpec("", "frame of the outputs; empty = the audio header's frame_id"),
    "channels": ParamSpec(0, "channel count when no AudioInfo is received (0 = wait for AudioInfo)", True, 0, 255),
    "sample_rate": ParamSpec(0, "sample rate in Hz when no AudioInfo is received (0 = wait)", True, 0, 384000),
    "sample_format": ParamSpec("", "S16LE, S24LE, S32LE or F32LE when no AudioInfo is received (empty = wait)"),
    **{name: ParamSpec(_DEFAULTS[name], text, False, low, high) for name, (text, low, high) in _TUNABLES.items()},
    "clip_warn_fraction": ParamSpec(0.001, "warn when more than this fraction of a message clips", False, 0.0, 1.0),
    "pose_radius_m": ParamSpec(0.0, "pose position = unit vector to the source times this, metres", False, 0.0, 100.0),
    "marker_length_m": ParamSpec(0.6, "rviz arrow length at activity 1, metres", False, 0.01, 100.0),
    "queue_size": ParamSpec(20, "audio messages kept while the model runs (subscription depth)", True, 1, 10000),
    "model_threads": ParamSpec(
        1, "CPU threads for the model (onnxruntime's intra-op threads for an .onnx model, torch's for a .pt)",
        True, 1, 64,
    ),  # fmt: skip
    "direction_prior": ParamSpec(
        True, "weight the spectrum with the model's direction prior (learned by sst adapt) when it has one; "
        "false = ignore it (talkers outside the learned sector then count fully)",
    ),  # fmt: skip
    "stats_period_s": ParamSpec(10.0, "log latency and dropped audio this often, s (0 = never)", True, 0.0, 3600.0),
    **DIAGNOSTICS_PARAMETERS,
}

#: Deprecated parameter name -> its new name (the tracking configuration's field name).
RENAMED: dict[str, str] = {
    "max_sources": "max_peaks",
    "peak_threshold": "threshold",
    "birth_frames": "birth_hits",
    "coast_frames": "coast_misses",
    "death_frames": "death_misses",
    "torch_threads": "model_threads",  # the model may run with onnxruntime, not torch
}


def _typed(values: dict[str, Any], cls: type) -> dict[str, Any]:
    """The tunables of ``values`` that are fields of ``cls``, cast to their parameter types."""
    return {f.name: type(PARAMETERS[f.name].default)(values[f.name]) for f in fields(cls) if f.name in _TUNABLES}


def pipeline_config(values: dict[str, Any]) -> PipelineConfig:
    """Typed run-time configuration from parameter values (raises :class:`ConfigError`)."""
    return PipelineConfig(
        peaks=PeakConfig(**_typed(values, PeakConfig)),
        tracker=TrackerConfig(**_typed(values, TrackerConfig)),
        **_typed(values, PipelineConfig),
    )


_KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def renamed_value(old: str, value: Any, new_value: Any) -> Any:
    """The value a deprecated parameter ``old`` gives its new name, checked like the new name's.

    Args:
        old: a key of :data:`RENAMED`.
        value: the value given for ``old``.
        new_value: the new name's current value (its default unless it was given too).
    Returns:
        ``value`` as the new parameter's type.
    Raises:
        ConfigError: both names given, a value of another type, or one outside the new name's range.
    """
    new = RENAMED[old]
    spec = PARAMETERS[new]
    kind = type(spec.default)
    if new_value != spec.default:
        raise ConfigError(f"parameters '{old}' (deprecated) and '{new}' are both given; keep only '{new}'")
    accepted = (int, float) if kind is float else (kind,)
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, accepted):
        raise ConfigError(
            f"parameter '{old}' (deprecated, now '{new}') must be {_KIND_NAMES.get(kind, kind.__name__)}, got {value!r}"
        )
    low = spec.min_value if spec.min_value is not None else -float("inf")
    high = spec.max_value if spec.max_value is not None else float("inf")
    if not low <= value <= high:
        raise ConfigError(
            f"parameter '{old}' (deprecated, now '{new}') = {value!r} is outside [{spec.min_value}, {spec.max_value}]"
        )
    return kind(value)
