"""``publish_audio``: stream a multichannel WAV file as ``audio_common_msgs/AudioDataStamped``.

Publishes ``AudioInfo`` once on a transient-local (latched) topic, then the file in chunks of
``chunk_s`` seconds, interleaved PCM in ``sample_format``. The stamp of each message is the
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
from dataclasses import dataclass

import numpy as np
import rclpy
from rclpy.duration import Duration
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.utilities import remove_ros_args

from sst_ros.audio.pcm import normalize_format
from sst_ros.audio.wav import read_wav
from sst_ros.errors import ConfigError, SstError
from sst_ros.ros.messages import audio_info_msg, audio_msg
from sst_ros.ros.params import declare
from sst_ros.ros.qos import AUDIO_INFO_QOS, AUDIO_PUB_RELIABLE_QOS, AUDIO_QOS

__all__ = ["AudioPublisher", "PublishAudioConfig", "main"]

_NS = 1_000_000_000
_FAST_BATCH = 20  # messages per timer tick when not real time
_ACK_TIMEOUT_S = 5.0
_INFO_GRACE_S = 2.0


@dataclass(frozen=True)
class PublishAudioConfig:
    """Typed parameters of :class:`AudioPublisher` (see ``declare`` calls for meanings)."""

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
    """Node streaming a WAV file as ``AudioDataStamped`` + latched ``AudioInfo``."""

    def __init__(self, node_name: str = "publish_audio") -> None:
        super().__init__(node_name)
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
        self._t0: float | None = None

        info = audio_info_msg(audio.shape[1], fs, self.cfg.sample_format)
        self.info_pub = self.create_publisher(type(info), self.cfg.info_topic, AUDIO_INFO_QOS)
        self.info_pub.publish(info)
        qos = AUDIO_PUB_RELIABLE_QOS if self.cfg.reliable else AUDIO_QOS
        from audio_common_msgs.msg import AudioDataStamped

        self.audio_pub = self.create_publisher(AudioDataStamped, self.cfg.topic, qos)
        period = min(0.05, self.cfg.chunk_s / self.cfg.speed / 2.0) if self.cfg.realtime else 0.001
        self.timer = self.create_timer(period, self._on_timer)
        self.get_logger().info(
            f"streaming {self.cfg.wav} ({audio.shape[0] / fs:.2f} s, {audio.shape[1]} ch, {fs} Hz) as "
            f"{self.cfg.sample_format} on {self.audio_pub.topic_name}, chunks of {self.chunk_frames} frames, "
            f"{'real time x' + format(self.cfg.speed, 'g') if self.cfg.realtime else 'as fast as possible'}"
        )

    def _read_parameters(self) -> PublishAudioConfig:
        d = self
        cfg = PublishAudioConfig(
            wav=declare(d, "wav", "", "WAV file to stream (any rate, any channel count)", read_only=True),
            topic=declare(d, "topic", "audio", "output topic (AudioDataStamped)", read_only=True),
            info_topic=declare(d, "info_topic", "audio_info", "AudioInfo topic (latched)", read_only=True),
            sample_format=declare(
                d, "sample_format", "S16LE", "PCM format: S16LE, S24LE, S32LE or F32LE", read_only=True
            ),
            chunk_s=declare(d, "chunk_s", 0.1, "message length, seconds", read_only=True, min_value=1e-4,
                            max_value=60.0),
            frame_id=declare(d, "frame_id", "mic_array", "header frame_id (the array frame)", read_only=True),
            realtime=declare(d, "realtime", True, "pace messages by the clock (false: as fast as possible)",
                             read_only=True),
            speed=declare(d, "speed", 1.0, "playback speed factor in real-time mode", read_only=True,
                          min_value=0.01, max_value=1000.0),
            loop=declare(d, "loop", False, "start again at the end of the file (stamps keep increasing)",
                         read_only=True),
            start_time_ns=declare(d, "start_time_ns", 0, "stamp of the first sample, ns (0 = now)",
                                  read_only=True, min_value=0),
            reliable=declare(d, "reliable", True, "reliable audio publisher (false: best effort)", read_only=True),
            wait_for_subscribers=declare(
                d, "wait_for_subscribers", 0, "wait for this many audio subscriptions before streaming",
                read_only=True, min_value=0),
        )
        if not cfg.wav:
            raise ConfigError("parameter 'wav' is empty; run with --ros-args -p wav:=/path/to/file.wav")
        try:
            fmt = normalize_format(cfg.sample_format)
        except SstError as err:
            raise ConfigError(f"parameter 'sample_format': {err}") from err
        return PublishAudioConfig(**{**cfg.__dict__, "sample_format": fmt})

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
        stamp = self._start_ns + (self._frames_sent * _NS) // self.sample_rate_hz
        self.audio_pub.publish(audio_msg(chunk, self.cfg.sample_format, stamp, self.cfg.frame_id))
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
        while (self.info_pub.get_subscription_count() < self.audio_pub.get_subscription_count()
               and time.monotonic() < deadline):
            time.sleep(0.02)
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


def _print_help() -> None:
    print(__doc__)
    print("Parameters (-p name:=value): wav, topic [audio], info_topic [audio_info], sample_format [S16LE],\n"
          "  chunk_s [0.1], frame_id [mic_array], realtime [true], speed [1.0], loop [false],\n"
          "  start_time_ns [0 = now], reliable [true], wait_for_subscribers [0]")


def main(args: list[str] | None = None) -> int:
    """Entry point (console script ``publish_audio``). Returns the exit status."""
    argv = sys.argv if args is None else args
    if any(a in ("-h", "--help") for a in remove_ros_args(argv)[1:]):
        _print_help()
        return 0
    rclpy.init(args=argv)
    node = None
    status = 0
    try:
        node = AudioPublisher()
        while rclpy.ok() and not node.done:
            rclpy.spin_once(node, timeout_sec=0.1)
    except SstError as err:
        print(f"publish_audio: error: {err}", file=sys.stderr)
        status = 2
    except ParameterException as err:  # wrong type or out of range (-p name:=value)
        print(f"publish_audio: error: bad parameter: {err}; see --help", file=sys.stderr)
        status = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
