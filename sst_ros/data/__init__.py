"""sst_ros.data."""
