"""Scene configuration: every random range of the simulator, loaded from YAML.

``config/sim/default.yaml`` holds the defaults (and documents every field). A config file
may give only the fields it changes; unknown fields, wrong types and impossible ranges are
rejected with a :class:`~sst_ros.errors.ConfigError` whose message names the field by its
dotted path (e.g. ``room.rt60_s``) and the fix.

Ranges are ``[low, high]`` pairs sampled uniformly (``low == high`` gives a constant).
Units: metres, seconds, degrees, dB, Hz.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from sst_ros.errors import ConfigError
from sst_ros.geometry import config_dir

__all__ = ["NOISE_TYPES", "SceneConfig", "default_config_path", "load_scene_config"]

NOISE_TYPES = ("white", "pink", "brown", "babble", "recorded")
FIELDS = ("spherical", "cylindrical")

MAX_TALKERS = 3  # talkers.count_weights covers 0..MAX_TALKERS simultaneous talkers

# Schema: dotted field -> (kind, bounds). Kinds: range (pair low <= high within bounds),
# vec3 (3-vector), float, optfloat (float or null), int, prob, bool, choice, weights
# (mapping name -> >= 0), weightlist (list of ``bounds`` weights >= 0).
_SCHEMA: dict[str, tuple[str, Any]] = {
    "sample_rate_hz": ("int", (8000, 48000)),
    "duration_s": ("float", (0.5, 600.0)),
    "label_frame_s": ("float", (0.01, 1.0)),
    "room.size_min_m": ("vec3", (1.5, 50.0)),
    "room.size_max_m": ("vec3", (1.5, 50.0)),
    "room.rt60_s": ("range", (0.0, 3.0)),
    "room.wall_absorption_spread": ("float", (0.0, 0.95)),
    "room.hf_rt60_ratio": ("range", (0.1, 1.0)),
    "room.ism_max_order": ("int", (0, 12)),
    "room.late_tail": ("bool", None),
    "room.rir_interval_s": ("float", (0.02, 5.0)),
    "room.max_rir_s": ("float", (0.05, 4.0)),
    "room.hybrid_prob": ("prob", None),
    "array.height_m": ("range", (0.0, 10.0)),
    "array.wall_margin_m": ("float", (0.0, 5.0)),
    "array.yaw_deg": ("range", (-180.0, 180.0)),
    "array.position_error_m": ("float", (0.0, 0.01)),
    "array.gain_error_db": ("float", (0.0, 6.0)),
    "array.self_noise_dbfs": ("range", (-150.0, -20.0)),
    "array.mic_response_db": ("float", (0.0, 12.0)),
    "source.height_m": ("range", (0.0, 10.0)),
    "source.static_prob": ("prob", None),
    "source.max_speed_m_s": ("float", (0.0, 5.0)),
    "source.sinusoid_amplitude_m": ("range", (0.0, 3.0)),
    "source.sinusoid_cycles": ("range", (0.0, 10.0)),
    "source.min_distance_m": ("float", (0.1, 10.0)),
    "source.max_distance_m": ("float", (0.2, 50.0)),
    "source.wall_margin_m": ("float", (0.0, 5.0)),
    "source.max_elevation_deg": ("optfloat", (1.0, 85.0)),
    "talkers.count_weights": ("weightlist", MAX_TALKERS + 1),
    "talkers.min_separation_deg": ("float", (0.0, 120.0)),
    "talkers.turn_taking_prob": ("prob", None),
    "talkers.level_spread_db": ("range", (-30.0, 30.0)),
    "talkers.crossing_prob": ("prob", None),
    "speech.real_prob": ("prob", None),
    "speech.espeak_pool_size": ("int", (1, 100000)),
    "speech.espeak_rate_wpm": ("range", (80.0, 450.0)),
    "speech.espeak_pitch": ("range", (0.0, 99.0)),
    "speech.pause_s": ("range", (0.0, 20.0)),
    "speech.lead_s": ("range", (0.0, 20.0)),
    "speech.utterance_gain_db": ("range", (-40.0, 40.0)),
    "noise.snr_db": ("range", (-40.0, 120.0)),
    "noise.field": ("choice", FIELDS),
    "noise.types": ("weights", NOISE_TYPES),
    "noise.directional_babble_prob": ("prob", None),
    "interferers.talker_prob": ("prob", None),
    "interferers.fan_prob": ("prob", None),
    "interferers.tv_prob": ("prob", None),
    "interferers.motor_prob": ("prob", None),
    "interferers.sir_db": ("range", (-30.0, 60.0)),
    "level.peak_dbfs": ("range", (-60.0, 0.0)),
    "labels.vad_threshold_db": ("float", (-120.0, 0.0)),
    "labels.active_min_fraction": ("float", (0.0, 1.0)),
    "labels.multi_source": ("bool", None),
}


def default_config_path() -> Path:
    """Path of the shipped ``config/sim/default.yaml``."""
    return config_dir() / "sim" / "default.yaml"


class _Section:
    """Attribute access to one section of a validated config (read-only view)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, key: str) -> Any:
        try:
            return self.__dict__["_data"][key]
        except KeyError as err:
            raise AttributeError(key) from err

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"


