"""sst_ros.ros."""
