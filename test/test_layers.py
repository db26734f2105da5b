"""The package's layers: every import inside ``sst_ros`` points to a lower layer.

The science runs and tests without ROS (rclpy only in ``ros/``), and a change low in the stack
never needs a module above it. The order is the README's "Layout".
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "sst_ros"
# Higher rank may import lower rank; the same subpackage may import itself.
RANK = {
    "errors": 0, "timebase": 1, "config_fields": 1, "process_memory": 1, "geometry": 2, "audio": 2, "data": 3, "sim": 4,
    "model": 5, "tracking": 6, "train": 7, "adapt": 8, "cli": 9, "ros": 10,
}  # fmt: skip
ROS_MODULES = ("rclpy", "rcl_interfaces", "builtin_interfaces", "std_msgs", "geometry_msgs",
               "visualization_msgs", "audio_common_msgs", "launch", "launch_ros")  # fmt: skip


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _imports(path: Path) -> list[str]:
    out: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from sst_ros import timebase` names the submodule
            out += [f"{node.module}.{a.name}" for a in node.names] if node.module == "sst_ros" else [node.module]
    return out


def test_imports_point_down_and_rclpy_stays_in_ros() -> None:
    wrong: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        own = _layer(".".join(rel.parts))
        if own == "__init__" or own == "models":
            continue
        assert own in RANK, f"{rel}: layer '{own}' has no rank; add it to RANK and the README layout"
        for mod in _imports(path):
            if mod.split(".")[0] in ROS_MODULES and own != "ros":
                wrong.append(f"{rel} imports {mod} (ROS only in sst_ros/ros/)")
            if not mod.startswith("sst_ros.") or _layer(mod) == own:
                continue
            if RANK[_layer(mod)] >= RANK[own]:
                wrong.append(f"{rel} ({own}) imports {mod} ({_layer(mod)}), a layer not below it")
    assert not wrong, "\n".join(wrong)
