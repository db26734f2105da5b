"""``publish_audio``: stream a multichannel WAV file on an audio topic of the installed audio stack.

With ros-drivers' ``audio_common_msgs`` it publishes ``AudioInfo`` once on a transient-local
(latched) topic, then the file as ``AudioDataStamped`` in chunks of ``chunk_s`` seconds,
interleaved PCM in ``sample_format``; with mgonzs13's it publishes ``AudioStamped`` (format,
channels, rate and frames in every message, the samples in the array of ``sample_format``:
S16LE -> ``int16_data``, S32LE -> ``int32_data``, F32LE -> ``float32_data``; S24LE has no array
there and is refused) and no ``AudioInfo``. The stamp of each message is the
time of its first sample: ``start + frames_sent / sample_rate`` (from the sample count, not
the wall clock), ``start`` being ``start_time_ns`` or the ROS clock when streaming starts.
Real time (paced by the clock, optionally faster with ``speed``) or as fast as the readers
acknowledge (``realtime: false``). Without ``loop`` the node exits when the file is done.

Example::

    python -m sst_ros.ros.publish_audio --ros-args -p wav:=talk.wav -p sample_format:=S16LE
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import rclpy
from rclpy.duration import Duration
from rclpy.node import Node

from sst_ros.audio.pcm import normalize_format
from sst_ros.audio.stacks import portaudio_code
from sst_ros.audio.wav import read_wav
from sst_ros.errors import ConfigError, SstError
from sst_ros.ros.audio_stacks import installed_stack, short_type, stamped_audio_msg
from sst_ros.ros.messages import audio_info_msg
from sst_ros.ros.params import ParamSpec, declare_parameters, node_session, print_help_if_asked
from sst_ros.ros.qos import AUDIO_INFO_QOS, AUDIO_PUB_RELIABLE_QOS, AUDIO_QOS
from sst_ros.timebase import NS_PER_S

__all__ = ["PARAMETERS", "AudioPublisher", "PublishAudioConfig", "main"]

MATCH_SETTLE_S = 0.5
"""With ``wait_for_subscribers``, seconds between the last match and the first message."""
_FAST_BATCH = 20  # messages per timer tick when not real time
_ACK_TIMEOUT_S = 5.0
_INFO_GRACE_S = 2.0


PARAMETERS: dict[str, ParamSpec] = {
    "wav": ParamSpec("", "WAV file to stream (any rate, any channel count)"),
    "topic": ParamSpec("audio", "output topic (AudioDataStamped, or mgonzs13 AudioStamped)"),
    "info_topic": ParamSpec("audio_info", "AudioInfo topic (latched; not used with mgonzs13 AudioStamped)"),
    "sample_format": ParamSpec("S16LE", "PCM format: S16LE, S24LE (not with mgonzs13), S32LE or F32LE"),
    "chunk_s": ParamSpec(0.1, "message length, seconds", True, 1e-4, 60.0),
    "frame_id": ParamSpec("mic_array", "header frame_id (the array frame)"),
    "realtime": ParamSpec(True, "pace messages by the clock (false: as fast as possible)"),
    "speed": ParamSpec(1.0, "playback speed factor in real-time mode", True, 0.01, 1000.0),
    "loop": ParamSpec(False, "start again at the end of the file (stamps keep increasing)"),
    "start_time_ns": ParamSpec(0, "stamp of the first sample, ns (0 = now)", True, 0),
    "reliable": ParamSpec(True, "reliable audio publisher (false: best effort)"),
    "wait_for_subscribers": ParamSpec(
        0, "wait for this many audio subscriptions before streaming (then 0.5 s more, so that they have matched "
        "this publisher too and get the first message)", True, 0,
    ),  # fmt: skip
}


@dataclass(frozen=True)
class PublishAudioConfig:
    """Typed parameters of :class:`AudioPublisher` (see :data:`PARAMETERS` for meanings)."""

    wav: str
    topic: str
    info_topic: str
    sample_format: str
    chunk_s: float
    frame_id: str
    realtime: bool
    speed: float
    loop: bool
    start_time_ns: int
    reliable: bool
    wait_for_subscribers: int


class AudioPublisher(Node):
    """Node streaming a WAV file as ``AudioDataStamped`` + latched ``AudioInfo`` (ros-drivers) or ``AudioStamped``
    (mgonzs13), whichever ``audio_common_msgs`` is installed."""

    def __init__(self, node_name: str = "publish_audio") -> None:
        super().__init__(node_name)
        self.stack = installed_stack()  # ConfigError (exit 2) when no audio_common_msgs is installed
        self.cfg = self._read_parameters()
        audio, fs = read_wav(self.cfg.wav)
        if audio.shape[1] > 255:
            raise ConfigError(f"{self.cfg.wav} has {audio.shape[1]} channels; AudioInfo carries at most 255")
        if audio.shape[0] == 0:
            raise ConfigError(f"{self.cfg.wav} holds no samples; give a WAV file with audio")
        self.audio = audio
        self.sample_rate_hz = int(fs)
        self.chunk_frames = max(1, int(round(self.cfg.chunk_s * fs)))
        self.done = False
        self.messages_sent = 0
        self._frames_sent = 0  # since start, across loops
        self._pos = 0  # read position in the file
        self._start_ns: int | None = None
        self._matched_at: float | None = None  # when wait_for_subscribers was first met
        self._t0: float | None = None

        self.info_pub: Any = None
        if self.stack.info_type is not None:  # mgonzs13: the format travels in every message
            info = audio_info_msg(audio.shape[1], fs, self.cfg.sample_format)
            self.info_pub = self.create_publisher(type(info), self.cfg.info_topic, AUDIO_INFO_QOS)
            self.info_pub.publish(info)
        qos = AUDIO_PUB_RELIABLE_QOS if self.cfg.reliable else AUDIO_QOS
        first = stamped_audio_msg(self.stack, audio[:1], self.cfg.sample_format, 0, self.cfg.frame_id, fs)
        self.audio_pub = self.create_publisher(type(first), self.cfg.topic, qos)
        period = min(0.05, self.cfg.chunk_s / self.cfg.speed / 2.0) if self.cfg.realtime else 0.001
        self.timer = self.create_timer(period, self._on_timer)
        self.get_logger().info(
            f"streaming {self.cfg.wav} ({audio.shape[0] / fs:.2f} s, {audio.shape[1]} ch, {fs} Hz) as "
            f"{self.cfg.sample_format} {self.stack.title} {short_type(self.stack.stamped_type)} on "
            f"{self.audio_pub.topic_name}, chunks of {self.chunk_frames} frames, "
            f"{'real time x' + format(self.cfg.speed, 'g') if self.cfg.realtime else 'as fast as possible'}"
        )

    def _read_parameters(self) -> PublishAudioConfig:
        cfg = PublishAudioConfig(**declare_parameters(self, PARAMETERS))
        if not cfg.wav:
            raise ConfigError("parameter 'wav' is empty; run with --ros-args -p wav:=/path/to/file.wav")
        try:
            fmt = normalize_format(cfg.sample_format)
            if self.stack.info_type is None:
                portaudio_code(fmt)  # a format mgonzs13's AudioData has an array for
        except SstError as err:
            raise ConfigError(f"parameter 'sample_format': {err}") from err
        return replace(cfg, sample_format=fmt)

    def _next_chunk(self) -> np.ndarray | None:
        if self._pos >= self.audio.shape[0]:
            if not self.cfg.loop:
                return None
            self._pos = 0
        chunk = self.audio[self._pos : self._pos + self.chunk_frames]
        self._pos += chunk.shape[0]
        return chunk

    def _publish_one(self) -> bool:
        chunk = self._next_chunk()
        if chunk is None:
            return False
        assert self._start_ns is not None
        stamp = self._start_ns + (self._frames_sent * NS_PER_S) // self.sample_rate_hz
        cfg = self.cfg
        msg = stamped_audio_msg(self.stack, chunk, cfg.sample_format, stamp, cfg.frame_id, self.sample_rate_hz)
        self.audio_pub.publish(msg)
        self._frames_sent += chunk.shape[0]
        self.messages_sent += 1
        return True

    def _finish(self) -> None:
        self.timer.cancel()
        if self.cfg.reliable:
            self.audio_pub.wait_for_all_acked(Duration(seconds=_ACK_TIMEOUT_S))
        # Readers of the audio usually read AudioInfo too; a latched message only reaches them
        # while this node lives, so give their info subscriptions a moment to match.
        deadline = time.monotonic() + _INFO_GRACE_S
        while (
            self.info_pub is not None
            and self.info_pub.get_subscription_count() < self.audio_pub.get_subscription_count()
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        if self.info_pub is not None:
            self.info_pub.wait_for_all_acked(Duration(seconds=_ACK_TIMEOUT_S))
        self.get_logger().info(
            f"done: {self.messages_sent} messages, {self._frames_sent / self.sample_rate_hz:.2f} s of audio"
        )
        self.done = True

    def _on_timer(self) -> None:
        if self.done:
            return
        if self._start_ns is None:
            if self.audio_pub.get_subscription_count() < self.cfg.wait_for_subscribers:
                self._matched_at = None
                return
            if self.cfg.wait_for_subscribers:
                # this side sees the subscription before the subscriber's side has matched this writer:
                # a message sent at once can miss it (seen on a loaded machine); give discovery a moment
                now = time.monotonic()
                self._matched_at = self._matched_at or now
                if now - self._matched_at < MATCH_SETTLE_S:
                    return
            self._start_ns = self.cfg.start_time_ns or self.get_clock().now().nanoseconds
            self._t0 = time.monotonic()
        if self.cfg.realtime:
            assert self._t0 is not None
            elapsed_s = (time.monotonic() - self._t0) * self.cfg.speed
            while self._frames_sent <= elapsed_s * self.sample_rate_hz:
                if not self._publish_one():
                    self._finish()
                    return
        else:
            for _ in range(_FAST_BATCH):
                if not self._publish_one():
                    self._finish()
                    return
            if self.cfg.reliable:  # let readers keep up: keep-last history would drop otherwise
                self.audio_pub.wait_for_all_acked(Duration(seconds=_ACK_TIMEOUT_S))


def main(args: list[str] | None = None) -> int:
    """Entry point (console script ``publish_audio``). Returns the exit status."""
    argv = sys.argv if args is None else args
    if print_help_if_asked(argv, __doc__, PARAMETERS):
        return 0
    with node_session("publish_audio", argv) as session:
        session.node = node = AudioPublisher()
        while rclpy.ok() and not node.done:
            rclpy.spin_once(node, timeout_sec=0.1)
    return session.status


if __name__ == "__main__":
    sys.exit(main())
