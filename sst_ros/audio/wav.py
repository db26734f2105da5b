"""Multichannel WAV reading and writing (float32 frames x channels)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from sst_ros.errors import AudioFormatError

__all__ = ["read_wav", "write_wav"]


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read a WAV file.

    Returns:
        (audio, sample_rate_hz): audio is float32 of shape (frames, channels), full scale
        [-1, 1); a mono file gives shape (frames, 1).
    """
    path = Path(path)
    if not path.is_file():
        raise AudioFormatError(f"audio file {path} does not exist")
    try:
        audio, fs = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as err:
        raise AudioFormatError(f"cannot read audio file {path}: {err}") from err
    return audio, int(fs)


def write_wav(
    path: str | os.PathLike[str], audio: np.ndarray, sample_rate_hz: int, subtype: str = "PCM_16"
) -> Path:
    """Write (frames, channels) or (frames,) float audio in [-1, 1) to a WAV file.

    ``subtype`` is a libsndfile subtype: PCM_16, PCM_24, PCM_32 or FLOAT.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[:, None]
    if audio.ndim != 2:
        raise AudioFormatError(f"write_wav expects (frames, channels) audio, got shape {audio.shape}")
    if not np.all(np.isfinite(audio)):
        raise AudioFormatError(f"refusing to write non-finite samples to {path}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, int(sample_rate_hz), subtype=subtype)
    return path
