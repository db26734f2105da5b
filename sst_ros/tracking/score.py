"""Scoring tracker output against labels: the package's one scorer (no rclpy, no torch).

Input: per frame the reported tracks (``track_id``, azimuth in degrees; any number of them,
e.g. :class:`~sst_ros.tracking.types.Track` from :func:`~sst_ros.tracking.spectra.track_spectra`,
``(track_id, azimuth_deg)`` pairs, or bare azimuths for tracks without an id such as the
poses ``sst demo`` receives), and the clip's :class:`~sst_ros.data.clipset.Labels` (talkers
and non-speech interferers; single-source labels are one talker, id 0).

Per scored frame, the active labelled talkers and the reported tracks are matched within a
gate of ``gate_deg`` (30 degrees; a pair farther apart is never matched) as CLEAR-MOT does: a
talker keeps the track it was last matched to while that track is reported within the gate,
and the rest are matched by an optimal assignment (:func:`match_frame`,
:func:`~sst_ros.tracking.assignment.gated_assignment` on the wrap-aware azimuth distance). Then, with the
counts summed over frames (:class:`TrackScore`):

- **matched MAE** (``mae_deg``): mean distance of the matched (talker, track) pairs, degrees;
- **precision / recall / F1** over (frame, source) pairs: a matched pair is a true positive,
  a reported track matched to no active talker is a false positive, an active talker without
  a match is a miss (``recall`` is the share of active talker-frames detected;
  ``overlap_recall`` the same share on the frames where two or more talkers are active);
- **identity switches** (``id_switches_per_min``): per talker, every time the id of the track
  it is matched to differs from the id it was last matched to (however many frames ago),
  per minute of scored audio (tracks without an id are never counted);
- **OSPA** (``ospa_deg``; Schuhmacher, Vo and Vo 2008): per frame, between the set of active
  talkers and the set of reported tracks, with cutoff ``c = ospa_cutoff_deg`` (30 degrees)
  and order ``p = ospa_order`` (1): ``((min over assignments of sum min(d, c)^p +
  c^p * |n - m|) / max(m, n))^(1/p)``; 0 when both sets are empty, ``c`` when exactly one is;
  averaged over the scored frames, degrees. It combines localisation error and cardinality
  error in one number (lower is better);
- **interferer rate** (``interferer_rate``): share of the interferers' active frames in which
  a reported track left unmatched by the talkers lies within ``gate_deg`` of the interferer,
  i.e. the interferer is tracked as a talker.

A linear array cannot tell a direction from its mirror image: pass its grid as
``identifiable`` and every azimuth (labels and tracks) is folded into the identifiable half
plane first (:meth:`~sst_ros.model.azimuth.AzimuthGrid.fold`).

:func:`truth_at` and :func:`nearest_error` are display helpers (``sst demo``'s live line),
not scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from sst_ros.errors import ConfigError, DataError
from sst_ros.geometry import angular_distance_deg, wrap_deg
from sst_ros.tracking.assignment import gated_assignment, min_cost_assignment

if TYPE_CHECKING:
    from sst_ros.data.clipset import Labels
    from sst_ros.model.azimuth import AzimuthGrid

__all__ = [
    "GATE_DEG",
    "OSPA_CUTOFF_DEG",
    "OSPA_ORDER",
    "ReportedTrack",
    "ScoreConfig",
    "TrackScore",
    "match_frame",
    "nearest_error",
    "ospa_distance",
    "score_tracks",
    "truth_at",
]

GATE_DEG = 30.0
OSPA_CUTOFF_DEG = 30.0
OSPA_ORDER = 1.0


class ReportedTrack(NamedTuple):
    """One reported track in one frame: its id (None: the reporter gives no identities) and azimuth, degrees."""

    track_id: int | None
    azimuth_deg: float


@dataclass(frozen=True)
class ScoreConfig:
    """Scoring parameters.

    Attributes:
        gate_deg: a track and a talker farther apart than this (wrap-aware) are never matched,
            degrees; also the radius around an interferer within which an unmatched track counts
            as tracking it.
        ospa_cutoff_deg: OSPA cutoff ``c``, degrees.
        ospa_order: OSPA order ``p`` (>= 1).
    """

    gate_deg: float = GATE_DEG
    ospa_cutoff_deg: float = OSPA_CUTOFF_DEG
    ospa_order: float = OSPA_ORDER

    def __post_init__(self) -> None:
        if not 0.0 < self.gate_deg <= 180.0:
            raise ConfigError(f"gate_deg must be in (0, 180], got {self.gate_deg}")
        if not 0.0 < self.ospa_cutoff_deg <= 180.0:
            raise ConfigError(f"ospa_cutoff_deg must be in (0, 180], got {self.ospa_cutoff_deg}")
        if not self.ospa_order >= 1.0:
            raise ConfigError(f"ospa_order must be >= 1, got {self.ospa_order}")


def _as_reported(item: Any) -> ReportedTrack:
    """A reported track from a Track-like object, an (id, azimuth) pair or a bare azimuth."""
    if isinstance(item, (int, float, np.integer, np.floating)):
        return ReportedTrack(None, float(item))
    if hasattr(item, "azimuth_deg"):
        tid = getattr(item, "track_id", None)
        return ReportedTrack(None if tid is None else int(tid), float(item.azimuth_deg))
    try:
        tid, az = item
    except (TypeError, ValueError) as err:
        raise DataError(
            f"a reported track must be a Track, a (track_id, azimuth_deg) pair or an azimuth, got {item!r}"
        ) from err
    return ReportedTrack(None if tid is None else int(tid), float(az))


def _distances(a_deg: np.ndarray, b_deg: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) wrap-aware distances, degrees."""
    return np.asarray(angular_distance_deg(np.asarray(a_deg)[:, None], np.asarray(b_deg)[None, :])).reshape(
        len(a_deg), len(b_deg)
    )


