"""sst_ros: sound source tracking for robots."""
