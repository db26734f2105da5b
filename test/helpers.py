"""Test helpers for process-level ROS tests: waiting on conditions, running node processes.

Wait for conditions with a deadline (:func:`wait_for`), never sleep a fixed time as the
success criterion. Node processes are started as ``python -m <module> --ros-args ...`` with
their output in a log file that tests can poll (:class:`NodeProcess`).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["NodeProcess", "REPO_ROOT", "ros_args", "spin_until", "subprocess_env", "wait_for"]

REPO_ROOT = Path(__file__).resolve().parents[1]


def subprocess_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment (domain id, discovery range) plus unbuffered Python output."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
    env["RCUTILS_LOGGING_BUFFERED_STREAM"] = "0"
    if extra:
        env.update(extra)
    return env


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str = "condition", poll_s: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; return that value.

    Raises:
        AssertionError: naming ``what`` when ``timeout_s`` seconds pass first.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(poll_s)


def spin_until(node: Any, predicate: Callable[[], Any], timeout_s: float, what: str = "condition") -> Any:
    """Spin an rclpy node (its own executor) until ``predicate`` is truthy; return its value."""
    from rclpy.executors import SingleThreadedExecutor

    ex = SingleThreadedExecutor(context=node.context)
    ex.add_node(node)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
            ex.spin_once(timeout_sec=0.05)
    finally:
        ex.remove_node(node)
        ex.shutdown()


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(f"'{v}'" if isinstance(v, str) else _fmt(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        import yaml

        if value == "" or not isinstance(yaml.safe_load(value), str):
            return "'" + value.replace("'", "''") + "'"  # keep it a string ('' , 'true', '42')
    return str(value)


def ros_args(params: Mapping[str, Any] | None = None, remaps: Mapping[str, str] | None = None) -> list[str]:
    """``--ros-args -p name:=value ... -r from:=to`` for a node command line."""
    out = ["--ros-args"]
    for k, v in (params or {}).items():
        out += ["-p", f"{k}:={_fmt(v)}"]
    for k, v in (remaps or {}).items():
        out += ["-r", f"{k}:={v}"]
    return out


class NodeProcess:
    """A node started as ``python -m module --ros-args ...``, output in ``log_path``.

    Use as a context manager: on exit the process is interrupted (SIGINT) and, if needed,
    killed, so no test leaves a node running.
    """

    def __init__(
        self,
        module: str,
        params: Mapping[str, Any] | None,
        log_path: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        argv: list[str] | None = None,
    ) -> None:
        self.log_path = Path(log_path)
        self.cmd = argv if argv is not None else [sys.executable, "-m", module, *ros_args(params)]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else subprocess_env(),
            cwd=str(cwd) if cwd else None,
        )

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_output(self, pattern: str, timeout_s: float = 30.0) -> re.Match[str]:
        """Wait until the output matches the regular expression ``pattern``; return the last match.

        Fails early (with the output) if the process exits first.
        """

        def seen() -> re.Match[str] | None:
            matches = list(re.finditer(pattern, self.output()))
            if matches:
                return matches[-1]
            if not self.running():
                raise AssertionError(
                    f"{self.cmd[2] if len(self.cmd) > 2 else self.cmd[0]} exited ({self.proc.returncode}) before "
                    f"printing /{pattern}/; output:\n{self.output()[-3000:]}"
                )
            return None

        return wait_for(seen, timeout_s, f"/{pattern}/ in {self.log_path}")

    def send_signal(self, sig: int) -> None:
        if self.running():
            self.proc.send_signal(sig)

    def wait(self, timeout_s: float = 30.0) -> int:
        """Wait for exit; return the exit status (fails with the output on timeout)."""
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as err:
            raise AssertionError(f"process did not exit in {timeout_s} s; output:\n{self.output()[-3000:]}") from err

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 15.0) -> int:
        """Signal the process, wait for it (kill after ``timeout_s``); return the exit status."""
        try:
            if self.running():
                self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
            return self.proc.returncode
        finally:
            self._log.close()
