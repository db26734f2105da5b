"""Array placement and talker trajectories in a shoebox room.

Room frame: origin in a floor corner, x along the room length, y along its width, z up,
metres. The array frame (REP-103) sits at ``ArrayPose.origin_m`` rotated by ``yaw_rad``
about z. Talkers move on a straight line plus a lateral sinusoid at a fixed mouth height,
at constant progress (speeds up to walking pace), or stand still.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ArrayPose",
    "Trajectory",
    "crossing_trajectory",
    "raise_to_elevation",
    "sample_array_pose",
    "sample_trajectory",
]


@dataclass(frozen=True)
class ArrayPose:
    """Pose of the array frame in the room: origin (3,) metres, yaw (rad) about z."""

    origin_m: np.ndarray
    yaw_rad: float

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) rotation array frame -> room frame."""
        c, s = np.cos(self.yaw_rad), np.sin(self.yaw_rad)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    def to_room(self, points_array_m: np.ndarray) -> np.ndarray:
        """(N, 3) points in the array frame -> room frame."""
        return np.asarray(points_array_m) @ self.rotation.T + self.origin_m

    def to_array(self, points_room_m: np.ndarray) -> np.ndarray:
        """(N, 3) points in the room frame -> array frame."""
        return (np.asarray(points_room_m) - self.origin_m) @ self.rotation


@dataclass(frozen=True)
class Trajectory:
    """A talker path: ``p(t) = start + (end - start) t/T + perp * A sin(2 pi cycles t/T + phase)``.

    Attributes:
        start_m, end_m: (3,) room-frame points in metres (same height).
        duration_s: T, seconds.
        amplitude_m: lateral sinusoid amplitude A, metres (0 for none).
        cycles: oscillations over T.
        phase_rad: sinusoid phase.
        perp: (3,) horizontal unit vector of the lateral motion.
    """

    start_m: np.ndarray
    end_m: np.ndarray
    duration_s: float
    amplitude_m: float = 0.0
    cycles: float = 0.0
    phase_rad: float = 0.0
    perp: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0, 0.0]))

    @property
    def is_static(self) -> bool:
        """True when the talker does not move."""
        return bool(np.allclose(self.start_m, self.end_m) and self.amplitude_m == 0.0)

    def position(self, t_s: np.ndarray | float) -> np.ndarray:
        """(N, 3) room-frame positions at times ``t_s`` (seconds, clipped to [0, T])."""
        t = np.clip(np.atleast_1d(np.asarray(t_s, dtype=np.float64)), 0.0, self.duration_s)
        u = t / max(self.duration_s, 1e-9)
        p = self.start_m[None, :] + u[:, None] * (self.end_m - self.start_m)[None, :]
        if self.amplitude_m:
            lat = self.amplitude_m * (np.sin(2 * np.pi * self.cycles * u + self.phase_rad) - np.sin(self.phase_rad))
            p = p + lat[:, None] * self.perp[None, :]
        return p

    def to_dict(self) -> dict[str, object]:
        """Plain-data summary (metadata)."""
        return {
            "start_m": [round(float(v), 4) for v in self.start_m],
            "end_m": [round(float(v), 4) for v in self.end_m],
            "amplitude_m": round(float(self.amplitude_m), 4),
            "cycles": round(float(self.cycles), 4),
            "static": self.is_static,
        }


def sample_array_pose(room_m: np.ndarray, cfg: Any, rng: np.random.Generator) -> ArrayPose:
    """Array origin anywhere on the floor plan (``cfg.wall_margin_m`` from the walls) at a height
    from ``cfg.height_m``; yaw from ``cfg.yaw_deg``. ``cfg`` is the ``array`` config section."""
    m = cfg.wall_margin_m
    x = rng.uniform(m, room_m[0] - m)
    y = rng.uniform(m, room_m[1] - m)
    z = rng.uniform(*cfg.height_m)
    yaw = np.deg2rad(rng.uniform(*cfg.yaw_deg))
    return ArrayPose(np.array([x, y, z]), float(yaw))


def _valid(p: np.ndarray, room_m: np.ndarray, centre: np.ndarray, margin: float, dmin: float) -> bool:
    inside = np.all(p[:, :2] >= margin) and np.all(p[:, :2] <= room_m[None, :2] - margin)
    d = np.hypot(p[:, 0] - centre[0], p[:, 1] - centre[1])
    return bool(inside and np.all(d >= dmin))


def _sample_point(
    room_m: np.ndarray, centre: np.ndarray, height: float, cfg: Any, rng: np.random.Generator
) -> np.ndarray:
    m = cfg.wall_margin_m
    for _ in range(200):
        p = np.array([rng.uniform(m, room_m[0] - m), rng.uniform(m, room_m[1] - m), height])
        d = np.hypot(p[0] - centre[0], p[1] - centre[1])
        if cfg.min_distance_m <= d <= cfg.max_distance_m:
            return p
    # Small room / far array: place at the closest feasible distance in a random direction.
    for _ in range(200):
        a = rng.uniform(-np.pi, np.pi)
        r = rng.uniform(cfg.min_distance_m, cfg.min_distance_m * 1.5)
        p = np.array([centre[0] + r * np.cos(a), centre[1] + r * np.sin(a), height])
        if np.all(p[:2] >= m) and np.all(p[:2] <= room_m[:2] - m):
            return p
    a = rng.uniform(-np.pi, np.pi)
    return np.array([centre[0] + cfg.min_distance_m * np.cos(a), centre[1] + cfg.min_distance_m * np.sin(a), height])