@dataclass(frozen=True)
class SceneConfig:
    """Validated scene configuration (see ``config/sim/default.yaml`` for every field).

    Access fields as attributes: ``cfg.sample_rate_hz``, ``cfg.room.rt60_s`` (tuple of two
    floats), ``cfg.noise.types`` (dict name -> weight). ``to_dict()`` gives the full mapping.
    """

    data: dict[str, Any]

    def __getattr__(self, key: str) -> Any:
        data = self.__dict__["data"]
        if key not in data:
            raise AttributeError(key)
        val = data[key]
        return _Section(val) if isinstance(val, dict) else val

    def to_dict(self) -> dict[str, Any]:
        """Deep copy as plain data (tuples become lists), loadable by :meth:`from_dict`."""
        return _plain(copy.deepcopy(self.data))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, origin: str = "<dict>") -> SceneConfig:
        """Defaults overlaid with ``data``; raises ConfigError naming ``origin`` and the field."""
        base = _load_yaml(default_config_path())
        merged = _validate(base, "<default.yaml>") if data is None else None
        if merged is None:
            if not isinstance(data, dict):
                raise ConfigError(f"{origin}: a scene config must be a mapping, got {type(data).__name__}")
            _merge(base, data, origin, "")
            merged = _validate(base, origin)
        return cls(merged)


def load_scene_config(spec: str | os.PathLike[str] | dict[str, Any] | SceneConfig | None = None) -> SceneConfig:
    """Load a scene config from a YAML path, a dict, or None (the shipped default)."""
    if isinstance(spec, SceneConfig):
        return spec
    if spec is None or isinstance(spec, dict):
        return SceneConfig.from_dict(spec)
    path = Path(spec)
    if not path.is_file():
        cand = config_dir() / "sim" / f"{spec}.yaml"
        if not path.suffix and cand.is_file():
            path = cand
        else:
            raise ConfigError(f"scene config {path} does not exist; give a YAML path or omit it for the default")
    return SceneConfig.from_dict(_load_yaml(path) or {}, origin=str(path))


def _load_yaml(path: Path) -> dict[str, Any]:
    """Parsed YAML mapping (a fresh deep copy; parses are cached by path and modification time)."""
    try:
        stat = path.stat()
    except FileNotFoundError as err:
        raise ConfigError(f"scene config {path} does not exist; reinstall sst_ros") from err
    return copy.deepcopy(_load_yaml_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=32)
def _load_yaml_cached(path_str: str, mtime_ns: int, size: int) -> dict[str, Any]:
    path = Path(path_str)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as err:
        raise ConfigError(f"scene config {path} does not exist; reinstall sst_ros") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    return data if data is not None else {}


def _merge(base: dict[str, Any], over: dict[str, Any], origin: str, prefix: str) -> None:
    for key, val in over.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            known = ", ".join(sorted(base))
            raise ConfigError(f"{origin}: unknown field '{dotted}'; known fields here: {known}")
        if isinstance(base[key], dict) and dotted != "noise.types":
            if not isinstance(val, dict):
                raise ConfigError(f"{origin}: field '{dotted}' must be a mapping of sub-fields")
            _merge(base[key], val, origin, dotted + ".")
        else:
            base[key] = val


