"""The tracking vocabulary: frozen dataclasses shared by peak extraction, the tracker and the node."""

from __future__ import annotations

from dataclasses import dataclass

from sst_ros.errors import ConfigError
from sst_ros.timebase import OUTPUT_FRAME_S

__all__ = ["Peak", "PeakConfig", "Track", "TrackerConfig"]


@dataclass(frozen=True)
class Peak:
    """One local maximum of a spatial spectrum.

    Attributes:
        azimuth_deg: direction in degrees, REP-103 (0 = +x, counter-clockwise), (-180, 180].
        height: spectrum value at the peak, in [0, 1] for the CRNN (the source's activity).
    """

    azimuth_deg: float
    height: float


@dataclass(frozen=True)
class PeakConfig:
    """How peaks are picked from a spatial spectrum.

    Attributes:
        max_peaks: at most this many peaks per frame (the number of simultaneous sources N).
        threshold: minimum peak height in [0, 1]; lower peaks are ignored.
        min_separation_deg: peaks closer than this (wrap-aware) to a higher peak are dropped.
    """

    max_peaks: int = 3
    threshold: float = 0.3
    min_separation_deg: float = 25.0

    def __post_init__(self) -> None:
        if self.max_peaks < 1:
            raise ConfigError(f"max_peaks must be >= 1, got {self.max_peaks}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {self.threshold}")
        if not 0.0 <= self.min_separation_deg <= 180.0:
            raise ConfigError(f"min_separation_deg must be in [0, 180], got {self.min_separation_deg}")


@dataclass(frozen=True)
class TrackerConfig:
    """Association and life-cycle parameters of :class:`~sst_ros.tracking.tracker.MultiTracker`.

    Attributes:
        gate_deg: a peak may update a track only if it lies within this wrap-aware azimuth
            distance of the track's predicted direction, degrees.
        gate_growth_deg_s: the gate of a track that missed frames widens by this much per second
            without a peak (a silent talker keeps moving; capped at 180 degrees).
        handover_deg: a track confirmed within this distance of a confirmed track that lost its
            peak takes over that track's id (0 disables), degrees.
        birth_hits: a new track is confirmed (published) after this many frames with a
            matching peak (birth hysteresis).
        birth_window: ... within this many frames since it was first seen; otherwise it is dropped.
        coast_misses: a confirmed track is reported while it has missed fewer than this many
            consecutive frames (it coasts on its prediction); then it is hidden.
        death_misses: a confirmed track ends after this many consecutive frames without a peak
            (death hysteresis). Between ``coast_misses`` and ``death_misses`` it is hidden but
            keeps its identity, so a talker pausing between utterances keeps its id when a peak
            reappears within the gate. Tentative tracks end when they can no longer be born.
        smoothing: weight of the new measurement in the azimuth update, in (0, 1]
            (1 = no smoothing; the alpha of an alpha-beta filter).
        velocity_gain: beta of the alpha-beta filter (0 = constant-position model), in [0, 1].
        max_speed_deg_s: cap on the estimated angular speed, degrees per second.
        frame_s: time between frames, seconds (the CRNN's output frame, ``OUTPUT_FRAME_S``).
    """

    gate_deg: float = 40.0
    gate_growth_deg_s: float = 20.0
    handover_deg: float = 90.0
    birth_hits: int = 2
    birth_window: int = 4
    coast_misses: int = 1
    death_misses: int = 30
    smoothing: float = 0.6
    velocity_gain: float = 0.1
    max_speed_deg_s: float = 180.0
    frame_s: float = OUTPUT_FRAME_S

    def __post_init__(self) -> None:
        if not 0.0 < self.gate_deg <= 180.0:
            raise ConfigError(f"gate_deg must be in (0, 180], got {self.gate_deg}")
        if self.gate_growth_deg_s < 0.0:
            raise ConfigError(f"gate_growth_deg_s must be >= 0, got {self.gate_growth_deg_s}")
        if not 0.0 <= self.handover_deg <= 180.0:
            raise ConfigError(f"handover_deg must be in [0, 180], got {self.handover_deg}")
        if self.birth_hits < 1:
            raise ConfigError(f"birth_hits must be >= 1, got {self.birth_hits}")
        if self.birth_window < self.birth_hits:
            raise ConfigError(f"birth_window ({self.birth_window}) must be >= birth_hits ({self.birth_hits})")
        if self.coast_misses < 1:
            raise ConfigError(f"coast_misses must be >= 1, got {self.coast_misses}")
        if self.death_misses < self.coast_misses:
            raise ConfigError(
                f"death_misses ({self.death_misses}) must be >= coast_misses ({self.coast_misses}): a track is "
                "hidden before it ends"
            )
        if not 0.0 < self.smoothing <= 1.0:
            raise ConfigError(f"smoothing must be in (0, 1], got {self.smoothing}")
        if not 0.0 <= self.velocity_gain <= 1.0:
            raise ConfigError(f"velocity_gain must be in [0, 1], got {self.velocity_gain}")
        if self.max_speed_deg_s < 0.0:
            raise ConfigError(f"max_speed_deg_s must be >= 0, got {self.max_speed_deg_s}")
        if self.frame_s <= 0.0:
            raise ConfigError(f"frame_s must be > 0, got {self.frame_s}")


@dataclass(frozen=True)
class Track:
    """A tracked source at one frame.

    Attributes:
        track_id: stable identity (>= 1), never reused within one tracker's life (until reset).
        azimuth_deg: filtered direction, degrees, REP-103, (-180, 180].
        velocity_deg_s: estimated angular speed, degrees per second (counter-clockwise positive).
        activity: filtered peak height in [0, 1]; decays while the track is coasting.
        hits: frames with a matching peak since birth.
        misses: consecutive frames without a matching peak (0 = updated this frame; reported
            tracks have ``misses < coast_misses``).
        age_frames: frames since birth.
        confirmed: True once the birth hysteresis is passed.
    """

    track_id: int
    azimuth_deg: float
    velocity_deg_s: float
    activity: float
    hits: int
    misses: int
    age_frames: int
    confirmed: bool
