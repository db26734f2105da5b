"""ROS 2 side of sst_ros: the nodes and what only they need (the only rclpy users).

Nodes (console scripts): :mod:`.tracker_node` (audio in, tracks out; parameters in
:mod:`.tracker_params`), :mod:`.record_target` (unlabelled audio to rosbag2, subscriptions by
:mod:`.discovery`), :mod:`.publish_audio` (a WAV file as an audio topic); ``sst demo``
(:mod:`.demo`). Shared: :mod:`.messages` (message <-> numpy / tracks conversion), :mod:`.qos`
(every QoS choice), :mod:`.params` (parameter tables, ``--help``, entry points),
:mod:`.stats` (the tracker's statistics line), :mod:`.audio_stacks` (which ``audio_common_msgs``
is installed and what a topic carries), :mod:`.diagnostics` (node health on ``/diagnostics``;
the levels and faults are rclpy-free in :mod:`.health`), :mod:`.probe` (a tracker on a private graph
and a listening node, for the demo, the tests and the benchmarks). Submodules are imported
on demand: importing this package imports no rclpy.
"""

__all__: list[str] = []
