"""Streaming audio -> tracks: the tracker node's work, without ROS.

One :class:`TrackingPipeline` per audio stream. Each message (interleaved PCM bytes or float
samples, stamped with the time of its first sample) goes through:

decode (``sst_ros.audio.pcm``) -> sanity checks (non-finite samples zeroed, clipping measured)
-> clock model (:class:`~sst_ros.audio.clock.StreamClock`: stamps are hints, the sample count
is the truth; jitter, bursts and zero stamps absorbed, short gaps bridged with silence, long
gaps and backward jumps reset all streaming state, a declared rate the stamps contradict
refuses the stream) -> channel selection (``MicArray.microphone_audio``) -> accumulation until
the next model frame can complete (small messages cost no model call each) -> resampling to
the model's rate (``StreamingResampler``) -> CRNN streaming step (``StreamingTracker``, GRU
state carried across messages) -> peaks of each frame's spatial spectrum
(:func:`extract_peaks`) -> :class:`MultiTracker` -> one :class:`TrackFrame` per model frame
(100 ms).

Stamps: a frame's ``stamp_ns`` is the audio time of the *start* of the frame it describes (the
label convention of the clip sets), inferred by the clock model from the sample count, minus
the resampler's delay.

Nothing here imports rclpy; the node (``sst_ros.ros.tracker_node``) only converts messages
and logs what the :class:`ChunkReport` says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from sst_ros.audio.clock import StreamClock
from sst_ros.audio.finite import finite_audio
from sst_ros.audio.pcm import decode_pcm, normalize_format
from sst_ros.audio.resample import StreamingResampler
from sst_ros.errors import AudioFormatError, ConfigError, ModelError
from sst_ros.geometry import MicArray
from sst_ros.model.azimuth import AzimuthGrid
from sst_ros.timebase import ns_from_s
from sst_ros.tracking.spectra import track_frame
from sst_ros.tracking.tracker import MultiTracker
from sst_ros.tracking.types import Peak, PeakConfig, Track, TrackerConfig

if TYPE_CHECKING:
    from sst_ros.model.runtime import TrackerModel

__all__ = [
    "GATHER_MARGIN_S",
    "GATHER_MAX_S",
    "AudioFormat",
    "ChunkReport",
    "PipelineConfig",
    "TrackFrame",
    "TrackingPipeline",
]

GATHER_MAX_S = 0.05  # longest sleep while small messages gather for the next model frame, s
GATHER_MARGIN_S = 0.003  # wake this much before the frame's audio is due, s


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
        gap_tolerance_s: longest confirmed gap in the audio (samples lost, e.g. in transport)
            bridged with silence, seconds; longer gaps and backward jumps reset the streaming
            state. Stamp jitter is not a gap: the clock model absorbs it whatever this is.
        clip_level: absolute sample value counted as clipped (full scale 1.0).
    """

    peaks: PeakConfig = field(default_factory=PeakConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    activity_threshold: float = 0.5
    gap_tolerance_s: float = 0.5
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
        dropped: reason the message was dropped (``"format"``, ``"channels"``, ``"rate"``), or None.
        error: human-readable error for a dropped message.
        gap_s: a confirmed discontinuity released with this message (positive gap, negative
            overlap or backward jump), or None.
        reset: the discontinuity reset the streaming state (a long gap or a backward jump).
        bridged_s: audio missing before a message released now, bridged with silence, seconds.
        n_nonfinite: NaN/Inf samples replaced by 0.
        clipped_fraction: fraction of samples at or above ``clip_level`` in magnitude.
        n_bad_frames: model frames with a non-finite output, skipped (no peaks).
        by_receipt: the stream's header stamps are not used (zero or not advancing): the
            clock stamps by time of receipt.
    """

    frames: tuple[TrackFrame, ...] = ()
    n_samples: int = 0
    dropped: str | None = None
    error: str = ""
    gap_s: float | None = None
    reset: bool = False
    bridged_s: float = 0.0
    n_nonfinite: int = 0
    clipped_fraction: float = 0.0
    n_bad_frames: int = 0
    by_receipt: bool = False


class TrackingPipeline:
    """Audio messages in, tracks per 100 ms frame out; state carried across messages.

    Args:
        loaded: the model (``sst_ros.model.runtime.load_model``: a PyTorch checkpoint or an ONNX
            export, one interface). Raises ``ModelError`` when ``array`` differs from the model's geometry.
        array: geometry of the *incoming* stream (channel order, input channel count); its
            microphone positions must be the model's. None = the model's own geometry.
        config: run-time tunables (see :meth:`set_config`).
    """

    def __init__(
        self, loaded: TrackerModel, array: MicArray | None = None, config: PipelineConfig | None = None
    ) -> None:
        # the feature and model code: imported when a pipeline is built (the node's --help stays light)
        from sst_ros.model.runtime import check_array_matches
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
        self._clock: StreamClock[np.ndarray] | None = None
        self._rate_error = ""  # non-empty: the stream is refused until a format is set again
        self._last: tuple[int, np.ndarray] | None = None  # (stamp, samples) of the last message: resends are skipped
        self._pending: list[np.ndarray] = []  # microphone audio waiting for the next model frame
        self._pending_n = 0
        self._segment_index = 0  # stream sample index where the streaming state last started
        self._segment_in = 0  # input frames given to the model (and pending) since then
        self._segment_out = 0  # model frames produced since then

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
        if self._clock is not None:
            self._clock.gap_tolerance_s = config.gap_tolerance_s

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
        self._clock = StreamClock(new.sample_rate_hz, self._config.gap_tolerance_s)
        self.reset()

    @property
    def below_model_rate(self) -> bool:
        """The accepted stream's rate is below the model's: it is upsampled and accuracy drops."""
        return self._format is not None and self._format.sample_rate_hz < self.model_rate_hz

    @property
    def clock(self) -> StreamClock[np.ndarray] | None:
        """The stream's clock model (jitter, bridged audio, segments), None before a format."""
        return self._clock

    def reset(self) -> None:
        """Forget all streaming state (model, resampler, tracks, clock); the next message starts anew."""
        if self._clock is not None:
            self._clock.reset()
        self._rate_error = ""
        self._restart(0)

    def _restart(self, sample_index: int) -> None:
        """Start the model, resampler and tracker anew at stream sample ``sample_index``."""
        self._stream.reset()
        self._tracker.reset()
        if self._resampler is not None:
            self._resampler.reset()
        self._pending, self._pending_n = [], 0
        self._segment_index, self._segment_in, self._segment_out = int(sample_index), 0, 0

    def process_bytes(self, data: bytes, stamp_ns: int, receipt_ns: int | None = None) -> ChunkReport:
        """Process one interleaved PCM payload (``AudioData.data``) stamped at its first sample.

        Without an accepted format the message is dropped (``dropped="format"``).
        ``receipt_ns``: see :meth:`process_samples`.
        """
        if self._format is None:
            return ChunkReport(dropped="format", error="no audio format yet (waiting for AudioInfo or parameters)")
        try:
            samples = decode_pcm(data, self._format.channels, self._format.sample_format)
        except AudioFormatError as err:
            return ChunkReport(dropped="format", error=str(err))
        return self.process_samples(samples, stamp_ns, receipt_ns)

    def process_samples(self, samples: np.ndarray, stamp_ns: int, receipt_ns: int | None = None) -> ChunkReport:
        """Process decoded samples (frames, channels) float at the accepted format's rate.

        Args:
            samples: (n, channels) float audio, full scale 1.0.
            stamp_ns: header stamp, the time of ``samples[0]`` as the publisher says, nanoseconds
                (0 = none). Only a hint: the clock model infers the audio time.
            receipt_ns: ROS time of receipt, nanoseconds, or None (offline): used for zero or
                frozen stamps.
        """
        fmt = self._format
        if fmt is None or self._resampler is None or self._clock is None:
            return ChunkReport(dropped="format", error="no audio format yet (waiting for AudioInfo or parameters)")
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != fmt.channels:
            return ChunkReport(
                dropped="channels",
                error=f"message of shape {x.shape} does not have {fmt.channels} channels",
            )
        n = int(x.shape[0])
        if n == 0:
            return ChunkReport(dropped="empty", error="empty audio message (no samples); check the capture node")
        x, n_nonfinite = finite_audio(x)
        clipped = float(np.count_nonzero(np.abs(x) >= self._config.clip_level)) / x.size
        clock = self._clock
        refused = self._screen(x, int(stamp_ns), receipt_ns)
        if refused is not None:
            return refused
        releases = clock.push(int(stamp_ns), n, self.array.microphone_audio(x), receipt_ns)
        rate = clock.last_rate
        if rate is not None and rate.mismatch:
            self._rate_error = (
                f"the stream is declared at {fmt.sample_rate_hz} Hz but its stamps advance as "
                f"{rate.measured_hz:.0f} Hz of audio ({n} frames per message); refusing it until the rate is "
                "fixed: correct AudioInfo.sample_rate (or the sample_rate parameter) to what the device sends"
            )
            self._restart(0)
            return ChunkReport(n_samples=n, dropped="rate", error=self._rate_error)
        frames: list[TrackFrame] = []
        n_bad = 0
        gap_s: float | None = None
        reset = False
        bridged = 0.0
        for rel in releases:
            if rel.gap_s is not None:
                gap_s = rel.gap_s
            if rel.new_segment:
                f, b = self._flush()
                frames += f
                n_bad += b
                self._restart(rel.sample_index)
                reset = True
            if rel.bridge_frames:
                self._queue(np.zeros((rel.bridge_frames, self.array.n_mics), dtype=np.float32))
                bridged += rel.bridge_frames / fmt.sample_rate_hz
            self._queue(rel.item)
        if self._pending_n and self._segment_in >= self._next_frame_in():
            f, b = self._flush()
            frames += f
            n_bad += b
        return ChunkReport(
            frames=tuple(frames),
            n_samples=n,
            gap_s=gap_s,
            reset=reset,
            bridged_s=bridged,
            n_nonfinite=n_nonfinite,
            clipped_fraction=clipped,
            n_bad_frames=n_bad,
            by_receipt=clock.by_receipt or (int(stamp_ns) == 0 and receipt_ns is not None),
        )

    def frames_until_output(self) -> int:
        """Input frames (samples per channel) still needed before the next model frame can complete.

        0 when it can complete now, while the clock holds messages (the next message may release
        them), or when no format is known. :meth:`gather_delay_s` turns it into the wait before
        the next take.
        """
        if self._format is None or (self._clock is not None and self._clock.held):
            return 0
        return max(0, self._next_frame_in() - self._segment_in)

    def gather_delay_s(self) -> float:
        """How long a consumer of the stream may sleep before taking messages again, seconds.

        Until the audio the next model frame needs has arrived (:meth:`frames_until_output` at the
        stream's rate), at most :data:`GATHER_MAX_S`, less :data:`GATHER_MARGIN_S`. 0 when a frame
        can complete now, when no format is known, and when the last message was at least that
        long (the next message alone completes the frame: sleeping first would only add a
        wake-up). Each wake-up and take costs as much as processing a 10 ms message, and after a
        wait the caches are cold: sleeping this long takes small messages in batches. The sleep
        starts when processing ends, so it costs no latency while processing takes less than the
        margin (the message that completes the frame arrives as the sleep ends). The tracker
        node and ``bench/bench_streaming.py`` both wait this way.
        """
        need = self.frames_until_output()
        if self._format is None or not need or (self._last is not None and self._last[1].shape[0] >= need):
            return 0.0
        return max(0.0, min(need / self._format.sample_rate_hz, GATHER_MAX_S) - GATHER_MARGIN_S)

    def _screen(self, x: np.ndarray, stamp_ns: int, receipt_ns: int | None) -> ChunkReport | None:
        """A report that drops the message, or None to process it.

        Drops a resend (the stamp and samples of the message before) and, while the stream is
        refused for its rate, every message: those keep being timed, so a false alarm clears itself.
        """
        clock = self._clock
        n = int(x.shape[0])
        if self._rate_error and clock is not None:
            clock.push(stamp_ns, n, x[:0], receipt_ns)
            rate = clock.last_rate
            if rate is None or rate.mismatch:
                return ChunkReport(n_samples=n, dropped="rate", error=self._rate_error)
            self._rate_error = ""
            clock.reset()
            self._restart(0)
        last, self._last = self._last, (stamp_ns, x)
        if stamp_ns and last is not None and last[0] == stamp_ns and np.array_equal(last[1], x):
            return ChunkReport(n_samples=n, dropped="duplicate", error="the message before, sent again: skipped")
        return None

    def _queue(self, mics: np.ndarray) -> None:
        self._pending.append(mics)
        self._pending_n += int(mics.shape[0])
        self._segment_in += int(mics.shape[0])

    def _next_frame_in(self) -> int:
        """Input frames since the segment start after which the next model frame can complete."""
        fmt = self._format
        rate = fmt.sample_rate_hz if fmt is not None else self.model_rate_hz
        return int(np.ceil((self._segment_out + 1) * self._stream.frame_s * rate - 1e-6))  # 3 * 0.1 * 16000 > 4800

    def _flush(self) -> tuple[list[TrackFrame], int]:
        """Run the model on the pending audio; returns the completed frames and the non-finite ones."""
        if not self._pending_n or self._resampler is None or self._clock is None or self._format is None:
            return [], 0
        mics = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending, axis=0)
        self._pending, self._pending_n = [], 0
        chunk = self._resampler.process(mics)
        rate = float(self._format.sample_rate_hz)
        delay_ns = ns_from_s(self._resampler.delay_s)
        frames: list[TrackFrame] = []
        n_bad = 0
        for doa in self._stream.process(chunk) if chunk.shape[0] else ():
            self._segment_out += 1
            step = track_frame(
                self._tracker, doa.spectrum, float(doa.activity), self.grid, self._config.peaks,
                self._config.activity_threshold,
            )  # fmt: skip
            n_bad += int(step.bad)
            stamp = self._clock.ns_at(self._segment_index + float(doa.time_offset_s) * rate) - delay_ns
            frames.append(TrackFrame(stamp_ns=stamp, tracks=step.tracks, activity=step.activity, peaks=step.peaks))
        return frames, n_bad


def _azimuth_grid(loaded: TrackerModel) -> AzimuthGrid:
    """The azimuth grid of a loaded model's spectrum."""
    grid = getattr(getattr(loaded, "model_cfg", None), "grid", None)
    if not isinstance(grid, AzimuthGrid):
        raise ModelError("the loaded model has no azimuth grid; load it with sst_ros.model.runtime.load_model")
    return grid