def match_frame(
    true_deg: Sequence[float] | np.ndarray, est_deg: Sequence[float] | np.ndarray, gate_deg: float = GATE_DEG
) -> list[tuple[int, int, float]]:
    """Optimal one-to-one matching of true directions and estimates within a gate.

    Maximises the number of pairs within ``gate_deg`` (inclusive), then minimises their summed
    wrap-aware distance (:func:`~sst_ros.tracking.assignment.gated_assignment`).

    Args:
        true_deg: (S,) true azimuths, degrees. est_deg: (N,) estimated azimuths, degrees.
        gate_deg: largest distance of a matched pair, degrees.
    Returns:
        ``(true index, estimate index, distance deg)`` per matched pair, by true index.
    """
    t = np.asarray(true_deg, dtype=np.float64).reshape(-1)
    e = np.asarray(est_deg, dtype=np.float64).reshape(-1)
    if t.size == 0 or e.size == 0:
        return []
    d = _distances(t, e)
    return [(i, j, float(d[i, j])) for i, j in gated_assignment(d, gate_deg)]


def ospa_distance(
    true_deg: Sequence[float] | np.ndarray,
    est_deg: Sequence[float] | np.ndarray,
    cutoff_deg: float = OSPA_CUTOFF_DEG,
    order: float = OSPA_ORDER,
) -> float:
    """OSPA distance between two sets of azimuths (see the module docstring), degrees in [0, ``cutoff_deg``]."""
    t = np.asarray(true_deg, dtype=np.float64).reshape(-1)
    e = np.asarray(est_deg, dtype=np.float64).reshape(-1)
    m, n = t.size, e.size
    if m == 0 and n == 0:
        return 0.0
    if m == 0 or n == 0:
        return float(cutoff_deg)
    cost = np.minimum(_distances(t, e), cutoff_deg) ** order
    rows, cols = min_cost_assignment(cost)
    total = float(cost[rows, cols].sum()) + cutoff_deg**order * abs(n - m)
    return float((total / max(m, n)) ** (1.0 / order))


