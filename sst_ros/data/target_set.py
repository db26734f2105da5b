"""Unlabelled target-domain audio: rosbag2 bags from ``record_target`` or folders of WAV files.

A target set is a list of recordings (bags of either ROS 2 audio stack, see
:func:`sst_ros.data.bag.read_bag_audio`), each resampled to the model's sample rate
(:func:`sst_ros.audio.resample.resample`) and reduced to the model's microphones in the
model's microphone order. Adaptation draws random variable-length crops from it.

Channel handling (checked per recording, errors name the file and the mismatch): a bag's
recorded geometry (``array.yaml`` beside the bag) must match the model's geometry
(:meth:`MicArray.geometry_mismatch`) and describes the recorded channels; without one the
model's geometry does. Either way :meth:`MicArray.microphone_audio` picks the microphones
(a device stream of ``n_input_channels`` by its ``channel_order``, or exactly ``n_mics``
channels as they are).

What is skipped or cleaned (with a warning naming the file): a bag holding no audio message
(e.g. left by a recorder whose topic nobody published) is skipped; NaN/Inf samples (a float
stream from a faulty driver) are set to 0, and a recording in which more than
:data:`MAX_NONFINITE_FRACTION` of the samples are non-finite is rejected. A bag that was not
closed (killed recorder) is an error naming its recovery command.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sst_ros.audio.finite import finite_audio
from sst_ros.audio.resample import resample
from sst_ros.audio.stacks import AUDIO_INFO_TYPE
from sst_ros.audio.wav import read_wav
from sst_ros.data.bag import AUDIO_TOPIC_TYPES, BAG_STORAGE_SUFFIXES, bag_message_types, is_bag_dir, walk_bag_tree
from sst_ros.data.clipset import ARRAY_FILE
from sst_ros.errors import AudioFormatError, BagError, DataError
from sst_ros.geometry import MicArray

__all__ = [
    "MAX_NONFINITE_FRACTION",
    "TargetRecording",
    "TargetSet",
    "file_sha256",
    "find_recordings",
    "load_target_set",
]

_LOG = logging.getLogger(__name__)

#: A recording with more than this fraction of NaN/Inf samples is rejected (fewer are set to 0).
MAX_NONFINITE_FRACTION = 0.5


@dataclass(frozen=True)
class TargetRecording:
    """One unlabelled recording, ready for the model.

    Attributes:
        source: the file or bag folder it came from.
        topic: the bag topic, or None for a WAV file.
        audio: float32 (frames, n_mics) at the target set's sample rate, model microphone order.
        sha256: hash of the file (WAV) or of the bag folder's files (bag).
    """

    source: Path
    topic: str | None
    audio: np.ndarray
    sha256: str

    @property
    def n_frames(self) -> int:
        """Length in samples."""
        return int(self.audio.shape[0])


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file, or of a folder's files (relative names and contents, sorted)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _microphones(audio: np.ndarray, array: MicArray, origin: str, recorded: MicArray | None = None) -> np.ndarray:
    """Reduce (frames, C) recorded audio to (frames, n_mics) in the model's microphone order.

    The recording's own geometry (a bag's ``array.yaml``) selects the microphones when its
    channel counts fit the audio; otherwise the model's array does (a recorder started with
    another array of the same microphones, e.g. the 4-channel ReSpeaker config on its
    6-channel stream).
    """
    if recorded is not None:
        mismatch = array.geometry_mismatch(recorded)
        if mismatch is not None:
            raise DataError(
                f"{origin}: the recorded geometry does not match the model's: {mismatch}; record with the "
                "model's array or adapt a model trained for the recording array"
            )
    for geometry in (recorded, array):
        if geometry is not None:
            try:
                return geometry.microphone_audio(audio, origin)
            except AudioFormatError:
                continue
    described = f"the recorded {ARRAY_FILE} ('{recorded.name}', {_counts(recorded)}) nor " if recorded else ""
    raise DataError(
        f"{origin}: {audio.shape[1] if audio.ndim == 2 else audio.shape} channels fit neither {described}the model's "
        f"array '{array.name}' ({_counts(array)}): record with the array config of the device that was recorded "
        "(record_target's 'array' parameter, or fix the bag's array.yaml), or adapt a model trained for it"
    )


def _counts(array: MicArray) -> str:
    """'6 input channels, 4 microphones' for messages."""
    return f"{array.n_input_channels} input channels, {array.n_mics} microphones"


def find_recordings(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[str, Path]]:
    """``("bag", folder)`` or ``("wav", file)`` for each bag / WAV file named or found below a named folder.

    Folders are walked with :func:`sst_ros.data.bag.walk_bag_tree` (top-down, names sorted;
    in each folder its bags, then its WAV files).

    Raises:
        DataError: a missing path, a file that is neither WAV nor bag storage, a folder without recordings.
    """
    found: list[tuple[str, Path]] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise DataError(f"target path {p} does not exist; give rosbag2 folders, WAV files or folders of them")
        if p.is_file() and p.suffix in BAG_STORAGE_SUFFIXES:
            p = p.parent
        if is_bag_dir(p):
            found.append(("bag", p))
        elif p.is_file():
            if p.suffix.lower() != ".wav":
                raise DataError(f"target file {p} is neither a WAV file nor part of a rosbag2 bag")
            found.append(("wav", p))
        else:
            inner: list[tuple[str, Path]] = []
            for folder, bags, files in walk_bag_tree(p):
                inner.extend(("bag", b) for b in bags)
                inner.extend(("wav", folder / f) for f in files if f.lower().endswith(".wav"))
            if not inner:
                raise DataError(f"target folder {p} holds no rosbag2 bag and no WAV file")
            found.extend(inner)
    return found


def _finite_target_audio(audio: np.ndarray, origin: str) -> np.ndarray:
    """``audio`` with NaN/Inf samples set to 0 (:func:`sst_ros.audio.finite.finite_audio`), warned
    naming ``origin`` and the count.

    Raises:
        DataError: more than :data:`MAX_NONFINITE_FRACTION` of the samples are non-finite.
    """
    clean, n_bad = finite_audio(audio)
    if n_bad == 0:
        return clean
    frac = n_bad / max(audio.size, 1)
    if frac > MAX_NONFINITE_FRACTION:
        raise DataError(
            f"{origin}: {n_bad} of {audio.size} samples ({frac:.0%}) are NaN or Inf; this recording is unusable: "
            "remove it from the target set and check the audio driver's output (record_target logs such samples)"
        )
    _LOG.warning("%s: %d of %d samples (%.2g%%) are NaN or Inf; set to 0", origin, n_bad, audio.size, 100 * frac)
    return clean


def _is_empty_bag(path: Path) -> bool:
    """Whether a closed bag holds no audio message (of either audio stack) and nothing but (maybe)
    AudioInfo (warned)."""
    types = bag_message_types(path)
    if any(types.get(t, 0) > 0 for t in AUDIO_TOPIC_TYPES) or set(types) - AUDIO_TOPIC_TYPES - {AUDIO_INFO_TYPE}:
        return False
    _LOG.warning("skipping bag %s: it holds no audio message (a recording whose audio topic nobody published?); "
                 "delete it to silence this warning", path)  # fmt: skip
    return True


def _read_bag(path: Path, array: MicArray, fs: int) -> list[TargetRecording]:
    from sst_ros.data.bag import read_bag_audio

    try:
        if _is_empty_bag(path):
            return []
        streams = read_bag_audio(path)
    except BagError:
        raise
    except Exception as err:  # a reader failing in an unforeseen way is still a bad bag
        raise BagError(f"cannot read bag {path}: {err}; check it with `ros2 bag info {path}`") from err
    if not streams:
        raise BagError(f"bag {path} has no audio topics; record with record_target")
    digest = file_sha256(path)
    out = []
    for s in streams:
        origin = f"bag {path}, topic {s.topic}"
        samples = np.asarray(s.samples, dtype=np.float32)
        if samples.ndim != 2 or samples.shape[0] == 0:
            _LOG.warning("skipping %s: no audio samples recorded (no audio message after its AudioInfo)", origin)
            continue
        audio = _microphones(_finite_target_audio(samples, origin), array, origin, s.geometry)
        out.append(TargetRecording(path, s.topic, resample(audio, int(s.sample_rate_hz), fs), digest))
    return out


def _read_wav_file(path: Path, array: MicArray, fs: int) -> TargetRecording:
    try:
        audio, fs_in = read_wav(path)
    except AudioFormatError as err:
        raise DataError(f"target WAV {path}: {err}") from err
    if audio.shape[0] == 0:
        raise DataError(f"target WAV {path} is empty (0 samples)")
    audio = _microphones(_finite_target_audio(audio, f"WAV {path}"), array, f"WAV {path}")
    return TargetRecording(path, None, resample(audio, fs_in, fs), file_sha256(path))


class TargetSet:
    """Unlabelled target recordings at one sample rate with random variable-length crops."""

    def __init__(self, recordings: Sequence[TargetRecording], sample_rate_hz: int) -> None:
        if not recordings:
            raise DataError("target set is empty; give at least one bag or WAV file with audio")
        self.recordings = list(recordings)
        self.sample_rate_hz = int(sample_rate_hz)

    def __len__(self) -> int:
        return len(self.recordings)

    @property
    def duration_s(self) -> float:
        """Total audio duration in seconds."""
        return sum(r.n_frames for r in self.recordings) / self.sample_rate_hz

    def provenance(self) -> list[dict[str, object]]:
        """One entry per recording: path, topic, sha256, duration_s (for checkpoint provenance)."""
        return [
            {
                "path": str(r.source),
                "topic": r.topic,
                "sha256": r.sha256,
                "duration_s": round(r.n_frames / self.sample_rate_hz, 3),
            }
            for r in self.recordings
        ]

    def sample_crops(self, rng: np.random.Generator, n: int, min_s: float, max_s: float) -> list[np.ndarray]:
        """``n`` random crops of uniform random length in [min_s, max_s] seconds.

        Recordings are chosen with probability proportional to their length; a recording
        shorter than the drawn length gives a whole-recording crop. Returns float32
        (frames_i, n_mics) arrays.
        """
        if not 0 < min_s <= max_s:
            raise DataError(f"crop lengths need 0 < min_s <= max_s, got {min_s}, {max_s}")
        lens = np.array([r.n_frames for r in self.recordings], dtype=np.float64)
        p = lens / lens.sum()
        crops = []
        for _ in range(n):
            rec = self.recordings[int(rng.choice(len(self.recordings), p=p))]
            length = int(round(rng.uniform(min_s, max_s) * self.sample_rate_hz))
            length = min(length, rec.n_frames)
            start = int(rng.integers(0, rec.n_frames - length + 1))
            crops.append(rec.audio[start : start + length])
        return crops


def load_target_set(
    paths: Sequence[str | os.PathLike[str]], array: MicArray, sample_rate_hz: int, min_duration_s: float = 0.0
) -> TargetSet:
    """Load bags / WAV files / folders of them as a :class:`TargetSet` for ``array``.

    Args:
        paths: rosbag2 folders (MCAP or sqlite3), WAV files, or folders holding them.
        array: the model's geometry; recordings must match its channel count.
        sample_rate_hz: the model's sample rate, Hz (recordings are resampled to it).
        min_duration_s: recordings shorter than this (seconds) are skipped with a warning.
    Raises:
        BagError: corrupt or empty bag, bag without audio topics.
        DataError: missing paths, channel-count mismatch (names the file and both counts), no audio.
    """
    recs: list[TargetRecording] = []
    for kind, p in find_recordings(paths):
        got = _read_bag(p, array, sample_rate_hz) if kind == "bag" else [_read_wav_file(p, array, sample_rate_hz)]
        for r in got:
            if r.n_frames < min_duration_s * sample_rate_hz:
                _LOG.warning(
                    "skipping %s (%s): %.2f s is shorter than %.2f s",
                    r.source,
                    r.topic or "wav",
                    r.n_frames / sample_rate_hz,
                    min_duration_s,
                )
                continue
            recs.append(r)
    if not recs:
        raise DataError(f"no usable target audio in {', '.join(str(p) for p in paths)} (all recordings empty or too "
                        "short; see the warnings above)")  # fmt: skip
    return TargetSet(recs, sample_rate_hz)
