"""Multi-source tracker: gated association of spectrum peaks to tracks with stable ids.

Each track runs an alpha-beta filter on the azimuth circle (all differences wrap-aware, so a
talker walking through +-180 degrees keeps its id). Per frame:

1. predict every track (``azimuth + velocity * frame_s``);
2. associate peaks to confirmed tracks, then the remaining peaks to tentative tracks, each by
   a minimum-cost assignment on the wrapped azimuth distance, only within the gate
   (``gate_deg``, widened by ``gate_growth_deg_s`` per second the track has gone without a peak);
3. update matched tracks, coast unmatched ones (velocity halved, activity decays);
4. start a tentative track for every peak left over;
5. confirm tentative tracks with ``birth_hits`` hits within ``birth_window`` frames (birth
   hysteresis); drop tentative tracks that can no longer make it, and confirmed tracks after
   ``death_misses`` consecutive misses (death hysteresis);
6. hand the id of a confirmed track that lost its peak over to a track confirmed this frame
   within ``handover_deg`` of it (the same talker after a jump out of the gate).

Confirmed tracks are reported while they have missed fewer than ``coast_misses`` frames; after
that they are hidden (no longer reported: the source has ended for a display) but keep their
identity until ``death_misses``, so a talker pausing between utterances keeps its id.

Ids count up from 1 and are never reused until :meth:`MultiTracker.reset`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sst_ros.geometry import angular_distance_deg, wrap_deg
from sst_ros.tracking.assignment import gated_assignment
from sst_ros.tracking.types import Peak, Track, TrackerConfig

__all__ = ["MultiTracker"]


@dataclass
class _State:
    """Mutable filter state of one track (internal; snapshots are :class:`Track`)."""

    track_id: int
    azimuth_deg: float
    velocity_deg_s: float
    activity: float
    hits: int = 1
    misses: int = 0
    age_frames: int = 1
    confirmed: bool = False

    def snapshot(self) -> Track:
        return Track(
            track_id=self.track_id,
            azimuth_deg=float(wrap_deg(self.azimuth_deg)),
            velocity_deg_s=float(self.velocity_deg_s),
            activity=float(self.activity),
            hits=self.hits,
            misses=self.misses,
            age_frames=self.age_frames,
            confirmed=self.confirmed,
        )


class MultiTracker:
    """Peaks per frame in, confirmed tracks out.

    Args:
        config: association and life-cycle parameters; may be replaced at run time with
            :meth:`set_config` (existing tracks are kept).
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self._config = config or TrackerConfig()
        self._tracks: list[_State] = []
        self._next_id = 1

    @property
    def config(self) -> TrackerConfig:
        """The current parameters."""
        return self._config

    def set_config(self, config: TrackerConfig) -> None:
        """Replace the parameters; tracks and ids are kept."""
        self._config = config

    def reset(self) -> None:
        """Forget all tracks (e.g. after a gap in the audio stream); ids restart at 1."""
        self._tracks = []
        self._next_id = 1

    def tracks(self, include_hidden: bool = False) -> list[Track]:
        """Snapshots sorted by id: reported tracks (confirmed, coasting less than ``coast_misses``),
        or every live track, tentative and hidden ones included, with ``include_hidden``."""
        if include_hidden:
            return [t.snapshot() for t in self._tracks]
        return [t.snapshot() for t in self._tracks if t.confirmed and t.misses < self._config.coast_misses]

    def update(self, peaks: Sequence[Peak]) -> list[Track]:
        """Advance one frame (``config.frame_s`` seconds) with this frame's peaks.

        Args:
            peaks: the frame's spectrum peaks (any order), azimuth in degrees.
        Returns:
            the reported tracks after the update (confirmed; matched, or coasting for fewer
            than ``coast_misses`` frames), sorted by id. ``misses > 0``: no peak this frame.
        """
        cfg = self._config
        for t in self._tracks:
            t.azimuth_deg = float(wrap_deg(t.azimuth_deg + t.velocity_deg_s * cfg.frame_s))
            t.age_frames += 1
        free = list(range(len(peaks)))
        matched: set[int] = set()
        newborn: list[_State] = []
        for group in (
            [i for i, t in enumerate(self._tracks) if t.confirmed],
            [i for i, t in enumerate(self._tracks) if not t.confirmed],
        ):
            pairs = self._associate(group, peaks, free)
            for ti, pi in pairs:
                if self._hit(self._tracks[ti], peaks[pi]):
                    newborn.append(self._tracks[ti])
                matched.add(ti)
            used = {pi for _, pi in pairs}
            free = [p for p in free if p not in used]
        for i, t in enumerate(self._tracks):
            if i not in matched:
                self._miss(t)
        for pi in free:
            t = _State(
                track_id=self._new_id(),
                azimuth_deg=float(wrap_deg(peaks[pi].azimuth_deg)),
                velocity_deg_s=0.0,
                activity=float(peaks[pi].height),
                confirmed=cfg.birth_hits <= 1,
            )
            self._tracks.append(t)
            if t.confirmed:
                newborn.append(t)
        for t in newborn:
            self._handover(t)
        self._tracks = [t for t in self._tracks if self._alive(t)]
        return self.tracks()

    def _handover(self, new: _State) -> None:
        """A track confirmed this frame near a confirmed track that lost its peak takes over its id.

        The usual cause is one talker whose direction jumped out of its gate (an outlier peak at
        a speech onset, or a fast move during a pause): the old track stops getting peaks just
        as the new one is born. Two talkers active at once never trigger this (both get peaks).
        """
        cfg = self._config
        if cfg.handover_deg <= 0.0:
            return
        old = [
            t
            for t in self._tracks
            if t is not new and t.confirmed and t.misses > 0 and t.track_id < new.track_id
            and angular_distance_deg(t.azimuth_deg, new.azimuth_deg) <= cfg.handover_deg
        ]
        if not old:
            return
        donor = min(old, key=lambda t: angular_distance_deg(t.azimuth_deg, new.azimuth_deg))
        new.track_id = donor.track_id
        new.hits += donor.hits
        donor.misses = cfg.death_misses  # removed below

    def _associate(self, track_idx: list[int], peaks: Sequence[Peak], free: list[int]) -> list[tuple[int, int]]:
        """Minimum total wrapped distance assignment within the gate; (track index, peak index) pairs."""
        if not track_idx or not free:
            return []
        cfg = self._config
        tracks = [self._tracks[i] for i in track_idx]
        # misses counts the frames before this one without a peak: the gate widens with them
        gate = [min(cfg.gate_deg + cfg.gate_growth_deg_s * cfg.frame_s * t.misses, 180.0) for t in tracks]
        meas = [float(peaks[p].azimuth_deg) for p in free]
        dist = [[abs(float(wrap_deg(m - t.azimuth_deg))) for m in meas] for t in tracks]
        return [(track_idx[r], free[c]) for r, c in gated_assignment(dist, gate)]

    def _hit(self, t: _State, peak: Peak) -> bool:
        """Update with a matched peak; True when this hit confirms a tentative track."""
        cfg = self._config
        resid = float(wrap_deg(peak.azimuth_deg - t.azimuth_deg))
        t.azimuth_deg = float(wrap_deg(t.azimuth_deg + cfg.smoothing * resid))
        v = t.velocity_deg_s + cfg.velocity_gain * resid / cfg.frame_s
        t.velocity_deg_s = min(max(float(v), -cfg.max_speed_deg_s), cfg.max_speed_deg_s)
        t.activity += cfg.smoothing * (float(peak.height) - t.activity)
        t.hits += 1
        t.misses = 0
        if not t.confirmed and t.hits >= cfg.birth_hits:
            t.confirmed = True
            return True
        return False

    def _miss(self, t: _State) -> None:
        t.misses += 1
        t.velocity_deg_s *= 0.5
        t.activity *= 1.0 - self._config.smoothing

    def _alive(self, t: _State) -> bool:
        cfg = self._config
        if t.confirmed:
            return t.misses < cfg.death_misses
        # tentative: dropped as soon as the remaining frames of the window cannot supply enough hits
        return t.hits + max(cfg.birth_window - t.age_frames, 0) >= cfg.birth_hits and t.misses < cfg.death_misses

    def _new_id(self) -> int:
        tid = self._next_id
        self._next_id = self._next_id + 1 if self._next_id < 2**31 - 1 else 1
        return tid