@dataclass(frozen=True)
class TrackScore:
    """Counts of one scoring run (a clip, or several pooled with :meth:`pooled`) and the metrics from them.

    Attributes:
        n_frames: scored frames.
        frame_s: frame length, seconds.
        n_true: active talker-frames (one per active talker per scored frame).
        n_reported: reported track-frames.
        n_matched: matched (talker, track) pairs (true positives).
        sum_error_deg: summed distance of the matched pairs, degrees.
        n_id_switches: identity switches (all talkers).
        sum_ospa_deg: OSPA summed over the scored frames, degrees.
        n_interferer_frames: active interferer-frames.
        n_interferer_tracked: of those, frames with an unmatched track within the gate.
        n_true_overlap: active talker-frames in frames where two or more talkers are active.
        n_matched_overlap: of those, the matched ones.
    """

    n_frames: int = 0
    frame_s: float = 0.1
    n_true: int = 0
    n_reported: int = 0
    n_matched: int = 0
    sum_error_deg: float = 0.0
    n_id_switches: int = 0
    sum_ospa_deg: float = 0.0
    n_interferer_frames: int = 0
    n_interferer_tracked: int = 0
    n_true_overlap: int = 0
    n_matched_overlap: int = 0

    @staticmethod
    def _ratio(num: float, den: float) -> float:
        return float(num) / den if den > 0 else float("nan")

    @property
    def mae_deg(self) -> float:
        """Mean distance of the matched pairs, degrees (NaN without a match)."""
        return self._ratio(self.sum_error_deg, self.n_matched)

    @property
    def n_false_positives(self) -> int:
        """Reported track-frames not matched to an active talker."""
        return self.n_reported - self.n_matched

    @property
    def n_missed(self) -> int:
        """Active talker-frames without a match."""
        return self.n_true - self.n_matched

    @property
    def precision(self) -> float:
        """Matched / reported track-frames (NaN when nothing was reported)."""
        return self._ratio(self.n_matched, self.n_reported)

    @property
    def recall(self) -> float:
        """Matched / active talker-frames (NaN without an active talker)."""
        return self._ratio(self.n_matched, self.n_true)

    @property
    def overlap_recall(self) -> float:
        """Recall on frames where two or more talkers are active at once (NaN without such a frame).

        Pooled recall mixes frames with one active talker (alternating speech) and frames with
        several: a model that reports only the stronger of two simultaneous talkers loses here
        first.
        """
        return self._ratio(self.n_matched_overlap, self.n_true_overlap)

    @property
    def f1(self) -> float:
        """2 TP / (2 TP + FP + FN) (NaN when there is neither a talker nor a track)."""
        return self._ratio(2 * self.n_matched, self.n_true + self.n_reported)

    @property
    def duration_s(self) -> float:
        """Scored audio, seconds."""
        return self.n_frames * self.frame_s

    @property
    def id_switches_per_min(self) -> float:
        """Identity switches per minute of scored audio (NaN without scored frames)."""
        return self._ratio(self.n_id_switches, self.duration_s / 60.0)

    @property
    def ospa_deg(self) -> float:
        """Mean OSPA over the scored frames, degrees (NaN without scored frames)."""
        return self._ratio(self.sum_ospa_deg, self.n_frames)

    @property
    def interferer_rate(self) -> float:
        """Share of active interferer-frames tracked as a talker (NaN without an active interferer)."""
        return self._ratio(self.n_interferer_tracked, self.n_interferer_frames)

    def to_dict(self) -> dict[str, float]:
        """Metrics and counts as plain data (NaN where undefined)."""
        out: dict[str, float] = {
            "mae_deg": self.mae_deg,
            "precision": self.precision,
            "recall": self.recall,
            "overlap_recall": self.overlap_recall,
            "f1": self.f1,
            "id_switches_per_min": self.id_switches_per_min,
            "ospa_deg": self.ospa_deg,
            "interferer_rate": self.interferer_rate,
            "n_false_positives": self.n_false_positives,
            "n_missed": self.n_missed,
            "duration_s": self.duration_s,
        }
        out.update({f.name: getattr(self, f.name) for f in fields(self)})
        return out

    @classmethod
    def pooled(cls, scores: Iterable[TrackScore]) -> TrackScore:
        """The counts of several runs summed (pooled metrics: every frame weighs the same)."""
        scores = list(scores)
        if not scores:
            return cls()
        sums = {f.name: sum(getattr(s, f.name) for s in scores) for f in fields(cls) if f.name != "frame_s"}
        return cls(frame_s=scores[0].frame_s, **sums)


