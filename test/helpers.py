"""Test helpers for process-level ROS tests: waiting on conditions, running node processes.

Wait for conditions with a deadline (:func:`wait_for`), never sleep a fixed time as the
success criterion. Node processes are :class:`sst_ros.ros.probe.NodeProcess` (``python -m
<module> --ros-args ...``, output in a log file) with test waits on their output.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sst_ros.errors import SstError
from sst_ros.ros import probe
from sst_ros.ros.probe import ros_args

__all__ = [
    "REPO_ROOT",
    "NodeProcess",
    "cdr_audio",
    "cdr_audio_info",
    "ros_args",
    "spin_until",
    "subprocess_env",
    "wait_for",
]

REPO_ROOT = Path(__file__).resolve().parents[1]


def subprocess_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment (domain id, discovery range) plus unbuffered Python output."""
    return probe.node_env(extra)


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str = "condition", poll_s: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; return that value.

    Raises:
        AssertionError: naming ``what`` when ``timeout_s`` seconds pass first.
    """
    try:
        return probe.wait_until(predicate, timeout_s, what, poll_s)
    except SstError as err:
        raise AssertionError(str(err)) from None


def spin_until(node: Any, predicate: Callable[[], Any], timeout_s: float, what: str = "condition") -> Any:
    """Spin an rclpy node (its own executor) until ``predicate`` is truthy; return its value."""
    from rclpy.executors import SingleThreadedExecutor

    ex = SingleThreadedExecutor(context=node.context)
    ex.add_node(node)

    def spun() -> Any:
        value = predicate()
        if not value:
            ex.spin_once(timeout_sec=0.05)
        return value

    try:
        return wait_for(spun, timeout_s, what, poll_s=0.0)
    finally:
        ex.remove_node(node)
        ex.shutdown()


def cdr_audio_info(channels: int, rate_hz: int, sample_format: str) -> bytes:
    """A serialized ``AudioInfo`` (rosbags typestore, no rclpy), as recorded in bags."""
    from sst_ros.audio.stacks import AUDIO_INFO_TYPE
    from sst_ros.data.bag import audio_typestore

    store = audio_typestore()
    msg = store.types[AUDIO_INFO_TYPE](
        channels=channels, sample_rate=rate_hz, sample_format=sample_format, bitrate=0, coding_format="wave"
    )
    return bytes(store.serialize_cdr(msg, AUDIO_INFO_TYPE))


def cdr_audio(samples: Any, sample_format: str, stamp_ns: int, frame_id: str = "m") -> bytes:
    """A serialized ``AudioDataStamped`` of (frames, channels) float ``samples`` (rosbags typestore, no rclpy)."""
    import numpy as np

    from sst_ros.audio.pcm import encode_pcm
    from sst_ros.audio.stacks import AUDIO_DATA_STAMPED_TYPE
    from sst_ros.data.bag import audio_typestore

    store = audio_typestore()
    t = store.types
    header = t["std_msgs/msg/Header"](
        stamp=t["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=frame_id
    )
    data = np.frombuffer(encode_pcm(samples, sample_format), dtype=np.uint8)
    msg = t[AUDIO_DATA_STAMPED_TYPE](header=header, audio=t["audio_common_msgs/msg/AudioData"](data=data))
    return bytes(store.serialize_cdr(msg, AUDIO_DATA_STAMPED_TYPE))


class NodeProcess(probe.NodeProcess):
    """:class:`sst_ros.ros.probe.NodeProcess` with waits that fail the test (with the output) on timeout."""

    def _died(self, what: str) -> AssertionError:
        name = self.cmd[2] if len(self.cmd) > 2 else self.cmd[0]
        return AssertionError(
            f"{name} exited ({self.proc.returncode}) before printing {what}; output:\n{self.output()[-3000:]}"
        )

    def wait_output(self, pattern: str, timeout_s: float = 30.0) -> re.Match[str]:
        """Wait until the output matches the regular expression ``pattern``; return the last match.

        Fails early (with the output) if the process exits first.
        """

        def seen() -> re.Match[str] | None:
            matches = list(re.finditer(pattern, self.output()))
            if matches:
                return matches[-1]
            if not self.running():
                raise self._died(f"/{pattern}/")
            return None

        return wait_for(seen, timeout_s, f"/{pattern}/ in {self.log_path}")

    def wait_log(self, text: str, timeout_s: float = 30.0, count: int = 1) -> str:
        """Wait until ``text`` occurs ``count`` times in the output (fails early if the process died)."""

        def seen() -> bool:
            if not self.running() and self.output().count(text) < count:
                raise self._died(repr(text))
            return self.output().count(text) >= count

        wait_for(seen, timeout_s, f"log line {text!r} in {self.log_path}")
        return self.output()

    def mark(self) -> int:
        """Current output length: pass to :meth:`wait_new_log` to look only at what comes after."""
        return len(self.output())

    def wait_new_log(
        self, mark: int, text: str, timeout_s: float = 30.0, resend: Callable[[], None] | None = None,
        resend_every_s: float = 0.5,
    ) -> str:
        """Wait until ``text`` appears in the output after ``mark``, calling ``resend`` now and then.

        Warnings of the nodes are throttled (at most one per second per kind), so a test that
        needs to see one again keeps provoking it with ``resend``.
        """
        last = [0.0]

        def seen() -> bool:
            if not self.running():
                raise self._died(repr(text))
            if text in self.output()[mark:]:
                return True
            if resend is not None and time.monotonic() - last[0] > resend_every_s:
                last[0] = time.monotonic()
                resend()
            return False

        wait_for(seen, timeout_s, f"log line {text!r} in {self.log_path}")
        return self.output()[mark:]

    def wait(self, timeout_s: float = 30.0) -> int:
        """Wait for exit; return the exit status (fails with the output on timeout)."""
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as err:
            raise AssertionError(f"process did not exit in {timeout_s} s; output:\n{self.output()[-3000:]}") from err


def load_module(name: str, path: Path) -> Any:
    """A Python file that is not in a package (a launch file, a benchmark script) loaded as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look a class's module up by name
    spec.loader.exec_module(module)
    return module
