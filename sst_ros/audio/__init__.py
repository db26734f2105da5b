"""sst_ros.audio."""
