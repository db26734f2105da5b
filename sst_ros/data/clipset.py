"""Labelled clip sets: multichannel WAV + per-frame CSV labels + ``array.yaml``.

Layout of a clip-set folder (written by the simulator, read by training and evaluation;
labelled data recorded elsewhere plugs in the same way)::

    <dir>/array.yaml          geometry of the WAV files' channels (optional, see sst_ros.geometry)
    <dir>/<name>.wav          audio: the array's device stream, or its M microphone channels
                              (the rule of MicArray.microphone_audio; the simulator writes
                              microphone channels with a matching array.yaml)
    <dir>/<name>.csv          labels: time_s,azimuth_deg,elevation_deg,active

One CSV row per label frame (:data:`~sst_ros.timebase.OUTPUT_FRAME_S` = 100 ms by default): ``time_s`` is the start
of the frame in seconds from the start of the WAV, azimuth and elevation are degrees in the
array frame (REP-103: x forward, y left, z up; azimuth counter-clockwise from +x in
(-180, 180]), ``active`` is 0/1 (the tracked source's direct path is active). Training sets
hold a single source per clip (source 0 = the tracked talker).

In memory a clip (or a crop of one) is a :class:`LabelledAudio`: audio, its rate and its
:class:`Labels`. :class:`ClipSet` reads a folder; :mod:`sst_ros.data.clip_reader` reads
clips or crops of them from several folders at a model's rate and geometry.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import yaml

from sst_ros.audio.wav import read_wav, write_wav
from sst_ros.errors import AudioFormatError, ConfigError, DataError
from sst_ros.geometry import MicArray, load_array
from sst_ros.timebase import OUTPUT_FRAME_S

__all__ = [
    "ARRAY_FILE",
    "CSV_COLUMNS",
    "Clip",
    "ClipSet",
    "LabelledAudio",
    "Labels",
    "read_labels",
    "write_array_yaml",
    "write_clip",
    "write_labels",
]

CSV_COLUMNS = ("time_s", "azimuth_deg", "elevation_deg", "active")
ARRAY_FILE = "array.yaml"


@dataclass
class Labels:
    """Per-frame labels of one clip (the tracked source).

    Attributes:
        time_s: (F,) float64 start time of each frame, seconds from the start of the clip.
        azimuth_deg: (F,) float64 azimuth in the array frame, degrees in (-180, 180].
        elevation_deg: (F,) float64 elevation in the array frame, degrees in [-90, 90].
        active: (F,) bool, True where the source's direct path is active.
        frame_s: frame length in seconds (hop between rows).
    """

    time_s: np.ndarray
    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray
    active: np.ndarray
    frame_s: float = OUTPUT_FRAME_S

    def __post_init__(self) -> None:
        self.time_s = np.asarray(self.time_s, dtype=np.float64).reshape(-1)
        self.azimuth_deg = np.asarray(self.azimuth_deg, dtype=np.float64).reshape(-1)
        self.elevation_deg = np.asarray(self.elevation_deg, dtype=np.float64).reshape(-1)
        self.active = np.asarray(self.active).astype(bool).reshape(-1)
        self.frame_s = float(self.frame_s)
        n = self.time_s.shape[0]
        for name in ("azimuth_deg", "elevation_deg", "active"):
            if getattr(self, name).shape[0] != n:
                raise DataError(
                    f"labels: '{name}' has {getattr(self, name).shape[0]} frames but 'time_s' has {n}; "
                    "give one value per frame"
                )
        if not self.frame_s > 0:
            raise DataError(f"labels: frame_s must be > 0 seconds, got {self.frame_s}")

    def __len__(self) -> int:
        return int(self.time_s.shape[0])

    def slice(self, start: int, stop: int) -> Labels:
        """Frames ``start:stop`` with times kept relative to the original clip."""
        return Labels(
            self.time_s[start:stop],
            self.azimuth_deg[start:stop],
            self.elevation_deg[start:stop],
            self.active[start:stop],
            self.frame_s,
        )

    def padded(self, n_frames: int) -> Labels:
        """The first ``n_frames`` frames, extended past the end by inactive frames (azimuth and
        elevation 0, times continuing every ``frame_s`` seconds)."""
        n = len(self)
        if n_frames <= n:
            return self.slice(0, n_frames)
        extra = n_frames - n
        t0 = self.time_s[-1] + self.frame_s if n else 0.0
        return Labels(
            np.concatenate([self.time_s, t0 + self.frame_s * np.arange(extra)]),
            np.concatenate([self.azimuth_deg, np.zeros(extra)]),
            np.concatenate([self.elevation_deg, np.zeros(extra)]),
            np.concatenate([self.active, np.zeros(extra, dtype=bool)]),
            self.frame_s,
        )


class LabelledAudio(NamedTuple):
    """Audio with its per-frame labels in memory: a whole clip or a crop of one.

    The package's one in-memory type for labelled audio (clip sets, training crops,
    adaptation crops, simulated scenes). A tuple, so ``audio, fs, labels = clipset.load(c)``
    unpacks it.

    Attributes:
        audio: float32 (frames, M) microphone audio.
        sample_rate_hz: rate of ``audio``, Hz.
        labels: one :class:`Labels` row per label frame of the audio.
    """

    audio: np.ndarray
    sample_rate_hz: int
    labels: Labels


def write_labels(csv_path: str | os.PathLike[str], labels: Labels) -> Path:
    """Write labels as CSV with columns exactly ``time_s,azimuth_deg,elevation_deg,active``."""
    path = Path(csv_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for t, az, el, act in zip(labels.time_s, labels.azimuth_deg, labels.elevation_deg, labels.active, strict=True):
            w.writerow((f"{t:.4f}", f"{az:.3f}", f"{el:.3f}", int(bool(act))))
    return path


def read_labels(csv_path: str | os.PathLike[str]) -> Labels:
    """Read a label CSV; the frame length is the spacing of ``time_s`` (default ``OUTPUT_FRAME_S``).

    Raises:
        DataError: missing file, wrong header or unparsable rows (message names file and line).
    """
    path = Path(csv_path)
    if not path.is_file():
        raise DataError(f"label file {path} does not exist; every <name>.wav needs a <name>.csv beside it")
    rows: list[tuple[float, float, float, bool]] = []
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != CSV_COLUMNS:
            raise DataError(f"{path}: header must be exactly '{','.join(CSV_COLUMNS)}', got {header}")
        for lineno, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != 4:
                raise DataError(f"{path}:{lineno}: expected 4 columns, got {len(row)}")
            try:
                act = float(row[3])
                rows.append((float(row[0]), float(row[1]), float(row[2]), act > 0.5))
            except ValueError as err:
                raise DataError(f"{path}:{lineno}: not a number in {row}") from err
    arr = np.array(rows, dtype=np.float64).reshape(-1, 4)
    frame_s = OUTPUT_FRAME_S
    if arr.shape[0] >= 2:
        frame_s = float(np.round(np.median(np.diff(arr[:, 0])), 6))
        if frame_s <= 0:
            raise DataError(f"{path}: time_s must increase from row to row")
    return Labels(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3] > 0.5, frame_s)


def write_clip(
    out_dir: str | os.PathLike[str],
    name: str,
    audio: np.ndarray,
    fs: int,
    labels: Labels,
    subtype: str = "PCM_24",
) -> Path:
    """Write ``<out_dir>/<name>.wav`` (audio (frames, M) float32 in [-1, 1)) and ``<name>.csv``.

    Returns:
        Path of the WAV file.
    """
    if "/" in name or os.sep in name or not name:
        raise DataError(f"clip name '{name}' must be a plain file stem (no folders)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wav_path = write_wav(out / f"{name}.wav", np.clip(audio, -1.0, 1.0 - 2.0**-23), fs, subtype=subtype)
    write_labels(out / f"{name}.csv", labels)
    return wav_path


def write_array_yaml(directory: str | os.PathLike[str], array: MicArray) -> Path:
    """Write the array geometry as ``<directory>/array.yaml``."""
    path = Path(directory) / ARRAY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(array.to_dict(), sort_keys=False))
    return path


@dataclass(frozen=True)
class Clip:
    """One labelled clip of a set: its name (file stem) and the paths of its WAV and CSV."""

    name: str
    wav_path: Path
    csv_path: Path


class ClipSet:
    """A labelled clip-set folder (see module docstring).

    Attributes:
        dir: the folder.
        clips: clips sorted by name (each WAV that has a CSV beside it).
        array: geometry of the WAV channels: the ``array`` argument, else ``array.yaml``, else None.

    Args:
        directory: the clip-set folder.
        array: geometry of the WAV files' channels, overriding the folder's ``array.yaml``.
    """

    def __init__(self, directory: str | os.PathLike[str], array: MicArray | None = None) -> None:
        self.dir = Path(directory)
        if not self.dir.is_dir():
            raise DataError(f"clip set {self.dir} is not a folder; create it with `sst simulate --out {self.dir}`")
        self.clips: list[Clip] = []
        for wav in sorted(self.dir.glob("*.wav")):
            csv_path = wav.with_suffix(".csv")
            if csv_path.is_file():
                self.clips.append(Clip(wav.stem, wav, csv_path))
        self.array: MicArray | None = array
        array_path = self.dir / ARRAY_FILE
        if array is None and array_path.is_file():
            try:
                self.array = load_array(array_path)
            except ConfigError as err:
                raise DataError(f"clip set {self.dir}: bad {ARRAY_FILE}: {err}") from err

    def __len__(self) -> int:
        return len(self.clips)

    def __iter__(self) -> Iterator[Clip]:
        return iter(self.clips)

    def __getitem__(self, index: int) -> Clip:
        return self.clips[index]

    def load(self, clip: Clip | int | str) -> LabelledAudio:
        """Load one clip: audio float32 (frames, C) at the file's rate, and its labels.

        With a known :attr:`array` the audio is its microphone channels (C = M, selected by
        :meth:`MicArray.microphone_audio`); without one, the WAV's channels as they are.
        """
        clip = self._resolve(clip)
        audio, fs = self.read_audio(clip)
        return LabelledAudio(audio, fs, read_labels(clip.csv_path))

    def read_audio(self, clip: Clip | int | str, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, int]:
        """Samples ``start:stop`` of a clip's WAV (only those are read), channels as :meth:`load`.

        Returns:
            (audio float32 (frames, C), sample rate Hz).
        Raises:
            DataError: unreadable file or a channel count the set's array does not describe.
        """
        clip = self._resolve(clip)
        try:
            audio, fs = read_wav(clip.wav_path, start, stop)
            if self.array is not None:
                audio = self.array.microphone_audio(audio, str(clip.wav_path))
        except AudioFormatError as err:
            raise DataError(f"clip set {self.dir}: {err}") from err
        return audio, fs

    def _resolve(self, clip: Clip | int | str) -> Clip:
        if isinstance(clip, Clip):
            return clip
        if isinstance(clip, int):
            return self.clips[clip]
        for c in self.clips:
            if c.name == clip:
                return c
        raise DataError(f"clip set {self.dir} has no clip named '{clip}'")

    def __repr__(self) -> str:
        return f"ClipSet({str(self.dir)!r}, {len(self.clips)} clips)"
