"""Streaming audio -> tracks: the tracker node's work, without ROS.

One :class:`TrackingPipeline` per audio stream. Each message (interleaved PCM bytes or float
samples, stamped with the time of its first sample) goes through:

decode (``sst_ros.audio.pcm``) -> sanity checks (non-finite samples zeroed, clipping measured)
-> gap check (``GapDetector``; a gap, overlap or backwards stamp resets all streaming state)
-> channel selection (``MicArray.microphone_audio``) -> resampling to the model's rate
(``StreamingResampler``) -> CRNN streaming step (``StreamingTracker``, GRU state carried
across messages) -> peaks of each frame's spatial spectrum (:func:`extract_peaks`) ->
:class:`MultiTracker` -> one :class:`TrackFrame` per model frame (100 ms).

Stamps: a frame's ``stamp_ns`` is the audio time of the *start* of the frame it describes
(the label convention of the clip sets): the time of the first sample of the stream segment
(since the last reset) plus the frame's offset, minus the resampler's delay.

Nothing here imports rclpy; the node (``sst_ros.ros.tracker_node``) only converts messages
and logs what the :class:`ChunkReport` says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from sst_ros.audio.pcm import decode_pcm, normalize_format
from sst_ros.audio.resample import StreamingResampler
from sst_ros.audio.stream import GapDetector
from sst_ros.errors import AudioFormatError, ConfigError, ModelError
from sst_ros.geometry import MicArray
from sst_ros.model.azimuth import AzimuthGrid
from sst_ros.timebase import ns_from_s
from sst_ros.tracking.peaks import extract_peaks
from sst_ros.tracking.tracker import MultiTracker
from sst_ros.tracking.types import Peak, PeakConfig, Track, TrackerConfig

if TYPE_CHECKING:  # torch: imported only when a pipeline is built
    from sst_ros.model.checkpoint import LoadedModel

__all__ = ["AudioFormat", "ChunkReport", "PipelineConfig", "TrackFrame", "TrackingPipeline"]


@dataclass(frozen=True)
class AudioFormat:
    """What the incoming stream carries (from ``AudioInfo`` or parameters).

    Attributes:
        channels: interleaved channels per frame.
        sample_rate_hz: sample rate, Hz.
        sample_format: one of ``sst_ros.audio.pcm.SAMPLE_FORMATS`` (e.g. ``"S16LE"``).
    """

    channels: int
    sample_rate_hz: int
    sample_format: str


@dataclass(frozen=True)
class PipelineConfig:
    """Run-time tunables of the pipeline (all changeable while streaming).

    Attributes:
        peaks: peak picking (max sources, threshold, separation).
        tracker: association and hysteresis.
        activity_threshold: frames whose model activity is below this give no peaks, [0, 1].
        gap_tolerance_s: stamp jitter tolerated before a discontinuity resets the state, seconds.
        clip_level: absolute sample value counted as clipped (full scale 1.0).
    """

    peaks: PeakConfig = field(default_factory=PeakConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    activity_threshold: float = 0.5
    gap_tolerance_s: float = 0.02
    clip_level: float = 0.999

    def __post_init__(self) -> None:
        if not 0.0 <= self.activity_threshold <= 1.0:
            raise ConfigError(f"activity_threshold must be in [0, 1], got {self.activity_threshold}")
        if self.gap_tolerance_s < 0.0:
            raise ConfigError(f"gap_tolerance_s must be >= 0, got {self.gap_tolerance_s}")
        if not 0.0 < self.clip_level <= 1.0:
            raise ConfigError(f"clip_level must be in (0, 1], got {self.clip_level}")


@dataclass(frozen=True)
class TrackFrame:
    """The tracks describing one model frame.

    Attributes:
        stamp_ns: audio time of the start of the frame, nanoseconds.
        tracks: confirmed tracks (finite azimuths only), sorted by id.
        activity: the model's activity output for the frame, [0, 1] (0 if non-finite).
        peaks: the spectrum peaks the tracker was given.
    """

    stamp_ns: int
    tracks: tuple[Track, ...]
    activity: float
    peaks: tuple[Peak, ...]


@dataclass(frozen=True)
class ChunkReport:
    """What happened to one message.

    Attributes:
        frames: model frames completed by the message (usually 0 or 1 for 100 ms messages).
        n_samples: frames (samples per channel) in the message, 0 if it could not be decoded.
        dropped: reason the message was dropped (``"format"``, ``"channels"``), or None.
        error: human-readable error for a dropped message.
        gap_s: discontinuity before this message (positive gap, negative overlap), or None.
        n_nonfinite: NaN/Inf samples replaced by 0.
        clipped_fraction: fraction of samples at or above ``clip_level`` in magnitude.
        n_bad_frames: model frames with a non-finite output, skipped (no peaks).
    """

    frames: tuple[TrackFrame, ...] = ()
    n_samples: int = 0
    dropped: str | None = None
    error: str = ""
    gap_s: float | None = None
    n_nonfinite: int = 0
    clipped_fraction: float = 0.0
    n_bad_frames: int = 0


class TrackingPipeline:
    """Audio messages in, tracks per 100 ms frame out; state carried across messages.

    Args:
        loaded: a ``sst_ros.model.checkpoint.LoadedModel`` (model, array, feature and model config).
            Raises ``ModelError`` when ``array`` differs from the model's geometry.
        array: geometry of the *incoming* stream (channel order, input channel count); its
            microphone positions must be the model's. None = the model's own geometry.
        config: run-time tunables (see :meth:`set_config`).
    """

    def __init__(
        self, loaded: LoadedModel, array: MicArray | None = None, config: PipelineConfig | None = None
    ) -> None:
        # torch: imported only when a pipeline is built
        from sst_ros.model.checkpoint import check_array_matches
        from sst_ros.model.stream import StreamingTracker

        self._loaded = loaded
        self.array = loaded.array if array is None else array
        check_array_matches(loaded, self.array)  # ModelError naming both arrays
        self.model_rate_hz = int(loaded.feature_cfg.sample_rate_hz)
        self.grid = _azimuth_grid(loaded)
        self._config = config or PipelineConfig()
        self._stream = StreamingTracker(loaded)
        self._tracker = MultiTracker(self._config.tracker)
        self._format: AudioFormat | None = None
        self._resampler: StreamingResampler | None = None
        self._gaps: GapDetector | None = None
        self._origin_ns: int | None = None

    @property
    def config(self) -> PipelineConfig:
        """Current run-time tunables."""
        return self._config

    @property
    def audio_format(self) -> AudioFormat | None:
        """The accepted stream format, or None before :meth:`set_format`."""
        return self._format

    def set_config(self, config: PipelineConfig) -> None:
        """Change the tunables while streaming (tracks, ids and model state are kept)."""
        self._config = config
        self._tracker.set_config(config.tracker)
        if self._gaps is not None:
            self._gaps.tolerance_s = config.gap_tolerance_s

    def set_format(self, fmt: AudioFormat) -> None:
        """Accept a stream format; resets the streaming state when it changes.

        Raises:
            AudioFormatError: unknown sample format, non-positive rate, or a channel count that
                differs from the array config's ``n_input_channels`` (the message names both
                and the fix). Audio is then dropped until a valid format is set.
        """
        try:
            self._accept_format(fmt)
        except AudioFormatError:
            self._format = None
            raise

    def _accept_format(self, fmt: AudioFormat) -> None:
        sample_format = normalize_format(fmt.sample_format)
        if fmt.sample_rate_hz <= 0:
            raise AudioFormatError(f"sample rate must be positive, got {fmt.sample_rate_hz} Hz")
        if fmt.channels != self.array.n_input_channels:
            raise AudioFormatError(
                f"the audio has {fmt.channels} channels but array '{self.array.name}' expects "
                f"{self.array.n_input_channels} (microphones on channels {list(self.array.channel_order)}); "
                "set the 'array' parameter to the config matching the device (e.g. respeaker_usb_v2_6ch for "
                "the 6-channel ReSpeaker firmware) or fix the publisher's channel count"
            )
        new = AudioFormat(int(fmt.channels), int(fmt.sample_rate_hz), sample_format)
        if new == self._format:
            return
        self._format = new
        self._resampler = StreamingResampler(new.sample_rate_hz, self.model_rate_hz, self.array.n_mics)
        self._gaps = GapDetector(new.sample_rate_hz, self._config.gap_tolerance_s)
        self.reset()

    def reset(self) -> None:
        """Forget all streaming state (model, resampler, tracks); the next message starts anew."""
        self._stream.reset()
        self._tracker.reset()
        if self._resampler is not None:
            self._resampler.reset()
        if self._gaps is not None:
            self._gaps.reset()
        self._origin_ns = None

    def process_bytes(self, data: bytes, stamp_ns: int) -> ChunkReport:
        """Process one interleaved PCM payload (``AudioData.data``) stamped at its first sample.

        Without an accepted format the message is dropped (``dropped="format"``).
        """
        if self._format is None:
            return ChunkReport(dropped="format", error="no audio format yet (waiting for AudioInfo or parameters)")
        try:
            samples = decode_pcm(data, self._format.channels, self._format.sample_format)
        except AudioFormatError as err:
            return ChunkReport(dropped="format", error=str(err))
        return self.process_samples(samples, stamp_ns)

    def process_samples(self, samples: np.ndarray, stamp_ns: int) -> ChunkReport:
        """Process decoded samples (frames, channels) float at the accepted format's rate.

        Args:
            samples: (n, channels) float audio, full scale 1.0.
            stamp_ns: audio time of ``samples[0]``, nanoseconds.
        """
        fmt = self._format
        if fmt is None or self._resampler is None or self._gaps is None:
            return ChunkReport(dropped="format", error="no audio format yet (waiting for AudioInfo or parameters)")
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != fmt.channels:
            return ChunkReport(
                dropped="channels",
                error=f"message of shape {x.shape} does not have {fmt.channels} channels",
            )
        n = int(x.shape[0])
        if n == 0:
            return ChunkReport()
        finite = np.isfinite(x)
        n_nonfinite = int(finite.size - np.count_nonzero(finite))
        if n_nonfinite:
            x = np.where(finite, x, np.float32(0.0))
        clipped = float(np.count_nonzero(np.abs(x) >= self._config.clip_level)) / x.size
        gap_s = self._gaps.check(int(stamp_ns), n)
        if gap_s is not None:
            self._stream.reset()
            self._tracker.reset()
            self._resampler.reset()
            self._origin_ns = None
        if self._origin_ns is None:
            self._origin_ns = int(stamp_ns) - ns_from_s(self._resampler.delay_s)
        mics = self.array.microphone_audio(x)
        chunk = self._resampler.process(mics)
        frames: list[TrackFrame] = []
        n_bad = 0
        for doa in self._stream.process(chunk) if chunk.shape[0] else ():
            spectrum = np.asarray(doa.spectrum, dtype=np.float64)
            activity = float(doa.activity)
            if not (np.all(np.isfinite(spectrum)) and np.isfinite(activity)):
                n_bad += 1
                peaks: list[Peak] = []
                activity = 0.0
            elif activity < self._config.activity_threshold:
                peaks = []
            else:
                peaks = extract_peaks(spectrum, self.grid, self._config.peaks)
            tracks = tuple(
                t for t in self._tracker.update(peaks) if np.isfinite(t.azimuth_deg) and np.isfinite(t.activity)
            )
            stamp = self._origin_ns + ns_from_s(float(doa.time_offset_s))
            frames.append(TrackFrame(stamp_ns=stamp, tracks=tracks, activity=activity, peaks=tuple(peaks)))
        return ChunkReport(
            frames=tuple(frames),
            n_samples=n,
            gap_s=gap_s,
            n_nonfinite=n_nonfinite,
            clipped_fraction=clipped,
            n_bad_frames=n_bad,
        )


def _azimuth_grid(loaded: LoadedModel) -> AzimuthGrid:
    """The azimuth grid of a loaded model's spectrum."""
    grid = getattr(getattr(loaded, "model_cfg", None), "grid", None)
    if not isinstance(grid, AzimuthGrid):
        raise ModelError("the loaded model has no azimuth grid; load it with sst_ros.model.checkpoint.load_checkpoint")
    return grid
