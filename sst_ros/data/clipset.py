"""Labelled clip sets: multichannel WAV + per-frame CSV labels + ``array.yaml``.

Layout of a clip-set folder (written by the simulator, read by training and evaluation;
labelled data recorded elsewhere plugs in the same way)::

    <dir>/array.yaml          geometry of the WAV files' channels (optional, see sst_ros.geometry)
    <dir>/<name>.wav          audio: the array's device stream, or its M microphone channels
                              (the rule of MicArray.microphone_audio; the simulator writes
                              microphone channels with a matching array.yaml)
    <dir>/<name>.csv          labels: time_s,azimuth_deg,elevation_deg,active (one source), or
                              time_s,source_id,azimuth_deg,elevation_deg,active (several)

One CSV row per label frame (:data:`~sst_ros.timebase.OUTPUT_FRAME_S` = 100 ms by default): ``time_s`` is the start
of the frame in seconds from the start of the WAV, azimuth and elevation are degrees in the
array frame (REP-103: x forward, y left, z up; azimuth counter-clockwise from +x in
(-180, 180]), ``active`` is 0/1 (the tracked source's direct path is active).

Multi-source clips (several talkers, non-speech interferers) use the second header: one row
per (frame, source), rows sorted by time then ``source_id``. ``source_id >= 0`` is a talker
(0, 1, 2, ...), ``source_id < 0`` a directional non-speech interferer (television, fan,
motor: never a talker). In memory both formats are one :class:`Labels`; a multi-source one
also lists every source in :attr:`Labels.sources`, and its own azimuth, elevation and active
fields are those of its lowest-id talker (all inactive when it has none), so code that
reads one talker keeps working. :meth:`Labels.talker_tracks` gives every talker of either
kind as (F, S) arrays.

In memory a clip (or a crop of one) is a :class:`LabelledAudio`: audio, its rate and its
:class:`Labels`. :class:`ClipSet` reads a folder; :mod:`sst_ros.data.clip_reader` reads
clips or crops of them from several folders at a model's rate and geometry.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import yaml

from sst_ros.audio.wav import read_wav, write_wav
from sst_ros.errors import AudioFormatError, ConfigError, DataError
from sst_ros.geometry import MicArray, angular_distance_deg, load_array
from sst_ros.timebase import OUTPUT_FRAME_S

__all__ = [
    "ARRAY_FILE",
    "CSV_COLUMNS",
    "MULTI_CSV_COLUMNS",
    "SourceLabels",
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
MULTI_CSV_COLUMNS = ("time_s", "source_id", "azimuth_deg", "elevation_deg", "active")
ARRAY_FILE = "array.yaml"


@dataclass
class SourceLabels:
    """Per-frame labels of one source of a multi-source clip.

    Attributes:
        source_id: >= 0 a talker, < 0 a directional non-speech interferer.
        azimuth_deg: (F,) float64 azimuth in the array frame, degrees in (-180, 180].
        elevation_deg: (F,) float64 elevation in the array frame, degrees.
        active: (F,) bool, True where the source's direct path is active.
    """

    source_id: int
    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray
    active: np.ndarray

    def __post_init__(self) -> None:
        self.source_id = int(self.source_id)
        self.azimuth_deg = np.asarray(self.azimuth_deg, dtype=np.float64).reshape(-1)
        self.elevation_deg = np.asarray(self.elevation_deg, dtype=np.float64).reshape(-1)
        self.active = np.asarray(self.active).astype(bool).reshape(-1)
        n = self.azimuth_deg.shape[0]
        if self.elevation_deg.shape[0] != n or self.active.shape[0] != n:
            raise DataError(f"labels of source {self.source_id}: azimuth, elevation and active differ in length")

    @property
    def is_talker(self) -> bool:
        """True for a talker (``source_id >= 0``), False for an interferer."""
        return self.source_id >= 0

    def slice(self, start: int, stop: int) -> SourceLabels:
        """Frames ``start:stop``."""
        return SourceLabels(
            self.source_id, self.azimuth_deg[start:stop], self.elevation_deg[start:stop], self.active[start:stop]
        )

    def padded(self, n_frames: int) -> SourceLabels:
        """The first ``n_frames`` frames, extended by inactive frames at azimuth and elevation 0."""
        n = self.azimuth_deg.shape[0]
        if n_frames <= n:
            return self.slice(0, n_frames)
        extra = n_frames - n
        return SourceLabels(
            self.source_id,
            np.concatenate([self.azimuth_deg, np.zeros(extra)]),
            np.concatenate([self.elevation_deg, np.zeros(extra)]),
            np.concatenate([self.active, np.zeros(extra, dtype=bool)]),
        )


@dataclass
class Labels:
    """Per-frame labels of one clip (the tracked source).

    Attributes:
        time_s: (F,) float64 start time of each frame, seconds from the start of the clip.
        azimuth_deg: (F,) float64 azimuth in the array frame, degrees in (-180, 180].
        elevation_deg: (F,) float64 elevation in the array frame, degrees in [-90, 90].
        active: (F,) bool, True where the source's direct path is active.
        frame_s: frame length in seconds (hop between rows).
        sources: every source of a multi-source clip, sorted by id (talkers and interferers);
            empty for single-source labels, whose one source is the fields above. Build
            multi-source labels with :meth:`from_sources`.
        multi_source: the labels are in the multi-source form (possibly with no source at all:
            a scene with nothing to track); set by :meth:`from_sources`.
    """

    time_s: np.ndarray
    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray
    active: np.ndarray
    frame_s: float = OUTPUT_FRAME_S
    sources: tuple[SourceLabels, ...] = ()
    multi_source: bool = False

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
        self.sources = tuple(sorted(self.sources, key=lambda src: src.source_id))
        ids = [src.source_id for src in self.sources]
        if len(set(ids)) != len(ids):
            raise DataError(f"labels: source ids must be unique, got {ids}")
        for src in self.sources:
            if src.azimuth_deg.shape[0] != n:
                raise DataError(
                    f"labels: source {src.source_id} has {src.azimuth_deg.shape[0]} frames but 'time_s' has {n}"
                )

    @classmethod
    def from_sources(
        cls, time_s: np.ndarray, sources: list[SourceLabels] | tuple[SourceLabels, ...], frame_s: float = OUTPUT_FRAME_S
    ) -> Labels:
        """Multi-source labels; the top-level fields are the lowest-id talker's (inactive at
        azimuth 0 when there is no talker)."""
        t = np.asarray(time_s, dtype=np.float64).reshape(-1)
        talkers = sorted((src for src in sources if src.is_talker), key=lambda src: src.source_id)
        if talkers:
            first = talkers[0]
            return cls(t, first.azimuth_deg, first.elevation_deg, first.active, frame_s, tuple(sources), True)
        zeros = np.zeros(t.shape[0])
        return cls(t, zeros, zeros, np.zeros(t.shape[0], bool), frame_s, tuple(sources), True)

    @property
    def is_multi_source(self) -> bool:
        """True for labels read from (or built as) the multi-source format."""
        return self.multi_source or bool(self.sources)

    def talkers(self) -> list[SourceLabels]:
        """The talkers: the sources with ``source_id >= 0``, or the one source of single-source labels (id 0)."""
        if not self.is_multi_source:
            return [SourceLabels(0, self.azimuth_deg, self.elevation_deg, self.active)]
        return [src for src in self.sources if src.is_talker]

    def interferers(self) -> list[SourceLabels]:
        """The labelled non-speech interferers (``source_id < 0``; none in single-source labels)."""
        return [src for src in self.sources if not src.is_talker]

    def talker_tracks(self) -> tuple[np.ndarray, np.ndarray]:
        """Every talker as columns: azimuth (F, S) degrees and active (F, S) bool, S >= 1
        (a clip without talkers gives one inactive column)."""
        return self._as_columns(self.talkers(), empty_columns=1)

    def interferer_tracks(self) -> tuple[np.ndarray, np.ndarray]:
        """Every labelled interferer as columns: azimuth (F, I) degrees and active (F, I) bool;
        I = 0 (empty columns) when there is none."""
        return self._as_columns(self.interferers(), empty_columns=0)

    def _as_columns(self, sources: list[SourceLabels], empty_columns: int) -> tuple[np.ndarray, np.ndarray]:
        """Azimuth (F, S) degrees and active (F, S) bool of ``sources``; without any, that many
        inactive columns."""
        if not sources:
            return np.zeros((len(self), empty_columns)), np.zeros((len(self), empty_columns), dtype=bool)
        return (
            np.stack([src.azimuth_deg for src in sources], axis=1),
            np.stack([src.active for src in sources], axis=1),
        )

    def map_azimuths(self, fn: Callable[[np.ndarray], np.ndarray]) -> Labels:
        """These labels with every source's azimuths replaced by ``fn(azimuths)`` (degrees in,
        degrees out; e.g. an array symmetry), elevations and activity kept."""
        return dataclasses.replace(
            self,
            azimuth_deg=fn(self.azimuth_deg),
            sources=tuple(dataclasses.replace(src, azimuth_deg=fn(src.azimuth_deg)) for src in self.sources),
        )

    def nearest_talker(self, predicted_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The truth a one-estimate-per-frame prediction is scored against: per frame, the
        azimuth of the active talker nearest (wrap-aware) to ``predicted_deg`` (F,) degrees, and
        whether any talker is active. Single-source labels: their own azimuth and activity.

        Returns:
            (azimuth (F,) degrees, active (F,) bool); frames without an active talker keep the
            first talker's azimuth.
        """
        az, on = self.talker_tracks()
        n = min(az.shape[0], np.asarray(predicted_deg).shape[0])
        az, on = az[:n], on[:n]
        pred = np.asarray(predicted_deg, dtype=np.float64)[:n]
        dist = np.where(on, np.asarray(angular_distance_deg(az, np.nan_to_num(pred)[:, None])), np.inf)
        best = np.argmin(dist, axis=1)
        chosen = az[np.arange(n), best]
        any_on = np.asarray(on.any(axis=1), dtype=bool)
        return np.asarray(np.where(any_on, chosen, az[:, 0])), any_on

    def any_talker_active(self) -> np.ndarray:
        """(F,) bool: at least one talker is active."""
        return np.asarray(self.talker_tracks()[1].any(axis=1))

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
            tuple(src.slice(start, stop) for src in self.sources),
            self.multi_source,
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
            tuple(src.padded(n_frames) for src in self.sources),
            self.multi_source,
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
    """Write labels as CSV: ``time_s,azimuth_deg,elevation_deg,active`` (single source), or
    ``time_s,source_id,azimuth_deg,elevation_deg,active`` with one row per (frame, source)
    for multi-source labels."""
    path = Path(csv_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        if labels.is_multi_source:
            w.writerow(MULTI_CSV_COLUMNS)
            for k, t in enumerate(labels.time_s):
                for src in labels.sources:
                    w.writerow((
                        f"{t:.4f}", src.source_id, f"{src.azimuth_deg[k]:.3f}", f"{src.elevation_deg[k]:.3f}",
                        int(bool(src.active[k])),
                    ))  # fmt: skip
            return path
        w.writerow(CSV_COLUMNS)
        for t, az, el, act in zip(labels.time_s, labels.azimuth_deg, labels.elevation_deg, labels.active, strict=True):
            w.writerow((f"{t:.4f}", f"{az:.3f}", f"{el:.3f}", int(bool(act))))
    return path


def _frame_s_of(path: Path, times: np.ndarray) -> float:
    """Frame length from the spacing of the (unique, sorted) frame times."""
    if times.shape[0] < 2:
        return OUTPUT_FRAME_S
    frame_s = float(np.round(np.median(np.diff(times)), 6))
    if frame_s <= 0:
        raise DataError(f"{path}: time_s must increase from row to row")
    return frame_s


def _read_multi(path: Path, reader: Iterator[list[str]]) -> Labels:
    """The rows of a multi-source label CSV (after its header).

    Rows are placed on the frame grid ``k = time_s / frame_s`` from 0 s (``frame_s``: the
    smallest spacing of the file's times), so a file that lists only some frames (e.g. only
    active rows) stays aligned with its audio: frames and sources without a row are inactive.
    """
    rows: list[tuple[float, int, float, float, bool]] = []
    for lineno, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 5:
            raise DataError(f"{path}:{lineno}: expected 5 columns, got {len(row)}")
        try:
            sid = float(row[1])
            if sid != int(sid):
                raise ValueError(row[1])
            rows.append((float(row[0]), int(sid), float(row[2]), float(row[3]), float(row[4]) > 0.5))
        except ValueError as err:
            raise DataError(f"{path}:{lineno}: not a number (source_id: an integer) in {row}") from err
    unique = np.array(sorted({r[0] for r in rows}), dtype=np.float64)
    if unique.size and unique[0] < 0:
        raise DataError(f"{path}: time_s {unique[0]} is negative; times are seconds from the start of the WAV")
    steps = np.diff(unique)
    frame_s = float(np.round(steps.min(), 6)) if steps.size else OUTPUT_FRAME_S
    index = np.round(unique / frame_s).astype(int) if unique.size else np.zeros(0, int)
    off_grid = np.abs(unique - index * frame_s) > 0.01 * frame_s
    if off_grid.any():
        raise DataError(
            f"{path}: time_s {unique[off_grid][0]} is not on the {frame_s} s frame grid from 0 s; give each row "
            "the start time of its frame"
        )
    n = int(index.max()) + 1 if index.size else 0
    frame_of = dict(zip(unique.tolist(), index.tolist(), strict=True))
    ids = sorted({r[1] for r in rows})
    az = {i: np.zeros(n) for i in ids}
    el = {i: np.zeros(n) for i in ids}
    act = {i: np.zeros(n, dtype=bool) for i in ids}
    seen: set[tuple[int, int]] = set()
    for t, sid, a, e, on in rows:
        k = frame_of[t]
        if (k, sid) in seen:
            raise DataError(f"{path}: source {sid} has two rows at time_s {t}; give one row per (frame, source)")
        seen.add((k, sid))
        az[sid][k], el[sid][k], act[sid][k] = a, e, on
    sources = [SourceLabels(i, az[i], el[i], act[i]) for i in ids]
    return Labels.from_sources(np.arange(n) * frame_s, sources, frame_s)


def read_labels(csv_path: str | os.PathLike[str]) -> Labels:
    """Read a label CSV of either format (see the module docstring); the frame length is the
    spacing of ``time_s`` (default ``OUTPUT_FRAME_S``). A multi-source file's rows are placed
    on the frame grid from 0 s: a frame or source without a row is inactive there.

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
        columns = tuple(h.strip() for h in header) if header is not None else None
        if columns == MULTI_CSV_COLUMNS:
            return _read_multi(path, reader)
        if columns != CSV_COLUMNS:
            raise DataError(
                f"{path}: header must be exactly '{','.join(CSV_COLUMNS)}' (one source) or "
                f"'{','.join(MULTI_CSV_COLUMNS)}' (several), got {header}"
            )
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
    return Labels(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3] > 0.5, _frame_s_of(path, arr[:, 0]))


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
        if (self.dir / "shards.json").is_file():  # sst_ros.sim.cli.SHARD_PLAN (no import: sim is heavier)
            raise DataError(
                f"clip set {self.dir} holds shards of a sharded simulation that were not merged: copy every "
                f"shard's folder here and run `sst simulate --merge --out {self.dir}` (it names missing clips)"
            )
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
