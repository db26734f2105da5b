"""sst_ros.train."""
