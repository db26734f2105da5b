"""Shared pytest set-up: DDS isolation for every test that talks ROS.

Before any test (and any rclpy import) runs, ``ROS_AUTOMATIC_DISCOVERY_RANGE`` is set to
``LOCALHOST`` and, when the caller did not choose one (``scripts/run_tests.sh`` does), a
random ``ROS_DOMAIN_ID``, so that parallel runs and other machines never cross-talk.
Fixtures: ``ros_env`` (environment for node subprocesses), ``rclpy_context`` (an initialised
rclpy context for the test process, shut down afterwards), ``rng`` (a numpy Generator seeded by
the module's ``RNG_SEED``), ``tiny_model`` (an untrained tiny checkpoint, once per session).
Helpers live in ``helpers.py``.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
if not os.environ.get("ROS_DOMAIN_ID"):
    # 1..101 keep FastDDS ports valid; PID + entropy make collisions between runs unlikely.
    os.environ["ROS_DOMAIN_ID"] = str(random.SystemRandom().randint(1, 101))
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import subprocess_env  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover - torch is a hard dependency; keep conftest importable anyway
    torch = None
else:
    # The tests use small tensors on a 2-core machine: one torch thread is faster than an
    # oversubscribed OpenMP pool (measured up to 10x) and keeps runs independent of load.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def ros_env() -> dict[str, str]:
    """Environment for node subprocesses: this run's domain, localhost discovery, unbuffered output."""
    assert os.environ.get("ROS_DOMAIN_ID"), "ROS_DOMAIN_ID must be set for DDS isolation"
    assert os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST"
    return subprocess_env()


@pytest.fixture
def rclpy_context():
    """An initialised rclpy Context of its own (SIGINT left to pytest); shut down afterwards."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    ctx = rclpy.Context()
    rclpy.init(context=ctx, signal_handler_options=SignalHandlerOptions.NO)
    try:
        yield ctx
    finally:
        rclpy.try_shutdown(context=ctx)


@pytest.fixture
def rng(request: pytest.FixtureRequest):
    """A fresh numpy Generator per test, seeded by the test module's ``RNG_SEED`` (default 1234)."""
    import numpy as np

    return np.random.default_rng(getattr(request.module, "RNG_SEED", 1234))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained ``tiny`` CRNN checkpoint for the ReSpeaker USB v2 (torch seed 0), saved once
    per session through the real save path."""
    import torch

    from sst_ros.geometry import load_array
    from sst_ros.model.azimuth import grid_for_array
    from sst_ros.model.checkpoint import save_checkpoint
    from sst_ros.model.crnn import CRNN, ModelConfig
    from sst_ros.model.features import FeatureConfig

    torch.manual_seed(0)
    array = load_array("respeaker_usb_v2")
    cfg = ModelConfig.preset("tiny", n_mics=array.n_mics, grid=grid_for_array(array))
    path = tmp_path_factory.mktemp("tiny_model") / "tiny.pt"
    return save_checkpoint(path, CRNN(cfg).eval(), array, FeatureConfig(), cfg, {"note": "untrained, tests only"})