def _label_frames(labels: Labels, n: int, times_s: Sequence[float] | np.ndarray | None) -> np.ndarray:
    """Label frame of each of ``n`` reported frames (-1: no label frame there)."""
    if times_s is None:
        if n != len(labels):
            raise DataError(
                f"{n} reported frames but {len(labels)} label frames; pass times_s to place the frames on the labels"
            )
        return np.arange(n)
    t = np.asarray(times_s, dtype=np.float64).reshape(-1)
    if t.size != n:
        raise DataError(f"times_s has {t.size} entries but there are {n} reported frames")
    if len(labels) == 0:
        return np.full(n, -1, dtype=np.int64)
    k = np.round((t - labels.time_s[0]) / labels.frame_s).astype(np.int64)
    kc = np.clip(k, 0, len(labels) - 1)
    ok = (k >= 0) & (k < len(labels)) & (np.abs(labels.time_s[kc] - t) <= labels.frame_s / 2 + 1e-9)
    return np.where(ok, k, -1)


def _match_keeping_ids(
    true: np.ndarray, est: np.ndarray, last_ids: list[int | None], reported: list[ReportedTrack], gate_deg: float
) -> list[tuple[int, int, float]]:
    """CLEAR-MOT matching: a talker keeps the track it was last matched to while that track is
    reported within the gate; the other talkers and tracks are matched optimally
    (:func:`match_frame`). Without this, two talkers close together could swap two stable
    tracks from frame to frame and count identity switches the tracker never made."""
    pairs: list[tuple[int, int, float]] = []
    kept_t: set[int] = set()
    kept_e: set[int] = set()
    for i, tid in enumerate(last_ids):
        if tid is None:
            continue
        for j, r in enumerate(reported):
            if j not in kept_e and r.track_id == tid:
                d = float(angular_distance_deg(est[j], true[i]))
                if d <= gate_deg:
                    pairs.append((i, j, d))
                    kept_t.add(i)
                    kept_e.add(j)
                break
    rest_t = [i for i in range(true.size) if i not in kept_t]
    rest_e = [j for j in range(est.size) if j not in kept_e]
    pairs += [(rest_t[a], rest_e[b], d) for a, b, d in match_frame(true[rest_t], est[rest_e], gate_deg)]
    return sorted(pairs)


