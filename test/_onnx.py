"""Helpers of the ONNX tests: the shipped model's export (made once per session), a speech clip,
and Python packages hidden from a subprocess (a stand-in that records every import attempt and
fails it as a missing package does)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

FS = 16000


def default_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped default model exported with ``export_onnx`` (once per test session, shared by
    the ONNX test modules through the session's base temporary folder)."""
    from sst_ros.model.onnx_export import export_onnx

    path = tmp_path_factory.getbasetemp() / "onnx_default" / "default.onnx"
    if not path.is_file():
        export_onnx(None, path)
    return path


def speech_wave(azimuth_deg: float, seconds: float, seed: int = 0) -> np.ndarray:
    """(N, 4) float32 speech from ``azimuth_deg`` at the ReSpeaker USB v2 (the default model's array),
    with a sensor noise floor as a real array has (noise-free plane waves bias the models)."""
    from sst_ros.geometry import load_array
    from sst_ros.sim.plane_wave import plane_wave, speech_signal, with_sensor_noise

    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    wave = plane_wave(load_array("respeaker_usb_v2"), azimuth_deg, n, rng, speech_signal(n, rng))
    return with_sensor_noise(wave, rng)


def hide_packages(root: Path, names: tuple[str, ...], attempts: Path) -> Path:
    """A folder that, first on ``PYTHONPATH``, makes ``names`` missing: importing one appends its name
    to ``attempts`` and raises ``ModuleNotFoundError`` as for an uninstalled package.

    Returns:
        ``root``.
    """
    for name in names:
        pkg = root / name
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / "__init__.py").write_text(
            f"with open({str(attempts)!r}, 'a') as fh:\n"
            f"    fh.write({name!r} + '\\n')\n"
            f"raise ModuleNotFoundError(\"No module named '{name}' (hidden by the test)\", name={name!r})\n"
        )
    return root


def env_with_path_first(env: dict[str, str], first: Path) -> dict[str, str]:
    """``env`` with ``first`` at the front of ``PYTHONPATH``."""
    out = dict(env)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(first), env.get("PYTHONPATH", "")) if p)
    return out


def attempted(attempts: Path) -> list[str]:
    """Names of the hidden packages that something tried to import."""
    return attempts.read_text().split() if attempts.exists() else []
