"""Where the network runs: ``--device auto|cpu|cuda[:N]`` of ``sst train / adapt / evaluate / predict``.

``auto`` takes the first CUDA device when torch sees one and the CPU otherwise (one log line
says so); ``cuda`` or ``cuda:N`` on a machine where torch sees no such device is a
:class:`~sst_ros.errors.ConfigError` that names what torch sees and the option that runs here.
Checkpoints are always written with CPU tensors (:func:`~sst_ros.model.checkpoint.save_checkpoint`),
so a model trained on a GPU loads on a CPU-only robot unchanged.

torch is imported when a device is resolved, not with this module: ``--device`` is parsed by
commands that also run ONNX exports without torch.
"""

from __future__ import annotations

import argparse
import logging
import re
from typing import Any

from sst_ros.errors import ConfigError

__all__ = ["AMP_MODES", "DEVICE_HELP", "add_streaming_run_options", "check_device_spec", "resolve_device"]

log = logging.getLogger(__name__)

DEVICE_HELP = "where the network runs: auto (CUDA when torch sees a GPU, else the CPU), cpu, cuda or cuda:N"
_SPEC = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
AMP_MODES = ("auto", "on", "off")
"""Values of ``--amp`` (mixed precision: on CUDA only, always, never; :mod:`sst_ros.train.precision`)."""


def add_streaming_run_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads``, ``--device`` and ``--no-direction-prior``: how ``sst predict`` and
    ``sst evaluate`` run a model through the streaming path (the same options, the same defaults)."""
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for the model (default: its backend's)")
    parser.add_argument(
        "--device", default="cpu",
        help=DEVICE_HELP + " (default cpu: the streaming network is small and sequential; a .pt model runs on CUDA)",
    )  # fmt: skip
    parser.add_argument(
        "--no-direction-prior", action="store_true",
        help="ignore the model's direction prior (learned by sst adapt), if it has one",
    )  # fmt: skip


def check_device_spec(spec: str) -> str:
    """``spec`` lower-cased when it is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        ConfigError: anything else (the message lists the accepted forms).
    """
    s = str(spec).strip().lower()
    if not _SPEC.match(s):
        raise ConfigError(f"--device {spec!r}: not a device; use auto, cpu, cuda or cuda:N (N = the GPU's index)")
    return s


def resolve_device(spec: str = "auto") -> Any:
    """The ``torch.device`` that ``spec`` names on this machine.

    Args:
        spec: ``auto`` (CUDA device 0 when torch sees one, else the CPU, logged), ``cpu``,
            ``cuda`` (the current CUDA device) or ``cuda:N``.
    Returns:
        a ``torch.device``.
    Raises:
        ConfigError: a malformed ``spec``; ``cuda`` without a CUDA device visible to torch (a
            CPU-only torch build, no driver, ``CUDA_VISIBLE_DEVICES`` empty) or an index past the
            devices there are. The message says what torch sees and to use ``--device cpu``.
    """
    import torch

    s = check_device_spec(spec)
    if s == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if s == "auto":
        if available:
            dev = torch.device("cuda", torch.cuda.current_device())
            log.info("--device auto: running on %s (%s)", dev, torch.cuda.get_device_name(dev))
            return dev
        log.info("--device auto: %s; running on the CPU", _no_cuda_reason(torch))
        return torch.device("cpu")
    if not available:
        raise ConfigError(f"--device {s}: {_no_cuda_reason(torch)}; run with --device cpu (or auto)")
    dev = torch.device(s)
    n = torch.cuda.device_count()
    if dev.index is not None and dev.index >= n:
        raise ConfigError(
            f"--device {s}: torch sees {n} CUDA device{'s' if n != 1 else ''} (indices 0 to {n - 1}); "
            "pick one of them, or --device cuda for the current one"
        )
    return dev


def _no_cuda_reason(torch: Any) -> str:
    """Why torch sees no CUDA device, in words."""
    if torch.version.cuda is None:
        return f"this torch ({torch.__version__}) is a CPU-only build, so it sees no CUDA device"
    return (
        f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device (no GPU, no driver, or "
        "CUDA_VISIBLE_DEVICES hides them)"
    )