def _get(data: dict[str, Any], dotted: str) -> Any:
    cur: Any = data
    for part in dotted.split("."):
        cur = cur[part]
    return cur


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = data
    for part in parts[:-1]:
        cur = cur[part]
    cur[parts[-1]] = value


def _num(origin: str, field: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{origin}: field '{field}' must be a number, got {v!r}")
    if v != v or v in (float("inf"), float("-inf")):
        raise ConfigError(f"{origin}: field '{field}' must be finite, got {v!r}")
    return float(v)


def _check_bounds(origin: str, field: str, v: float, bounds: tuple[float, float]) -> None:
    lo, hi = bounds
    if not lo <= v <= hi:
        raise ConfigError(f"{origin}: field '{field}' = {v:g} is outside the possible range [{lo:g}, {hi:g}]")


def _check_float(origin: str, field: str, v: Any, bounds: tuple[float, float]) -> float:
    x = _num(origin, field, v)
    _check_bounds(origin, field, x, bounds)
    return x


def _check_int(origin: str, field: str, v: Any, bounds: tuple[float, float]) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{origin}: field '{field}' must be an integer, got {v!r}")
    _check_bounds(origin, field, v, bounds)
    return v


def _check_prob(origin: str, field: str, v: Any, bounds: None) -> float:
    return _check_float(origin, field, v, (0.0, 1.0))


def _check_bool(origin: str, field: str, v: Any, bounds: None) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"{origin}: field '{field}' must be true or false, got {v!r}")
    return v


def _check_choice(origin: str, field: str, v: Any, bounds: tuple[str, ...]) -> Any:
    if v not in bounds:
        raise ConfigError(f"{origin}: field '{field}' must be one of {', '.join(bounds)}, got {v!r}")
    return v


def _check_optfloat(origin: str, field: str, v: Any, bounds: tuple[float, float]) -> float | None:
    return None if v is None else _check_float(origin, field, v, bounds)


def _check_range(origin: str, field: str, v: Any, bounds: tuple[float, float]) -> tuple[float, float]:
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise ConfigError(f"{origin}: field '{field}' must be a [low, high] pair, got {v!r}")
    lo, hi = (_num(origin, field, x) for x in v)
    if lo > hi:
        raise ConfigError(f"{origin}: field '{field}' has low {lo:g} > high {hi:g}; give [low, high]")
    _check_bounds(origin, field, lo, bounds)
    _check_bounds(origin, field, hi, bounds)
    return (lo, hi)


def _check_vec3(origin: str, field: str, v: Any, bounds: tuple[float, float]) -> tuple[float, ...]:
    if not isinstance(v, (list, tuple)) or len(v) != 3:
        raise ConfigError(f"{origin}: field '{field}' must be [x, y, z] in metres, got {v!r}")
    vec = tuple(_num(origin, field, x) for x in v)
    for x in vec:
        _check_bounds(origin, field, x, bounds)
    return vec


def _check_weights(origin: str, field: str, v: Any, bounds: tuple[str, ...]) -> dict[str, float]:
    if not isinstance(v, dict) or not v:
        raise ConfigError(f"{origin}: field '{field}' must map names ({', '.join(bounds)}) to weights")
    out = {}
    for name, w in v.items():
        if name not in bounds:
            raise ConfigError(f"{origin}: field '{field}' has unknown entry '{name}'; choose from {', '.join(bounds)}")
        x = _num(origin, f"{field}.{name}", w)
        if x < 0:
            raise ConfigError(f"{origin}: field '{field}.{name}' must be a weight >= 0, got {x:g}")
        out[name] = x
    if sum(out.values()) <= 0:
        raise ConfigError(f"{origin}: field '{field}' needs at least one positive weight")
    return out


def _check_weightlist(origin: str, field: str, v: Any, length: int) -> tuple[float, ...]:
    if not isinstance(v, (list, tuple)) or len(v) != length:
        raise ConfigError(f"{origin}: field '{field}' must be a list of {length} weights >= 0, got {v!r}")
    out = tuple(_num(origin, field, x) for x in v)
    if any(x < 0 for x in out):
        raise ConfigError(f"{origin}: field '{field}' must hold weights >= 0, got {v!r}")
    if sum(out) <= 0:
        raise ConfigError(f"{origin}: field '{field}' needs at least one positive weight")
    return out


