"""The resumable state of an adaptation run (``<run_dir>/state.pt``).

The state holds the configuration, the step, every network's and the optimiser's weights,
the evaluation history, the log, the snapshots and the target recordings' hashes. A run
resumes only with the same configuration (``steps`` may change) and the same target
recordings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sst_ros.errors import ConfigError, DataError

__all__ = ["STATE_FILE", "check_resumable", "load_state", "save_state"]

STATE_FILE = "state.pt"


def check_resumable(state: dict[str, Any], cfg: dict[str, Any], target_sha256: list[str]) -> None:
    """Refuse to resume ``state`` with another configuration (``cfg`` as plain data) or other target recordings.

    Raises:
        ConfigError: naming the options that differ, or the target files, and the fix.
    """
    saved = {k: v for k, v in state["cfg"].items() if k != "steps"}
    mine = {k: v for k, v in cfg.items() if k != "steps"}
    if saved != mine:
        diff = sorted(k for k in mine if saved.get(k) != mine[k])
        raise ConfigError(
            f"cannot resume: the run folder was started with a different adaptation config ({', '.join(diff)}); "
            "use the same options (only --steps may change) or another --run-dir"
        )
    if state.get("target_sha256") != target_sha256:
        raise ConfigError(
            "cannot resume: the target recordings differ from those of the interrupted run; "
            "give the same --target files or another --run-dir"
        )


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    """Write ``run_dir/state.pt`` atomically (a temporary file, then a rename)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / (STATE_FILE + ".tmp")
    torch.save(state, tmp)
    tmp.replace(run_dir / STATE_FILE)


def load_state(run_dir: Path) -> dict[str, Any] | None:
    """The state in ``run_dir``, or None when there is none.

    Raises:
        DataError: a state file that cannot be read (e.g. truncated).
    """
    path = run_dir / STATE_FILE
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated state file
        raise DataError(f"cannot resume from {path}: {err}; delete the run folder") from err