def score_tracks(
    frames: Sequence[Iterable[Any]],
    labels: Labels,
    *,
    times_s: Sequence[float] | np.ndarray | None = None,
    config: ScoreConfig | None = None,
    identifiable: AzimuthGrid | None = None,
) -> TrackScore:
    """Score per-frame reported tracks against (multi-source) labels (see the module docstring).

    Args:
        frames: per reported frame, its tracks: :class:`~sst_ros.tracking.types.Track` (or
            anything with ``track_id`` and ``azimuth_deg``), ``(track_id, azimuth_deg)`` pairs
            or bare azimuths (no id: identity switches are not counted); degrees. Non-finite
            azimuths are ignored.
        labels: the clip's labels; single-source labels are one talker.
        times_s: (F,) start time of each reported frame, seconds; each is scored against the
            label frame starting within half a frame of it (frames off the labels are not
            scored). Default: ``frames`` are the label frames, one each.
        config: gate and OSPA parameters (default :class:`ScoreConfig`).
        identifiable: a linear array's azimuth grid: fold every azimuth into its half plane.
    Returns:
        The counts (:class:`TrackScore`); its properties are the metrics.
    Raises:
        DataError: frames and times (or labels) that do not line up.
    """
    cfg = config or ScoreConfig()
    frame_of = _label_frames(labels, len(frames), times_s)

    def fold(az: np.ndarray) -> np.ndarray:
        return np.asarray(identifiable.fold(az) if identifiable is not None else wrap_deg(az), dtype=np.float64)

    interferers = labels.interferers()
    n_lab = len(labels)
    t_az, t_act = labels.talker_tracks()  # (F, S); without talkers one column that is never active
    t_act = t_act & np.isfinite(t_az)
    i_az = np.stack([s.azimuth_deg for s in interferers], axis=1) if interferers else np.zeros((n_lab, 0))
    i_act = np.stack([s.active for s in interferers], axis=1) if interferers else np.zeros((n_lab, 0), bool)
    i_act = i_act & np.isfinite(i_az)
    t_az = fold(np.nan_to_num(t_az))
    i_az = fold(np.nan_to_num(i_az))

    last_id: list[int | None] = [None] * t_az.shape[1]
    counts = dict.fromkeys(("n_frames", "n_true", "n_reported", "n_matched", "n_id_switches"), 0)
    counts |= {"n_interferer_frames": 0, "n_interferer_tracked": 0, "n_true_overlap": 0, "n_matched_overlap": 0}
    sum_err = sum_ospa = 0.0
    for tracks, k in zip(frames, frame_of, strict=True):
        if k < 0:
            continue
        reported = [r for r in map(_as_reported, tracks) if np.isfinite(r.azimuth_deg)]
        est = fold(np.array([r.azimuth_deg for r in reported], dtype=np.float64))
        active = np.flatnonzero(t_act[k])
        true = t_az[k, active]
        pairs = _match_keeping_ids(true, est, [last_id[int(s)] for s in active], reported, cfg.gate_deg)
        counts["n_frames"] += 1
        counts["n_true"] += int(active.size)
        counts["n_reported"] += int(est.size)
        counts["n_matched"] += len(pairs)
        if active.size >= 2:
            counts["n_true_overlap"] += int(active.size)
            counts["n_matched_overlap"] += len(pairs)
        sum_err += sum(d for _, _, d in pairs)
        sum_ospa += ospa_distance(true, est, cfg.ospa_cutoff_deg, cfg.ospa_order)
        for i, j, _ in pairs:
            s, tid = int(active[i]), reported[j].track_id
            if tid is None:
                continue
            if last_id[s] is not None and tid != last_id[s]:
                counts["n_id_switches"] += 1
            last_id[s] = tid
        matched = {j for _, j, _ in pairs}
        free = est[[j for j in range(est.size) if j not in matched]]
        for q in np.flatnonzero(i_act[k]):
            counts["n_interferer_frames"] += 1
            if free.size and float(np.min(angular_distance_deg(free, i_az[k, q]))) <= cfg.gate_deg:
                counts["n_interferer_tracked"] += 1
    return TrackScore(frame_s=labels.frame_s, sum_error_deg=sum_err, sum_ospa_deg=sum_ospa, **counts)


def truth_at(truths: Sequence[Labels], t_s: float) -> list[float | None]:
    """True azimuth (degrees) of each talker at audio time ``t_s`` seconds; None where inactive or unlabelled.

    Display helper (``sst demo``'s live line): one entry per label set's lowest-id talker.
    """
    out: list[float | None] = []
    for lab in truths:
        k = int(round(t_s / lab.frame_s))
        out.append(float(lab.azimuth_deg[k]) if 0 <= k < len(lab) and lab.active[k] else None)
    return out


def nearest_error(estimates_deg: Sequence[float], true_deg: float) -> tuple[float, float] | None:
    """(nearest estimate, its wrap-aware distance to ``true_deg``), degrees; None without estimates.

    Display helper (``sst demo``'s live line); scores come from :func:`score_tracks`.
    """
    if not estimates_deg:
        return None
    d = [float(angular_distance_deg(a, true_deg)) for a in estimates_deg]
    i = int(np.argmin(d))
    return float(estimates_deg[i]), d[i]
