"""Launch the sst_ros tracker (and optionally rviz2 showing its tracks).

    ros2 launch sst_ros tracker.launch.py [model:=/path/model.pt|.onnx] [array:=respeaker_usb_v2_6ch]
        [audio_topic:=/audio_stamped] [info_topic:=/audio_info] [namespace:=robot1]
        [params_file:=/path/my_tracker.yaml] [rviz:=true]

Parameters come from ``params_file`` (default ``share/sst_ros/config/tracker.yaml``, keyed
``/**`` so that it applies under any namespace); ``model`` and ``array``, when given, override
the file's values. The tracker's ``audio`` and ``audio_info`` inputs are remapped to
``audio_topic`` and ``info_topic``. With ``rviz:=true``, rviz2 runs in the same namespace with
``config/sst.rviz`` (PoseArray ``tracks`` and MarkerArray ``track_markers``, fixed frame
``mic_array``) when it is installed; without rviz2 the launch logs that and runs the tracker
alone. The nodes are made at launch time (:func:`launch_nodes`, an ``OpaqueFunction``), once
the arguments are known, so that nothing that cannot start is ever launched.
"""

# ruff: noqa: I001  (the repo's launch/ folder makes isort take the `launch` package for first party)
import os
from pathlib import Path

from launch import LaunchContext, LaunchDescription, LaunchDescriptionEntity
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.conditions import evaluate_condition_expression
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = "sst_ros"
RVIZ_PACKAGE = "rviz2"
ARGUMENTS = (
    ("model", "", "model (.pt or .onnx); empty = the params_file's value (default: the shipped model)"),
    ("array", "", "array config name or YAML path of the audio stream; empty = the params_file's value"),
    ("audio_topic", "audio", "audio topic (AudioDataStamped, AudioStamped or AudioData)"),
    ("info_topic", "audio_info", "audio_common_msgs/AudioInfo topic (transient local)"),
    ("namespace", "", "namespace of the tracker (and rviz)"),
    ("params_file", "", "tracker parameters YAML (key /** or /**/tracker); empty = share/sst_ros/config/tracker.yaml"),
    ("rviz", "false", "start rviz2 with config/sst.rviz when rviz2 is installed"),
)


def rviz_executable() -> str | None:
    """Path of the installed rviz2 executable (as ``ros2 run rviz2 rviz2`` finds it), or None."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        prefix = get_package_prefix(RVIZ_PACKAGE)
    except PackageNotFoundError:
        return None
    exe = Path(prefix) / "lib" / RVIZ_PACKAGE / "rviz2"
    return str(exe) if exe.is_file() and os.access(exe, os.X_OK) else None


def launch_nodes(context: LaunchContext) -> list[LaunchDescriptionEntity]:
    """The tracker node, plus rviz2 (or a log line saying why not) when ``rviz`` is true.

    Raises:
        RuntimeError: ``params_file`` names no file (before anything is started).
    """
    share = FindPackageShare(PACKAGE)
    namespace = LaunchConfiguration("namespace").perform(context)
    params_file = LaunchConfiguration("params_file").perform(context) or PathJoinSubstitution(
        [share, "config", "tracker.yaml"]
    ).perform(context)
    if not os.path.isfile(params_file):
        raise RuntimeError(
            f"params_file:={params_file}: no such file; give an existing parameters YAML "
            "(copy share/sst_ros/config/tracker.yaml) or leave params_file empty"
        )
    entities: list[LaunchDescriptionEntity] = []
    from sst_ros.ros.params import params_file_applies

    fqn = "/" + "/".join(p for p in (*namespace.split("/"), "tracker") if p)
    if not params_file_applies(params_file, fqn):
        entities.append(
            LogInfo(
                msg=f"[sst_ros] WARNING: {params_file} has no ros__parameters for {fqn} (its keys match other "
                "nodes), so the tracker runs with its defaults; key the file '/**:' or '/**/tracker:'"
            )
        )
    overrides = {
        name: ParameterValue(value, value_type=str)
        for name in ("model", "array")
        if (value := LaunchConfiguration(name).perform(context))
    }
    entities.append(
        Node(
            package=PACKAGE,
            executable="tracker",
            name="tracker",
            namespace=namespace,
            output="screen",
            emulate_tty=True,
            parameters=[params_file, overrides] if overrides else [params_file],
            remappings=[
                ("audio", LaunchConfiguration("audio_topic").perform(context)),
                ("audio_info", LaunchConfiguration("info_topic").perform(context)),
            ],
        )
    )
    if not evaluate_condition_expression(context, [LaunchConfiguration("rviz")]):
        return entities
    if rviz_executable() is None:
        entities.append(
            LogInfo(
                msg="[sst_ros] rviz:=true but rviz2 is not installed (no package 'rviz2' in the ament index); "
                "the tracker runs without it. Install rviz2 (e.g. apt install ros-$ROS_DISTRO-rviz2) or view "
                "the 'tracks' and 'track_markers' topics on another machine."
            )
        )
        return entities
    rviz_config = PathJoinSubstitution([share, "config", "sst.rviz"]).perform(context)
    entities.append(
        Node(
            package="rviz2",
            executable="rviz2",
            name="sst_rviz",
            namespace=namespace,
            arguments=["-d", rviz_config],
            output="screen",
        )
    )
    return entities


def generate_launch_description() -> LaunchDescription:
    """The launch arguments, then the tracker node (+ rviz2 when ``rviz:=true`` and installed)."""
    declared = [DeclareLaunchArgument(name, default_value=value, description=doc) for name, value, doc in ARGUMENTS]
    return LaunchDescription([*declared, OpaqueFunction(function=launch_nodes)])
