"""sst_ros.tracking."""
