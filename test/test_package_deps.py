"""package.xml and setup.py declare every third-party module the package imports.

A ROS 2 user installs dependencies with rosdep from package.xml, a pip user from setup.py's
``install_requires``: an import that neither lists breaks on the first robot that lacks it.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Import name -> rosdep key (package.xml); None = no rosdep key, pip only (README says so).
ROSDEP_KEY = {
    "rclpy": "rclpy",
    "rcl_interfaces": "rcl_interfaces",
    "builtin_interfaces": "builtin_interfaces",
    "std_msgs": "std_msgs",
    "geometry_msgs": "geometry_msgs",
    "visualization_msgs": "visualization_msgs",
    "diagnostic_msgs": "diagnostic_msgs",
    "audio_common_msgs": "audio_common_msgs",
    "launch": "launch",
    "launch_ros": "launch_ros",
    "ament_index_python": "ament_index_python",
    "numpy": "python3-numpy",
    "scipy": "python3-scipy",
    "yaml": "python3-yaml",
    "torch": None,  # training and .pt models only: pip extra sst_ros[train], not a robot dependency
    "onnxruntime": None,  # .onnx models (the robot): pip extra sst_ros[onnx]
    "onnx": None,  # `sst export --onnx`: pip extra sst_ros[export]
    "soundfile": "python3-soundfile",
    "matplotlib": "python3-matplotlib",
    "tqdm": "python3-tqdm",
    "pyroomacoustics": None,
    "rosbags": None,
    "zstandard": "python3-zstandard",
}
# Import name -> pip distribution (setup.py); ROS packages come from the ROS install instead.
PIP_NAME = {"yaml": "pyyaml"}
ROS_ONLY = {"rclpy", "rcl_interfaces", "builtin_interfaces", "std_msgs", "geometry_msgs", "visualization_msgs",
            "diagnostic_msgs",
            "audio_common_msgs", "launch", "launch_ros", "ament_index_python"}  # fmt: skip


def _third_party_imports() -> set[str]:
    names: set[str] = set()
    for path in [*(ROOT / "sst_ros").rglob("*.py"), *(ROOT / "launch").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "sst_ros"}


def test_every_import_is_declared() -> None:
    imports = _third_party_imports()
    unknown = imports - set(ROSDEP_KEY)
    assert not unknown, f"imports {sorted(unknown)} are in neither package.xml nor setup.py: declare them"
    xml = (ROOT / "package.xml").read_text()
    declared = set(re.findall(r"<(?:exec_|build_)?depend>([^<]+)</", xml))
    missing_xml = sorted(ROSDEP_KEY[n] for n in imports if ROSDEP_KEY[n] and ROSDEP_KEY[n] not in declared)
    assert not missing_xml, f"package.xml lacks {missing_xml}"
    setup = (ROOT / "setup.py").read_text()
    missing_pip = sorted(
        n for n in imports - ROS_ONLY if not re.search(rf'"{PIP_NAME.get(n, n)}[<>=!~ "]', setup, re.IGNORECASE)
    )
    assert not missing_pip, f"setup.py install_requires lacks {missing_pip}"
    assert "rclpy" in imports and "torch" in imports  # the scan sees the package's imports
