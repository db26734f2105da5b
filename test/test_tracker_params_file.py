"""config/tracker.yaml applies to the tracker under any namespace (regression: a ``tracker:`` key
was silently ignored under ``namespace:=robot1``).

The real check is rcl's own parameter-file parsing: a real ``tracker`` process started with
``-r __ns:=/robot1 --params-file <copy of config/tracker.yaml with non-default values>``, its
parameters read back over DDS with rclpy's parameter client. (rclpy's
``parameter_dict_from_yaml_file`` only knows the literal ``/**`` key, not rcl's matching, so it
is not used as the oracle.) The same values under the old key ``tracker:`` are not applied,
which shows that the test tells the two apart.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import REPO_ROOT, NodeProcess, spin_until

from sst_ros.ros.params import node_key_matches, params_file_applies
from sst_ros.ros.probe import TRACKER_MODULE
from sst_ros.ros.tracker_params import PARAMETERS

SHIPPED = REPO_ROOT / "config" / "tracker.yaml"
CHANGED = {"threshold": 0.42, "queue_size": 33, "frame_id": "robot1_mic"}  # all differ from the defaults


def _copy_with(tmp_path: Path, key: str) -> Path:
    """The shipped file under ``key`` with the values of :data:`CHANGED`."""
    data = yaml.safe_load(SHIPPED.read_text())
    (shipped_key,) = data
    params = dict(data[shipped_key]["ros__parameters"], **CHANGED)
    path = tmp_path / f"tracker_{len(list(tmp_path.glob('*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump({key: {"ros__parameters": params}}))
    return path


def _remote_values(ctx: Any, node_fqn: str, names: list[str]) -> dict[str, Any]:
    """Parameter values of the running node ``node_fqn``, read over DDS (rclpy's parameter client)."""
    from rclpy.node import Node
    from rclpy.parameter import parameter_value_to_python
    from rclpy.parameter_client import AsyncParameterClient

    node = Node("sst_params_reader", context=ctx)
    try:
        client = AsyncParameterClient(node, node_fqn)
        spin_until(node, lambda: client.services_are_ready(), 120, f"parameter services of {node_fqn}")
        future = client.get_parameters(names)
        spin_until(node, future.done, 30, f"get_parameters of {node_fqn}")
        return {n: parameter_value_to_python(v) for n, v in zip(names, future.result().values, strict=True)}
    finally:
        node.destroy_node()


def test_shipped_file_is_keyed_for_any_namespace() -> None:
    assert params_file_applies(SHIPPED, "/tracker")
    assert params_file_applies(SHIPPED, "/robot1/tracker")
    assert params_file_applies(SHIPPED, "/fleet/robot1/tracker")


@pytest.mark.parametrize(
    ("key", "fqn", "applies"),
    [
        ("/**", "/robot1/tracker", True),
        ("/**/tracker", "/tracker", True),
        ("/**/tracker", "/a/b/tracker", True),
        ("/**/tracker", "/robot1/tracker_left", False),
        ("tracker", "/tracker", True),
        ("tracker", "/robot1/tracker", False),  # the bug: the old key under a namespace
        ("/*/tracker", "/robot1/tracker", True),
        ("/*/tracker", "/tracker", False),
        ("/robot1/**", "/robot2/tracker", False),
    ],
)
def test_node_key_matching_follows_rcl(key: str, fqn: str, applies: bool) -> None:
    assert node_key_matches(key, fqn) is applies


def test_params_file_applies_under_a_namespace_over_dds(tmp_path, ros_env, rclpy_context, tiny_model) -> None:
    names = sorted(CHANGED)
    assert all(PARAMETERS[n].default != v for n, v in CHANGED.items())
    wildcard = _copy_with(tmp_path, "/**")
    old_key = _copy_with(tmp_path, "tracker")
    for path, expected in ((wildcard, CHANGED), (old_key, {n: PARAMETERS[n].default for n in names})):
        argv = [
            sys.executable, "-m", TRACKER_MODULE,
            "--ros-args", "-r", "__ns:=/robot1", "-p", f"model:={tiny_model}", "--params-file", str(path),
        ]  # fmt: skip
        with NodeProcess(TRACKER_MODULE, None, tmp_path / f"{path.stem}.log", env=ros_env, argv=argv) as node:
            got = _remote_values(rclpy_context, "/robot1/tracker", names)
            assert node.running(), node.output()[-3000:]
        assert got == expected, (path.read_text()[:200], node.output()[-2000:])
