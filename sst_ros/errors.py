"""One error hierarchy for sst_ros.

Every error a user can meet derives from :class:`SstError`; each layer raises its own
subclass with a message that names the problem *and* the fix, and chains the cause
(``raise ... from err``). Nothing uses ``assert`` as an API guard.
"""

from __future__ import annotations

__all__ = [
    "AudioFormatError",
    "BagError",
    "ConfigError",
    "DataError",
    "ModelError",
    "SstError",
    "UnsupportedFormatError",
]


class SstError(Exception):
    """Root of all sst_ros errors."""


class ConfigError(SstError, ValueError):
    """A configuration (YAML, parameters, array geometry, CLI options) is invalid."""


class AudioFormatError(SstError, ValueError):
    """Audio cannot be decoded or does not match what is expected (format, channels, rate)."""


class UnsupportedFormatError(AudioFormatError):
    """Audio in an encoding sst_ros does not read (MP3, PortAudio paInt24): the capture node must send another."""


class BagError(SstError):
    """A rosbag2 cannot be written or read (missing, corrupt, no audio topics, disk full)."""


class DataError(SstError):
    """A clip set or target set is missing, malformed or inconsistent."""


class ModelError(SstError):
    """A model checkpoint is missing, corrupt, or does not match the audio or geometry."""