def sample_trajectory(
    room_m: np.ndarray, centre_m: np.ndarray, duration_s: float, cfg: Any, rng: np.random.Generator
) -> Trajectory:
    """A random talker trajectory (``cfg`` = the ``source`` config section).

    Start and end are uniform on the floor plan within ``[min_distance_m, max_distance_m]``
    of the array centre (horizontally) and ``wall_margin_m`` of the walls; the path keeps
    those constraints everywhere and never exceeds ``max_speed_m_s``. A share
    ``static_prob`` (and any path that cannot be made valid) is static.
    """
    height = rng.uniform(*cfg.height_m)
    start = _sample_point(room_m, centre_m, height, cfg, rng)
    static = rng.random() < cfg.static_prob
    # Always draw the same number of values so the stream stays aligned across branches.
    end_draw = _sample_point(room_m, centre_m, height, cfg, rng)
    amp = rng.uniform(*cfg.sinusoid_amplitude_m)
    cycles = rng.uniform(*cfg.sinusoid_cycles)
    phase = rng.uniform(0, 2 * np.pi)
    if static or duration_s <= 0:
        return Trajectory(start, start.copy(), duration_s)
    max_len = cfg.max_speed_m_s * duration_s
    t = np.linspace(0.0, duration_s, 201)
    for attempt in range(8):
        end = end_draw if attempt == 0 else _sample_point(room_m, centre_m, height, cfg, rng)
        vec = end - start
        length = float(np.hypot(vec[0], vec[1]))
        if length > max_len:
            end = start + vec * (max_len / length)
            vec = end - start
            length = max_len
        if length < 1e-6:
            continue
        perp = np.array([-vec[1], vec[0], 0.0]) / length
        a = amp
        for _ in range(6):
            traj = Trajectory(start, end, duration_s, a, cycles, phase, perp)
            p = traj.position(t)
            speed = np.max(np.linalg.norm(np.diff(p, axis=0), axis=1)) / (t[1] - t[0])
            if speed <= cfg.max_speed_m_s * 1.001 and _valid(
                p, room_m, centre_m, cfg.wall_margin_m, cfg.min_distance_m * 0.999
            ):
                return traj
            a *= 0.5
        traj = Trajectory(start, end, duration_s)
        if _valid(traj.position(t), room_m, centre_m, cfg.wall_margin_m, cfg.min_distance_m * 0.999):
            return traj
    return Trajectory(start, start.copy(), duration_s)


def _azimuth_rad(points_room_m: np.ndarray, pose: ArrayPose) -> np.ndarray:
    v = pose.to_array(points_room_m)
    return np.arctan2(v[:, 1], v[:, 0])


def raise_to_elevation(
    traj: Trajectory, pose: ArrayPose, room_m: np.ndarray, max_elevation_deg: float, rng: np.random.Generator
) -> Trajectory:
    """The talker's mouth height widened towards ``max_elevation_deg`` above the array and capped by it.

    An elevation is drawn uniformly in [0, max_elevation_deg]; the (constant) height is raised
    to give that elevation at the path's closest point to the array, when that is higher than
    the drawn height, then capped so the elevation never exceeds ``max_elevation_deg`` and the
    mouth stays 0.2 m below the ceiling. Azimuths are unchanged.
    """
    t = np.linspace(0.0, traj.duration_s, 41)
    p = traj.position(t)
    origin = pose.origin_m
    d_min = float(np.min(np.hypot(p[:, 0] - origin[0], p[:, 1] - origin[1])))
    el = np.deg2rad(rng.uniform(0.0, max_elevation_deg))
    z = max(float(traj.start_m[2]), origin[2] + d_min * np.tan(el))
    z = min(z, origin[2] + d_min * np.tan(np.deg2rad(max_elevation_deg)), float(room_m[2]) - 0.2)
    start, end = traj.start_m.copy(), traj.end_m.copy()
    start[2] = end[2] = z
    return Trajectory(start, end, traj.duration_s, traj.amplitude_m, traj.cycles, traj.phase_rad, traj.perp)


def crossing_trajectory(
    room_m: np.ndarray,
    pose: ArrayPose,
    duration_s: float,
    cfg: Any,
    other: Trajectory,
    rng: np.random.Generator,
    tries: int = 40,
) -> Trajectory | None:
    """A straight path whose azimuth (from the array) crosses ``other``'s during the clip, or None.

    Starts 20-60 degrees to one side of ``other``'s starting azimuth and ends as far to the
    other side of its final azimuth, at distances and a height drawn from the ``source``
    section ``cfg``; keeps its distance and wall constraints and walking pace.
    """
    t = np.linspace(0.0, duration_s, 101)
    az_other = _azimuth_rad(other.position(t), pose)
    origin = pose.origin_m
    for _ in range(tries):
        delta = np.deg2rad(rng.uniform(20.0, 60.0)) * (1.0 if rng.random() < 0.5 else -1.0)
        r_start, r_end = rng.uniform(cfg.min_distance_m, cfg.max_distance_m, 2)
        height = rng.uniform(*cfg.height_m)
        a_start, a_end = az_other[0] + delta, az_other[-1] - delta
        local = np.array(
            [
                [r_start * np.cos(a_start), r_start * np.sin(a_start), height - origin[2]],
                [r_end * np.cos(a_end), r_end * np.sin(a_end), height - origin[2]],
            ]
        )
        start, end = pose.to_room(local)
        if np.hypot(*(end - start)[:2]) > cfg.max_speed_m_s * duration_s:
            continue
        traj = Trajectory(start, end, duration_s)
        p = traj.position(t)
        if not _valid(p, room_m, origin, cfg.wall_margin_m, cfg.min_distance_m * 0.999):
            continue
        diff = np.angle(np.exp(1j * (_azimuth_rad(p, pose) - az_other)))
        change = (np.sign(diff[:-1]) != np.sign(diff[1:])) & (np.abs(diff[:-1]) + np.abs(diff[1:]) < np.pi)
        if change.any():
            return traj
    return None
