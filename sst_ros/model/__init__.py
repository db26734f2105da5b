"""sst_ros.model."""
