"""Command lines of the node entry points: ``--help`` starts no node, a bad parameter is one line.

Process-level: each node runs as ``python -m <module>`` (what the console scripts call). Whether
rclpy was initialised is seen from ``ROS_LOG_DIR``: ``rclpy.init`` creates its log file there,
so ``--help`` must leave that folder absent, while a run that reaches ``rclpy.init`` (the
bad-parameter case) creates it, which keeps the check meaningful.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from helpers import REPO_ROOT, subprocess_env

from sst_ros.errors import ConfigError
from sst_ros.ros import params as params_mod
from sst_ros.ros.params import STARTUP_ERROR_STATUS, ParamSpec, declare_parameters, range_text

NODE_MODULES = {
    "tracker": "sst_ros.ros.tracker_node",
    "record_target": "sst_ros.ros.record_target",
    "publish_audio": "sst_ros.ros.publish_audio",
}
HELP_TIMEOUT_S = 60.0  # generous for 2 busy cores; a node that starts instead never exits by itself


def _table(script: str) -> Mapping[str, ParamSpec]:
    import importlib

    if script == "tracker":
        from sst_ros.ros.tracker_params import PARAMETERS

        return PARAMETERS
    return importlib.import_module(NODE_MODULES[script]).PARAMETERS  # type: ignore[no-any-return]


def _run(module: str, args: list[str], log_dir: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    env = subprocess_env({"ROS_LOG_DIR": str(log_dir)})
    start = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", module, *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=HELP_TIMEOUT_S,
    )  # fmt: skip
    return res, time.monotonic() - start


def test_entry_points_are_the_console_scripts() -> None:
    setup_py = (REPO_ROOT / "setup.py").read_text()
    for script, module in NODE_MODULES.items():
        assert f'"{script} = {module}:main"' in setup_py, script


@pytest.mark.parametrize("script", sorted(NODE_MODULES))
def test_help_prints_the_parameter_table_and_starts_no_node(script: str, tmp_path: Path) -> None:
    log_dir = tmp_path / "ros_log"
    res, elapsed = _run(NODE_MODULES[script], ["--help"], log_dir)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "Traceback" not in res.stderr, res.stderr
    out = res.stdout
    assert out.startswith(f"usage: {script} "), out[:300]
    assert "Parameters" in out
    table = _table(script)
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and line.split()}
    for name, spec in table.items():
        assert name in rows, f"--help of {script} does not list parameter {name}"
        assert spec.description in rows[name], (name, rows[name])
        assert range_text(spec) in rows[name], (name, rows[name])
    assert not log_dir.exists(), f"--help of {script} initialised rclpy (log files in ROS_LOG_DIR)"
    assert elapsed < HELP_TIMEOUT_S


def test_out_of_range_parameter_is_one_line_without_traceback(tmp_path: Path) -> None:
    log_dir = tmp_path / "ros_log"
    res, _ = _run(NODE_MODULES["tracker"], ["--ros-args", "-p", "queue_size:=0"], log_dir)
    assert res.returncode == STARTUP_ERROR_STATUS, res.stdout[-2000:] + res.stderr[-2000:]
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert "queue_size" in lines[0] and "= 0" in lines[0] and "[1, 10000]" in lines[0], lines[0]
    assert lines[0].startswith("tracker: error: "), lines[0]
    assert log_dir.exists(), "the run did not reach rclpy.init, so the --help checks above prove nothing"


def test_help_in_node_session_exits_before_rclpy_init(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def _no_init(*_a: object, **_k: object) -> None:
        raise AssertionError("rclpy.init called for --help")

    monkeypatch.setattr(params_mod.rclpy, "init", _no_init)
    table = {"depth": ParamSpec(3, "how deep, messages", True, 1, 9)}
    session = params_mod.node_session("demo", ["demo", "-h"], parameters=table, doc="Demo.")
    with pytest.raises(SystemExit) as exc, session:
        raise AssertionError("the body ran for --help")
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: demo ") and "Demo." in out and "depth" in out and "[1, 9]" in out


def test_an_error_after_shutdown_is_a_normal_stop_and_before_it_is_raised() -> None:
    """Ctrl-C shuts the context down; a callback still publishing then fails ("publisher's context is
    invalid"): that stop was asked for. The same error with the context alive is a real error.
    (DDS stays on this machine and a private domain: scripts/run_tests.sh sets both.)"""
    with params_mod.node_session("demo", ["demo"]) as session:
        params_mod.rclpy.try_shutdown()  # what the SIGINT handler does
        raise RuntimeError("Failed to publish: publisher's context is invalid")
    assert session.status == 0
    with pytest.raises(RuntimeError, match="a real error"), params_mod.node_session("demo", ["demo"]):
        raise RuntimeError("a real error")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (0, r"^bad parameter 'depth' = 0: outside the allowed range \[1, 9\]; give a value in \[1, 9\]"),
        (10, r"'depth' = 10: outside the allowed range \[1, 9\]"),
        ("abc", r"^bad parameter 'depth' = 'abc': must be INTEGER \(an integer\), got STRING"),
        (2.5, r"'ratio' = 2.5: outside the allowed range \[0, 1\]"),
        (1, r"'ratio' = 1: must be DOUBLE \(a number with a decimal point, e.g. 1.0 rather than 1\), got INTEGER"),
    ],
)
def test_declare_parameters_names_parameter_value_and_range(rclpy_context, override: object, expected: str) -> None:
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    table = {
        "depth": ParamSpec(3, "how deep, messages", True, 1, 9),
        "ratio": ParamSpec(0.5, "a fraction", False, 0.0, 1.0),
    }
    name = "depth" if expected.find("'depth'") >= 0 else "ratio"
    node = Node("sst_cli_test", context=rclpy_context, parameter_overrides=[Parameter(name, value=override)])
    try:
        with pytest.raises(ConfigError, match=expected) as exc:
            declare_parameters(node, table)
        assert "\n" not in str(exc.value)
    finally:
        node.destroy_node()


def test_declare_parameters_returns_overrides_in_range(rclpy_context) -> None:
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    table = {"depth": ParamSpec(3, "how deep", True, 1, 9), "name": ParamSpec("x", "a name")}
    node = Node("sst_cli_ok", context=rclpy_context, parameter_overrides=[Parameter("depth", value=9)])
    try:
        assert declare_parameters(node, table) == {"depth": 9, "name": "x"}
    finally:
        node.destroy_node()
