"""The closing summary of ``sst adapt``, formatted from the run's result.

:func:`format_summary` renders one row per entry of :data:`SUMMARY_ROWS`; each entry is a
small function of the :class:`~sst_ros.adapt.run.AdaptRun` returning ``(label, text)`` or
None (row left out). A new row (e.g. a do-no-harm check) is one more function in that tuple.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sst_ros.adapt.run import AdaptRun

__all__ = ["SUMMARY_ROWS", "format_summary"]

Row = tuple[str, str]


def _adaptation(run: AdaptRun) -> dict[str, Any]:
    return dict(run.provenance.get("adaptation", {}))


def _model_row(run: AdaptRun) -> Row:
    run_dir = getattr(run.trainer, "run_dir", None)
    where = f" (run folder, logs and resumable state: {run_dir})" if run_dir is not None else ""
    return "adapted model", f"{run.out_path}{where}"


def _source_row(run: AdaptRun) -> Row:
    a = _adaptation(run)
    src = a.get("source") or {}
    used = f"{a.get('n_source_clips', '?')} for training + {a.get('n_validation_clips', '?')} for selection"
    if not src.get("simulated"):
        return "source clips", f"{', '.join(a.get('source_clips', []))} (given; {used})"
    how = "cached from an earlier run" if src.get("cached") else "simulated now"
    return "source clips", (
        f"{src.get('folder')} ({src.get('n')} clips of {src.get('duration_s'):g} s, seed {src.get('seed')}, {how}; "
        f"scene config from {src.get('scene_config_from')}; {used})"
    )


def _target_row(run: AdaptRun) -> Row:
    a = _adaptation(run)
    minutes, n_files = a.get("target_duration_s", 0.0) / 60, len(a.get("target_files", []))
    return "target audio", f"{minutes:.1f} min in {n_files} recordings"


def _selection_row(run: AdaptRun) -> Row:
    a = _adaptation(run)
    sel = a.get("selection") or {}
    criterion, value = sel.get("criterion"), sel.get("value")
    value_text = f", value {value:.4g}" if isinstance(value, (int, float)) else ""
    return "selection", f"{criterion}: chose step {a.get('selected_step')} of {a.get('steps')}{value_text}"


def _criteria_text(c: dict[str, Any]) -> str:
    names = (("equivariance_deg", "equivariance %.2f deg"), ("activity_rate", "activity %.2f"),
             ("azimuth_entropy", "direction entropy %.2f"), ("source_val_loss", "synthetic loss %.4f"))  # fmt: skip
    return ", ".join(fmt % c[k] for k, fmt in names if isinstance(c.get(k), (int, float)))


def _guard_rows(run: AdaptRun) -> Row | None:
    g = _adaptation(run).get("guard")
    if not g:
        return None
    verdict = "SHIPPED the adapted model" if g["ship_adapted"] else "wrote the UNADAPTED model"
    return "do-no-harm guard", (
        f"{verdict}: {'; '.join(g['reasons'])}\n    criteria before: {_criteria_text(g['criteria_unadapted'])}"
        f"\n    criteria after:  {_criteria_text(g['criteria_selected'])}"
    )


def _prior_row(run: AdaptRun) -> Row | None:
    decision = _adaptation(run).get("direction_prior")
    return ("direction prior", str(decision["reason"])) if decision else None


def _oracle_row(run: AdaptRun) -> Row | None:
    oracle = _adaptation(run).get("oracle_report_only")
    if not oracle:
        return None
    mae = (oracle.get("selected_model") or {}).get("mae_deg")
    mae_text = f"MAE {mae:.2f} deg" if isinstance(mae, (int, float)) else "metrics in the provenance"
    best = oracle.get("oracle_would_choose_step")
    return "oracle (report only)", f"{mae_text}; labels would have chosen step {best}"


SUMMARY_ROWS: tuple[Callable[[AdaptRun], Row | None], ...] = (
    _model_row,
    _source_row,
    _target_row,
    _selection_row,
    _guard_rows,
    _prior_row,
    _oracle_row,
)


def format_summary(run: AdaptRun) -> str:
    """The closing summary: one ``label: text`` line per row of :data:`SUMMARY_ROWS`."""
    rows = [r for r in (f(run) for f in SUMMARY_ROWS) if r is not None]
    width = max(len(label) for label, _ in rows)
    return "\n".join(["sst adapt: done"] + [f"  {label + ':':<{width + 1}} {text}" for label, text in rows])
