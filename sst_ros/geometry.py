"""Microphone array geometry and angle conventions (REP-103).

Frames: right-handed, x forward, y left, z up, positions in metres in the array frame.
Azimuth = atan2(y, x) (0 = +x, counter-clockwise positive, range (-180, 180] degrees);
elevation = atan2(z, hypot(x, y)). Degrees at user-facing surfaces, radians inside.

Array geometry files (``config/arrays/*.yaml``)::

    name: respeaker_usb_v2
    source: <vendor documentation the layout was checked against>
    sample_rate_hz: 16000            # optional
    channel_order: [1, 2, 3, 4]      # incoming audio channel index of each microphone
    microphones_m:                   # one [x, y, z] per microphone, metres
      - [0.0320, 0.0, 0.0]
      ...
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sst_ros.errors import AudioFormatError, ConfigError

__all__ = [
    "SPEED_OF_SOUND_M_S",
    "POSITION_TOLERANCE_M",
    "MicArray",
    "angular_distance_deg",
    "array_config_dir",
    "az_el_from_quaternion",
    "az_el_from_vector",
    "config_dir",
    "load_array",
    "quaternion_from_az_el",
    "unit_vector",
    "wrap_deg",
]

SPEED_OF_SOUND_M_S = 343.0
# Positions beyond this are surely not metres (mm or cm typed by mistake).
_MAX_APERTURE_M = 2.0
_MIN_SPACING_M = 1e-3
# Two geometries are the same array when every microphone agrees within this, metres.
POSITION_TOLERANCE_M = 1e-3


@dataclass(frozen=True, eq=False)
class MicArray:
    """A microphone array.

    Attributes:
        name: identifier of the layout.
        positions_m: (M, 3) float64 microphone positions in metres, array frame (REP-103),
            ordered as the model sees channels.
        channel_order: for each microphone (row of ``positions_m``), the 0-based index of the
            channel in the incoming interleaved audio that carries it. The incoming audio may
            have more channels (e.g. processed channels of the ReSpeaker), see
            ``n_input_channels``.
        n_input_channels: channel count of the incoming audio stream.
        sample_rate_hz: native sample rate of the device, if known.
        source: where the layout was checked (vendor documentation).
    """

    name: str
    positions_m: np.ndarray
    channel_order: tuple[int, ...]
    n_input_channels: int
    sample_rate_hz: int | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        pos = np.asarray(self.positions_m, dtype=np.float64)
        object.__setattr__(self, "positions_m", pos)
        _validate_positions(pos, self.name)
        if len(self.channel_order) != pos.shape[0]:
            raise ConfigError(
                f"array '{self.name}': channel_order has {len(self.channel_order)} entries but there "
                f"are {pos.shape[0]} microphones; give one channel index per microphone"
            )
        if len(set(self.channel_order)) != len(self.channel_order):
            raise ConfigError(f"array '{self.name}': channel_order repeats a channel: {self.channel_order}")
        if min(self.channel_order) < 0 or max(self.channel_order) >= self.n_input_channels:
            raise ConfigError(
                f"array '{self.name}': channel_order {self.channel_order} out of range for "
                f"n_input_channels={self.n_input_channels}"
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MicArray):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.name, self.positions_m.tobytes(), self.channel_order, self.n_input_channels))

    @property
    def n_mics(self) -> int:
        """Number of microphones M."""
        return int(self.positions_m.shape[0])

    @property
    def centre_m(self) -> np.ndarray:
        """(3,) centroid of the microphones, metres."""
        return self.positions_m.mean(axis=0)

    @property
    def aperture_m(self) -> float:
        """Largest distance between two microphones, metres."""
        d = self.positions_m[:, None, :] - self.positions_m[None, :, :]
        return float(np.linalg.norm(d, axis=-1).max())

    @property
    def is_linear(self) -> bool:
        """True when all microphones lie on one line (front-back ambiguity about that line)."""
        centred = self.positions_m - self.centre_m
        sv = np.linalg.svd(centred, compute_uv=False)
        return bool(sv.size < 2 or sv[1] < 1e-6 * max(sv[0], 1e-12))

    @property
    def axis_deg(self) -> float | None:
        """Azimuth (degrees) of a linear array's axis, or None for non-linear arrays."""
        if not self.is_linear:
            return None
        centred = self.positions_m - self.centre_m
        _, _, vt = np.linalg.svd(centred)
        ax = vt[0]
        return float(wrap_deg(math.degrees(math.atan2(ax[1], ax[0]))))

    def microphone_audio(self, audio: np.ndarray, where: str = "audio") -> np.ndarray:
        """The microphone channels of recorded or streamed audio, in microphone order.

        This is the one channel-selection rule of the package; every entrance (WAV files,
        clip sets, bags, the tracker node) applies it exactly once, and everything after it
        (features, models, baselines) takes microphone audio only:

        - ``n_input_channels`` channels: the device stream; microphone ``i`` is channel
          ``channel_order[i]``. This wins when the two counts are equal, so a permuted
          ``channel_order`` is always applied.
        - ``n_mics`` channels (only when that differs from ``n_input_channels``): already
          microphone audio in microphone order (e.g. the simulator's clips for the 6-channel
          ReSpeaker stream), returned as is.

        Args:
            audio: (frames, C) samples.
            where: what the audio is (a file name), for the error message.
        Returns:
            (frames, n_mics) samples, same dtype (a copy when channels were selected).
        Raises:
            AudioFormatError: C fits neither count; the message names both and the fix.
        """
        x = np.asarray(audio)
        if x.ndim == 2 and x.shape[1] == self.n_input_channels:
            return x[:, list(self.channel_order)]
        if x.ndim == 2 and x.shape[1] == self.n_mics:
            return x
        got = f"{x.shape[1]} channels" if x.ndim == 2 else f"shape {x.shape}"
        raise AudioFormatError(
            f"{where} has {got} but array '{self.name}' expects a {self.n_input_channels}-channel stream"
            + (f" or {self.n_mics} microphone channels" if self.n_mics != self.n_input_channels else "")
            + "; check the audio source's channel count or choose the matching array config (--array)"
        )

    def device_stream(self, mic_audio: np.ndarray) -> np.ndarray:
        """The device stream carrying ``mic_audio``: the inverse of :meth:`microphone_audio`.

        Args:
            mic_audio: (frames, n_mics) microphone audio in microphone order.
        Returns:
            (frames, n_input_channels) with microphone ``i`` on channel ``channel_order[i]`` and
            zeros on the other channels (e.g. a demo WAV for a permuted or wider stream).
        """
        x = np.asarray(mic_audio)
        if x.ndim != 2 or x.shape[1] != self.n_mics:
            raise AudioFormatError(f"array '{self.name}' has {self.n_mics} microphones, got audio of shape {x.shape}")
        stream = np.zeros((x.shape[0], self.n_input_channels), dtype=x.dtype)
        stream[:, list(self.channel_order)] = x
        return stream

    def geometry_mismatch(self, other: MicArray) -> str | None:
        """What makes ``other``'s microphones differ from this array's, or None when they match.

        Microphone count and positions, in microphone order, within
        :data:`POSITION_TOLERANCE_M`; channel order and names are not compared (they describe
        the stream, not the geometry). Callers raise their own layer's error with the text.
        """
        if other.n_mics != self.n_mics:
            return f"array '{other.name}' has {other.n_mics} microphones, '{self.name}' has {self.n_mics}"
        dev = float(np.abs(other.positions_m - self.positions_m).max())
        if dev > POSITION_TOLERANCE_M:
            return f"array '{other.name}' differs from '{self.name}' by up to {dev * 1000:.1f} mm"
        return None

    def microphones_only(self) -> MicArray:
        """The same microphones as a stream of exactly those channels, in microphone order.

        The geometry of audio that :meth:`microphone_audio` already reduced (e.g. a clip
        set's WAV files written in microphone order).
        """
        n = self.n_mics
        return MicArray(
            name=self.name,
            positions_m=self.positions_m,
            channel_order=tuple(range(n)),
            n_input_channels=n,
            sample_rate_hz=self.sample_rate_hz,
            source=self.source,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (YAML/checkpoint), the inverse of :meth:`from_dict`."""
        out: dict[str, Any] = {
            "name": self.name,
            "source": self.source,
            "n_input_channels": self.n_input_channels,
            "channel_order": list(self.channel_order),
            "microphones_m": [[float(v) for v in row] for row in self.positions_m],
        }
        if self.sample_rate_hz:
            out["sample_rate_hz"] = int(self.sample_rate_hz)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "<dict>") -> MicArray:
        """Build from the YAML mapping; errors name ``origin`` and the offending field."""
        if not isinstance(data, dict):
            raise ConfigError(f"{origin}: an array config must be a mapping, got {type(data).__name__}")
        for key in ("name", "microphones_m"):
            if key not in data:
                raise ConfigError(f"{origin}: missing field '{key}'")
        try:
            pos = np.asarray(data["microphones_m"], dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{origin}: field 'microphones_m' must be a list of [x, y, z] numbers") from err
        if pos.ndim != 2 or pos.shape[1] != 3:
            raise ConfigError(f"{origin}: field 'microphones_m' must be a list of [x, y, z], got shape {pos.shape}")
        n = pos.shape[0]
        order = tuple(int(c) for c in data.get("channel_order", range(n)))
        n_in_given = data.get("n_input_channels")
        n_in = int(n_in_given) if n_in_given is not None else (max(order) + 1 if order else n)
        rate = data.get("sample_rate_hz")
        try:
            return cls(
                name=str(data["name"]),
                positions_m=pos,
                channel_order=order,
                n_input_channels=n_in,
                sample_rate_hz=int(rate) if rate else None,
                source=str(data.get("source", "")),
            )
        except ConfigError as err:
            raise ConfigError(f"{origin}: {err}") from err


def _validate_positions(pos: np.ndarray, name: str) -> None:
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ConfigError(f"array '{name}': microphones_m must have shape (M, 3), got {pos.shape}")
    if pos.shape[0] < 2:
        raise ConfigError(f"array '{name}': field 'microphones_m' needs at least 2 microphones, got {pos.shape[0]}")
    if not np.all(np.isfinite(pos)):
        raise ConfigError(f"array '{name}': field 'microphones_m' holds non-finite values")
    d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    iu = np.triu_indices(pos.shape[0], 1)
    if d[iu].min() < _MIN_SPACING_M:
        i, j = (int(v[np.argmin(d[iu])]) for v in iu)
        raise ConfigError(
            f"array '{name}': field 'microphones_m': microphones {i} and {j} coincide (< 1 mm apart); "
            "remove the duplicate"
        )
    if d.max() > _MAX_APERTURE_M:
        raise ConfigError(
            f"array '{name}': field 'microphones_m' spans {d.max():.3g} (> {_MAX_APERTURE_M} m); "
            "positions must be in metres (not millimetres or centimetres)"
        )


def config_dir() -> Path:
    """The package's ``config/`` folder: the source tree's, or ``share/sst_ros/config``.

    ``SST_CONFIG_DIR`` overrides. Raises :class:`ConfigError` when none is found.
    """
    candidates: list[Path] = []
    if os.environ.get("SST_CONFIG_DIR"):
        candidates.append(Path(os.environ["SST_CONFIG_DIR"]))
    candidates.append(Path(__file__).resolve().parent.parent / "config")
    candidates.append(Path(sys.prefix) / "share" / "sst_ros" / "config")
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / "share" / "sst_ros" / "config")
    for cand in candidates:
        if (cand / "arrays").is_dir():
            return cand
    raise ConfigError(
        "cannot find the sst_ros config folder (looked in: "
        + ", ".join(str(c) for c in candidates)
        + "); set SST_CONFIG_DIR or reinstall the package"
    )


def array_config_dir() -> Path:
    """Folder of the shipped array geometry files."""
    return config_dir() / "arrays"


def load_array(spec: str | os.PathLike[str] | dict[str, Any]) -> MicArray:
    """Load an array geometry from a YAML path, a shipped name (``respeaker_usb_v2``) or a dict."""
    if isinstance(spec, dict):
        return MicArray.from_dict(spec)
    path = Path(spec)
    if not path.suffix and not path.exists():
        path = array_config_dir() / f"{spec}.yaml"
        if not path.exists():
            names = sorted(p.stem for p in array_config_dir().glob("*.yaml"))
            raise ConfigError(f"unknown array '{spec}'; shipped arrays: {', '.join(names)}, or give a YAML path")
    if not path.is_file():
        raise ConfigError(f"array config {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    return MicArray.from_dict(data, origin=str(path))


def wrap_deg(angle: np.ndarray | float) -> np.ndarray | float:
    """Wrap degrees into (-180, 180]."""
    if isinstance(angle, (float, int)):  # the trackers' scalars: Python's float % is numpy's, without its overhead
        return -((-float(angle) + 180.0) % 360.0) + 180.0
    a = np.asarray(angle, dtype=np.float64)
    w = -((-a + 180.0) % 360.0) + 180.0
    return float(w) if np.ndim(w) == 0 else w


def angular_distance_deg(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray | float:
    """Absolute wrapped azimuth difference in degrees, in [0, 180]."""
    if isinstance(a, (float, int)) and isinstance(b, (float, int)):
        return abs(float(wrap_deg(float(a) - float(b))))
    d = np.abs(wrap_deg(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))
    return float(d) if np.ndim(d) == 0 else d


def unit_vector(azimuth_rad: np.ndarray | float, elevation_rad: np.ndarray | float = 0.0) -> np.ndarray:
    """Unit direction(s) (..., 3) in the array frame from azimuth/elevation in radians."""
    az = np.asarray(azimuth_rad, dtype=np.float64)
    el = np.asarray(elevation_rad, dtype=np.float64)
    ce = np.cos(el)
    return np.stack(np.broadcast_arrays(ce * np.cos(az), ce * np.sin(az), np.sin(el)), axis=-1)


def az_el_from_vector(vec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth and elevation in radians of direction vector(s) (..., 3), REP-103."""
    v = np.asarray(vec, dtype=np.float64)
    az = np.arctan2(v[..., 1], v[..., 0])
    el = np.arctan2(v[..., 2], np.hypot(v[..., 0], v[..., 1]))
    return az, el


def quaternion_from_az_el(azimuth_rad: float, elevation_rad: float = 0.0) -> tuple[float, float, float, float]:
    """Quaternion (x, y, z, w) whose +x axis points at (azimuth, elevation).

    yaw = azimuth, pitch = -elevation (REP-103: positive pitch tilts +x down), roll = 0.
    """
    cy, sy = math.cos(azimuth_rad / 2), math.sin(azimuth_rad / 2)
    cp, sp = math.cos(-elevation_rad / 2), math.sin(-elevation_rad / 2)
    # q = q_yaw(z) * q_pitch(y), roll = 0
    return (-sy * sp, cy * sp, sy * cp, cy * cp)


def az_el_from_quaternion(q: tuple[float, float, float, float]) -> tuple[float, float]:
    """Azimuth and elevation in radians of the +x axis of a rotation (inverse of :func:`quaternion_from_az_el`).

    Args:
        q: quaternion (x, y, z, w), not necessarily normalised (REP-103 frames).
    """
    x, y, z, w = (float(v) for v in q)
    n2 = x * x + y * y + z * z + w * w
    s = 2.0 / n2 if n2 > 0.0 else 0.0
    # first column of the rotation matrix: the body x axis in the parent frame
    axis = (1.0 - s * (y * y + z * z), s * (x * y + w * z), s * (x * z - w * y))
    return math.atan2(axis[1], axis[0]), math.atan2(axis[2], math.hypot(axis[0], axis[1]))
