"""sst_ros.adapt."""
