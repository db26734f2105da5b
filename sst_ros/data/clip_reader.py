"""The one loader of labelled clips and crops of them, at a model's sample rate and geometry.

Training, validation, adaptation and oracle evaluation read labelled clip sets through
:class:`ClipReader`: whole clips (:meth:`ClipReader.load`) or crops of whole label frames
(:meth:`ClipReader.crop`, :meth:`ClipReader.random_crop`). A crop reads only its span of the
WAV file; a file at another rate than the model's is resampled with
:func:`sst_ros.audio.resample.resample_part`, so a crop is bit-identical to the same span of
the whole clip resampled. Everything comes back as :class:`~sst_ros.data.clipset.LabelledAudio`.

Frames: crop frame ``j`` of a crop starting at frame ``start`` is label frame ``start + j``
and audio samples ``[(start + j) F, (start + j + 1) F)`` at the model rate, with
``F = frame_samples`` (1600 for 100 ms at 16 kHz). A clip's usable frames
(:meth:`ClipReader.n_frames`) are those with both a label and a whole frame of audio; a crop
reaching past them is zero-padded with inactive frames.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from sst_ros import timebase
from sst_ros.audio.resample import resample, resample_part, resampled_length
from sst_ros.audio.wav import WavInfo, wav_info
from sst_ros.data.clipset import Clip, ClipSet, LabelledAudio, Labels, read_labels
from sst_ros.errors import AudioFormatError, DataError
from sst_ros.geometry import MicArray

__all__ = ["ClipReader", "crop_frames", "random_start"]


def random_start(n_available: int, n_frames: int, rng: np.random.Generator) -> int:
    """First frame of a random ``n_frames`` crop of a clip with ``n_available`` usable frames.

    Uniform over the crops that fit; 0 without drawing a number when none fits (the crop is
    then the whole clip, zero-padded).
    """
    if n_available >= n_frames:
        return int(rng.integers(0, n_available - n_frames + 1))
    return 0


def _padded(audio: np.ndarray, labels: Labels, n_frames: int, frame_samples: int, fs: int) -> LabelledAudio:
    """Zero-pad audio (n <= n_frames * F samples) and labels to ``n_frames`` frames."""
    n = n_frames * frame_samples
    if audio.shape[0] < n:
        out = np.zeros((n, audio.shape[1]), dtype=np.float32)
        out[: audio.shape[0]] = audio
        audio = out
    return LabelledAudio(audio, fs, labels.padded(n_frames))


def crop_frames(clip: LabelledAudio, start: int, n_frames: int, frame_samples: int) -> LabelledAudio:
    """Frames ``start:start + n_frames`` of a clip in memory (the same as :meth:`ClipReader.crop`).

    Args:
        clip: audio (n, M) with labels.
        start: first label frame.
        n_frames: crop length, frames.
        frame_samples: samples per label frame at ``clip.sample_rate_hz``.
    """
    n_avail = min(len(clip.labels), clip.audio.shape[0] // frame_samples)
    stop = min(start + n_frames, n_avail)
    audio = clip.audio[start * frame_samples : stop * frame_samples]
    return _padded(audio, clip.labels.slice(start, stop), n_frames, frame_samples, clip.sample_rate_hz)


class ClipReader:
    """Labelled clips of one or more clip-set folders, read lazily as a model needs them.

    Audio comes back as the array's microphones (:meth:`MicArray.microphone_audio`, with the
    set's ``array.yaml`` when it has one, else ``array``), float32 at ``sample_rate_hz``.

    Args:
        dirs: clip-set folders (or :class:`ClipSet` objects), read in this order.
        array: the geometry in use; a set whose ``array.yaml`` differs is refused.
        sample_rate_hz: rate audio is returned at, Hz (clips at other rates are resampled).
        frame_s: the label frame the clips must have, seconds (the model's output frame).
    Raises:
        DataError: a missing folder, a set without clips, a set made for another geometry.
    """

    def __init__(
        self,
        dirs: Sequence[str | os.PathLike[str] | ClipSet],
        array: MicArray,
        sample_rate_hz: int,
        frame_s: float = timebase.OUTPUT_FRAME_S,
    ) -> None:
        items: list[tuple[ClipSet, Clip]] = []
        for d in dirs:
            cs = d if isinstance(d, ClipSet) else ClipSet(d)
            if len(cs) == 0:
                raise DataError(f"clip set {cs.dir} holds no clips (<name>.wav + <name>.csv); check the path")
            if cs.array is None:
                cs = ClipSet(cs.dir, array)  # channels as the array in use describes them
            else:
                mismatch = array.geometry_mismatch(cs.array)
                if mismatch is not None:
                    raise DataError(
                        f"clip set {cs.dir} was made for array '{cs.array.name}', not '{array.name}' "
                        f"({mismatch}); pass the matching --array or regenerate the clips"
                    )
            items.extend((cs, c) for c in cs.clips)
        self._init(items, array, int(sample_rate_hz), float(frame_s), {}, {})

    def _init(
        self,
        items: list[tuple[ClipSet, Clip]],
        array: MicArray,
        sample_rate_hz: int,
        frame_s: float,
        headers: dict[Clip, WavInfo],
        labels: dict[Clip, Labels],
    ) -> None:
        self.items = items
        self.array = array
        self.sample_rate_hz = sample_rate_hz
        self.frame_s = frame_s
        self.frame_samples = timebase.frame_samples(sample_rate_hz, frame_s)
        self._headers = headers  # shared with subsets
        self._label_cache = labels  # shared with subsets: a crop per step must not parse its CSV again

    def subset(self, indices: Sequence[int] | np.ndarray) -> ClipReader:
        """A reader over clips ``indices`` of this one, in that order."""
        sub = ClipReader.__new__(ClipReader)
        sub._init(
            [self.items[int(i)] for i in indices], self.array, self.sample_rate_hz, self.frame_s, self._headers,
            self._label_cache,
        )  # fmt: skip
        return sub

    def __len__(self) -> int:
        return len(self.items)

    # ---- whole clips ---------------------------------------------------------------------
    def load(self, index: int) -> LabelledAudio:
        """Clip ``index``: all of its audio at :attr:`sample_rate_hz` and all of its labels."""
        cs, clip = self.items[index]
        labels = self._labels(clip)
        audio, fs = cs.read_audio(clip)  # the set's array selects the microphones
        if fs != self.sample_rate_hz:
            audio = resample(audio, fs, self.sample_rate_hz)
        return LabelledAudio(np.asarray(audio, dtype=np.float32), self.sample_rate_hz, labels)

    def n_frames(self, index: int) -> int:
        """Usable frames of clip ``index``: labelled and covered by a whole frame of audio."""
        _, clip = self.items[index]
        return self._available(clip, self._labels(clip))

    # ---- crops ---------------------------------------------------------------------------
    def crop(self, index: int, start: int, n_frames: int) -> LabelledAudio:
        """Frames ``start:start + n_frames`` of clip ``index``, reading only that span of audio.

        Frames past the clip's usable ones are zero audio with inactive labels.
        """
        _, clip = self.items[index]
        labels = self._labels(clip)
        return self._crop(index, labels, self._available(clip, labels), start, n_frames)

    def random_crop(self, index: int, n_frames: int, rng: np.random.Generator) -> LabelledAudio:
        """A crop of ``n_frames`` frames at a :func:`random_start` of clip ``index``."""
        _, clip = self.items[index]
        labels = self._labels(clip)
        n_avail = self._available(clip, labels)
        return self._crop(index, labels, n_avail, random_start(n_avail, n_frames, rng), n_frames)

    def _crop(self, index: int, labels: Labels, n_avail: int, start: int, n_frames: int) -> LabelledAudio:
        cs, clip = self.items[index]
        stop = max(start, min(start + n_frames, n_avail))
        f = self.frame_samples
        header = self._header(clip)

        def read(a: int, b: int) -> np.ndarray:
            return cs.read_audio(clip, a, b)[0]

        audio = resample_part(read, header.n_frames, header.sample_rate_hz, self.sample_rate_hz, start * f, stop * f)
        return _padded(audio, labels.slice(start, stop), n_frames, f, self.sample_rate_hz)

    # ---- per-clip facts --------------------------------------------------------------------
    def _labels(self, clip: Clip) -> Labels:
        labels = self._label_cache.get(clip)
        if labels is None:
            labels = read_labels(clip.csv_path)
            if labels.is_multi_source and not len(labels):  # no source at all: the whole clip is inactive
                labels = Labels.from_sources(np.zeros(0), [], self.frame_s)
            if abs(labels.frame_s - self.frame_s) > 1e-6:
                raise DataError(
                    f"{clip.csv_path}: label frames of {labels.frame_s} s; the model needs {self.frame_s} s"
                )
            arrays = [labels.time_s, labels.azimuth_deg, labels.elevation_deg, labels.active]
            for src in labels.sources:
                arrays += [src.azimuth_deg, src.elevation_deg, src.active]
            for values in arrays:
                values.setflags(write=False)  # shared by every crop of the clip: never changed in place
            self._label_cache[clip] = labels
        return labels

    def _header(self, clip: Clip) -> WavInfo:
        header = self._headers.get(clip)
        if header is None:
            try:
                header = wav_info(clip.wav_path)
            except AudioFormatError as err:
                raise DataError(str(err)) from err
            self._headers[clip] = header
        return header

    def _available(self, clip: Clip, labels: Labels) -> int:
        h = self._header(clip)
        n_audio = resampled_length(h.n_frames, h.sample_rate_hz, self.sample_rate_hz) // self.frame_samples
        if labels.is_multi_source:  # frames after the last row are inactive, not unlabelled
            return n_audio
        return min(len(labels), n_audio)
