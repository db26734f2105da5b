"""The resumable state of an adaptation run (``<run_dir>/state.pt``).

The state holds the configuration, the step, every network's and the optimiser's weights,
the evaluation history, the log, the snapshots and the target recordings' hashes. A run
resumes only with the same configuration (``steps`` may change) and the same target
recordings.

The file holds tensors and plain data only (:func:`sst_ros.model.checkpoint.tensors_and_plain_data`)
and is read with ``torch.load(weights_only=True)``: a state file holding other Python objects
(written by an older sst_ros, or crafted to run code when unpickled) is refused, never loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sst_ros.errors import ConfigError, DataError
from sst_ros.model.checkpoint import load_torch_file, tensors_and_plain_data

__all__ = ["STATE_FILE", "check_resumable", "load_state", "save_state"]

STATE_FILE = "state.pt"

_REQUIRED_KEYS = ("cfg", "step", "model_t", "disc", "disc0", "opt", "history", "log", "snapshots")
_FIX = "delete the run folder (or give another --run-dir) and start the adaptation again"


def check_resumable(state: dict[str, Any], cfg: dict[str, Any], target_sha256: list[str]) -> None:
    """Refuse to resume ``state`` with another configuration (``cfg`` as plain data) or other target recordings.

    Raises:
        ConfigError: naming the options that differ, or the target files, and the fix.
    """
    after_training = ("steps", "direction_prior")  # may change on resume (the prior is decided after the steps)
    saved = {k: v for k, v in state["cfg"].items() if k not in after_training}
    mine = {k: v for k, v in cfg.items() if k not in after_training}
    if saved != mine:
        diff = sorted(k for k in mine if saved.get(k) != mine[k])
        raise ConfigError(
            f"cannot resume: the run folder was started with a different adaptation config ({', '.join(diff)}); "
            "use the same options (only --steps and --no-direction-prior may change) or another --run-dir"
        )
    if state.get("target_sha256") != target_sha256:
        raise ConfigError(
            "cannot resume: the target recordings differ from those of the interrupted run; "
            "give the same --target files or another --run-dir"
        )


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    """Write ``run_dir/state.pt`` atomically (a temporary file, then a rename), as tensors and plain data.

    Raises:
        ModelError: a value in ``state`` that is not tensors and plain data (naming where).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    safe = tensors_and_plain_data(state, f"adaptation state for {run_dir}")
    tmp = run_dir / (STATE_FILE + ".tmp")
    torch.save(safe, tmp)
    tmp.replace(run_dir / STATE_FILE)


def load_state(run_dir: Path) -> dict[str, Any] | None:
    """The state in ``run_dir``, or None when there is none.

    Raises:
        DataError: a state file that cannot be read (e.g. truncated), that is incomplete, or that
            holds Python objects other than tensors and plain data (an old-format or crafted
            file: refused without unpickling it, which could run code).
    """
    path = run_dir / STATE_FILE
    if not path.is_file():
        return None
    state = load_torch_file(path, "cannot resume: adaptation state", DataError, _FIX)
    if not isinstance(state, dict):
        raise DataError(f"cannot resume: adaptation state {path} is not a mapping; {_FIX}")
    missing = [k for k in _REQUIRED_KEYS if k not in state]
    if missing:
        raise DataError(f"cannot resume: adaptation state {path} is incomplete (no {', '.join(missing)}); {_FIX}")
    return state