# Schema kind -> checker(origin, field, value, bounds) returning the normalised value.
_CHECKERS: dict[str, Callable[[str, str, Any, Any], Any]] = {
    "float": _check_float,
    "optfloat": _check_optfloat,
    "int": _check_int,
    "prob": _check_prob,
    "bool": _check_bool,
    "choice": _check_choice,
    "range": _check_range,
    "vec3": _check_vec3,
    "weights": _check_weights,
    "weightlist": _check_weightlist,
}


def _validate(data: dict[str, Any], origin: str) -> dict[str, Any]:
    for field, (kind, bounds) in _SCHEMA.items():
        try:
            v = _get(data, field)
        except (KeyError, TypeError) as err:
            raise ConfigError(f"{origin}: missing field '{field}'") from err
        _set(data, field, _CHECKERS[kind](origin, field, v, bounds))
    _cross_checks(data, origin)
    return data


def _cross_checks(d: dict[str, Any], origin: str) -> None:
    room, arr, src = d["room"], d["array"], d["source"]
    for i, axis in enumerate("xyz"):
        if room["size_min_m"][i] > room["size_max_m"][i]:
            raise ConfigError(
                f"{origin}: field 'room.size_min_m' {axis} = {room['size_min_m'][i]:g} m exceeds "
                f"'room.size_max_m' {axis} = {room['size_max_m'][i]:g} m"
            )
    if room["rt60_s"][0] <= 0.0:
        raise ConfigError(f"{origin}: field 'room.rt60_s' must be > 0 s (an anechoic room is ism_max_order: 0)")
    min_h = room["size_min_m"][2]
    if arr["height_m"][1] >= min_h:
        raise ConfigError(
            f"{origin}: field 'array.height_m' high {arr['height_m'][1]:g} m does not fit under the lowest "
            f"ceiling room.size_min_m z = {min_h:g} m"
        )
    if src["height_m"][1] >= min_h:
        raise ConfigError(
            f"{origin}: field 'source.height_m' high {src['height_m'][1]:g} m does not fit under the lowest "
            f"ceiling room.size_min_m z = {min_h:g} m"
        )
    min_xy = min(room["size_min_m"][:2])
    if 2 * arr["wall_margin_m"] >= min_xy:
        raise ConfigError(
            f"{origin}: field 'array.wall_margin_m' = {arr['wall_margin_m']:g} m leaves no floor space in the "
            f"smallest room ({min_xy:g} m)"
        )
    if 2 * src["wall_margin_m"] >= min_xy:
        raise ConfigError(
            f"{origin}: field 'source.wall_margin_m' = {src['wall_margin_m']:g} m leaves no floor space in the "
            f"smallest room ({min_xy:g} m)"
        )
    if src["min_distance_m"] >= src["max_distance_m"]:
        raise ConfigError(
            f"{origin}: field 'source.min_distance_m' = {src['min_distance_m']:g} m must be below "
            f"'source.max_distance_m' = {src['max_distance_m']:g} m"
        )
    if d["label_frame_s"] * d["sample_rate_hz"] < 1:
        raise ConfigError(f"{origin}: field 'label_frame_s' is shorter than one sample")
    _multi_source_checks(d, origin)


def _multi_source_checks(d: dict[str, Any], origin: str) -> None:
    """Talker counts and unlabelled talkers against ``labels.multi_source``."""
    weights = d["talkers"]["count_weights"]
    if d["labels"]["multi_source"]:
        if d["interferers"]["talker_prob"] > 0:
            raise ConfigError(
                f"{origin}: field 'interferers.talker_prob' = {d['interferers']['talker_prob']:g} adds an unlabelled "
                "talker, which contradicts multi-source labels (labels.multi_source: true); set it to 0 and give "
                "talkers.count_weights instead"
            )
    elif any(w > 0 for i, w in enumerate(weights) if i != 1):
        raise ConfigError(
            f"{origin}: field 'talkers.count_weights' = {list(weights)} asks for scenes without exactly one talker, "
            "but single-source labels describe one talker; set labels.multi_source: true (or count_weights: "
            "[0, 1, 0, 0])"
        )


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v
