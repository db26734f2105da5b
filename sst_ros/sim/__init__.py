"""sst_ros.sim."""
