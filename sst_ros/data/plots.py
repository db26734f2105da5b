"""Plot a clip's trajectory: azimuth over time, shaded where the source is active.

Used by reports (evaluation, adaptation). Matplotlib is imported by the caller's figure:
this module only draws on a given ``Axes``, so it works with any backend (use ``Agg`` for
files).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sst_ros.data.clipset import Labels

__all__ = ["plot_trajectory"]


def _break_wraps(t: np.ndarray, az: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Insert NaNs where azimuth jumps across +-180 so lines do not cross the plot."""
    if az.size < 2:
        return t, az
    jumps = np.nonzero(np.abs(np.diff(az)) > 180.0)[0]
    return np.insert(t, jumps + 1, np.nan), np.insert(az, jumps + 1, np.nan)


def plot_trajectory(
    ax: Any,
    labels: Labels,
    *,
    estimate_time_s: np.ndarray | None = None,
    estimate_az_deg: np.ndarray | None = None,
    label: str = "ground truth",
    estimate_label: str = "estimate",
    title: str | None = None,
) -> Any:
    """Draw the labelled azimuth (degrees, array frame) over time (s) on ``ax``.

    Frames where the source is active are shaded; inactive stretches of the labelled track
    are drawn dashed. Optional estimates (times (T,) s, azimuths (T,) degrees; NaN = none)
    are drawn as dots. Returns ``ax``.
    """
    t_mid = labels.time_s + 0.5 * labels.frame_s
    az = np.asarray(labels.azimuth_deg, dtype=np.float64)
    act = np.asarray(labels.active, dtype=bool)
    # Shade active spans (contiguous runs of active frames).
    if act.any():
        edges = np.diff(np.concatenate([[0], act.astype(int), [0]]))
        starts, stops = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
        for i, (a, b) in enumerate(zip(starts, stops, strict=True)):
            ax.axvspan(
                labels.time_s[a],
                labels.time_s[b - 1] + labels.frame_s,
                color="tab:green",
                alpha=0.15,
                lw=0,
                label="active" if i == 0 else None,
            )
    tt, aa = _break_wraps(t_mid, az)
    ax.plot(tt, aa, color="tab:blue", lw=1.0, ls="--", alpha=0.6)
    az_act = np.where(act, az, np.nan)
    tt, aa = _break_wraps(t_mid, az_act)
    ax.plot(tt, aa, color="tab:blue", lw=2.0, label=label)
    if estimate_time_s is not None and estimate_az_deg is not None:
        ax.plot(
            np.asarray(estimate_time_s), np.asarray(estimate_az_deg), ".", color="tab:red", ms=3, label=estimate_label
        )
    ax.set_ylim(-180, 180)
    ax.set_yticks(np.arange(-180, 181, 90))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("azimuth (deg, array frame)")
    if len(labels):
        ax.set_xlim(labels.time_s[0], labels.time_s[-1] + labels.frame_s)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    return ax
