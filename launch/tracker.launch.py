"""Launch the sst_ros tracker (and optionally rviz2 showing its tracks).

    ros2 launch sst_ros tracker.launch.py [model:=/path/model.pt] [array:=respeaker_usb_v2_6ch]
        [audio_topic:=/audio_stamped] [info_topic:=/audio_info] [namespace:=robot1] [rviz:=true]

Parameters come from ``share/sst_ros/config/tracker.yaml``; ``model`` and ``array`` override
the ones there (empty = the shipped default model / the model's own geometry). The tracker's
``audio`` and ``audio_info`` inputs are remapped to ``audio_topic`` and ``info_topic``.
rviz2 runs in the same namespace with ``config/sst.rviz`` (PoseArray ``tracks`` and
MarkerArray ``track_markers``, fixed frame ``mic_array``).
"""

# ruff: noqa: I001  (the repo's launch/ folder makes isort take the `launch` package for first party)
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = "sst_ros"
ARGUMENTS = (
    ("model", "", "model checkpoint (.pt); empty = the shipped default model"),
    ("array", "", "array config name or YAML path of the audio stream; empty = the model's geometry"),
    ("audio_topic", "audio", "audio_common_msgs/AudioDataStamped topic"),
    ("info_topic", "audio_info", "audio_common_msgs/AudioInfo topic (transient local)"),
    ("namespace", "", "namespace of the tracker (and rviz)"),
    ("rviz", "false", "start rviz2 with config/sst.rviz"),
)


def generate_launch_description() -> LaunchDescription:
    """The tracker node (+ rviz2 when ``rviz:=true``)."""
    share = FindPackageShare(PACKAGE)
    params_file = PathJoinSubstitution([share, "config", "tracker.yaml"])
    rviz_config = PathJoinSubstitution([share, "config", "sst.rviz"])
    namespace = LaunchConfiguration("namespace")
    tracker = Node(
        package=PACKAGE,
        executable="tracker",
        name="tracker",
        namespace=namespace,
        output="screen",
        emulate_tty=True,
        parameters=[
            params_file,
            {
                "model": ParameterValue(LaunchConfiguration("model"), value_type=str),
                "array": ParameterValue(LaunchConfiguration("array"), value_type=str),
            },
        ],
        remappings=[
            ("audio", LaunchConfiguration("audio_topic")),
            ("audio_info", LaunchConfiguration("info_topic")),
        ],
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="sst_rviz",
        namespace=namespace,
        arguments=["-d", rviz_config],
        condition=IfCondition(LaunchConfiguration("rviz")),
        output="screen",
    )
    declared = [DeclareLaunchArgument(name, default_value=value, description=doc) for name, value, doc in ARGUMENTS]
    return LaunchDescription([*declared, tracker, rviz])
