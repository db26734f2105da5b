"""Test helpers for the two ROS 2 audio stacks (see sst_ros.audio.stacks).

The test process runs with the ros-drivers ``audio_common_msgs`` of ``.ros_ws/`` (sourced by
activate.sh). The mgonzs13 one is built by ``make setup`` into ``.ros_ws_mgonzs13/`` and used by
node subprocesses started with :func:`mgonzs13_env`; :func:`no_stack_env` has neither.
CDR builders (rosbags typestores, no rclpy) make mgonzs13 messages in this process.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO_ROOT, subprocess_env

from sst_ros.audio.stacks import AUDIO_STAMPED_TYPE, MGONZS13, PORTAUDIO_FORMATS
from sst_ros.ros.probe import workspace_env

__all__ = ["MG_INSTALL", "RD_INSTALL", "cdr_audio_stamped", "mgonzs13_env", "no_stack_env", "ros_drivers_env"]

MG_INSTALL = REPO_ROOT / ".ros_ws_mgonzs13" / "install"
RD_INSTALL = REPO_ROOT / ".ros_ws" / "install"


def _install(path: Path) -> Path:
    if not (path / "audio_common_msgs" / "share").is_dir():
        pytest.fail(f"{path} holds no built audio_common_msgs: run `make setup` (scripts/setup.sh builds it)")
    return path


def mgonzs13_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Node-subprocess environment with mgonzs13's ``audio_common_msgs`` (``.ros_ws_mgonzs13``) instead of .ros_ws.

    Fails the test (naming ``make setup``) when that workspace was not built.
    """
    return workspace_env(_install(MG_INSTALL), subprocess_env() if base is None else base)


def ros_drivers_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Node-subprocess environment with ros-drivers' ``audio_common_msgs`` (``.ros_ws``) only."""
    return workspace_env(_install(RD_INSTALL), subprocess_env() if base is None else base)


def no_stack_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Node-subprocess environment without any ``audio_common_msgs``."""
    env = workspace_env(None, subprocess_env() if base is None else base)
    left = [k for k in ("PYTHONPATH", "AMENT_PREFIX_PATH", "LD_LIBRARY_PATH") if ".ros_ws" in env.get(k, "")]
    if left:
        pytest.fail(f"workspace paths left in {left} of the environment without a stack")
    return env


def cdr_audio_stamped(
    values: np.ndarray | None,
    code: int,
    channels: int,
    rate_hz: int,
    stamp_ns: int,
    frame_id: str = "m",
    *,
    arrays: Mapping[str, np.ndarray] | None = None,
    little_endian: bool = True,
) -> bytes:
    """A serialized mgonzs13 ``AudioStamped`` (rosbags typestore).

    Args:
        values: interleaved sample values put in the array that ``code`` names (None: none).
        code: ``info.format`` (a PortAudio code, possibly an unsupported one).
        arrays: arrays set explicitly (array name -> values), on top of ``values``.
    """
    from sst_ros.data.bag import audio_typestore

    store = audio_typestore(MGONZS13)
    t = store.types
    fields = {"float32_data": np.float32, "int32_data": np.int32, "int16_data": np.int16, "int8_data": np.int8,
              "uint8_data": np.uint8}  # fmt: skip
    data = {name: np.zeros(0, dtype=dt) for name, dt in fields.items()}
    if values is not None:
        name = PORTAUDIO_FORMATS[code][1]
        data[name] = np.asarray(values, dtype=fields[name])
    for name, v in (arrays or {}).items():
        data[name] = np.asarray(v, dtype=fields[name])
    header = t["std_msgs/msg/Header"](
        stamp=t["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=frame_id
    )
    n_frames = max((len(v) for v in data.values()), default=0) // max(channels, 1)
    info = t["audio_common_msgs/msg/AudioInfo"](format=code, channels=channels, rate=rate_hz, chunk=n_frames)
    audio = t["audio_common_msgs/msg/Audio"](audio_data=t["audio_common_msgs/msg/AudioData"](**data), info=info)
    msg = t[AUDIO_STAMPED_TYPE](header=header, audio=audio)
    return bytes(store.serialize_cdr(msg, AUDIO_STAMPED_TYPE, little_endian=little_endian))
