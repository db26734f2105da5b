"""Multichannel WAV reading and writing (float32 frames x channels)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

from sst_ros.errors import AudioFormatError

__all__ = ["WavInfo", "read_wav", "wav_info", "write_wav"]


class WavInfo(NamedTuple):
    """Header of an audio file.

    Attributes:
        n_frames: length in samples per channel.
        sample_rate_hz: sample rate, Hz.
        n_channels: channels per frame.
    """

    n_frames: int
    sample_rate_hz: int
    n_channels: int


def _existing(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.is_file():
        raise AudioFormatError(f"audio file {p} does not exist")
    return p


def wav_info(path: str | os.PathLike[str]) -> WavInfo:
    """Read only the header of an audio file (no samples).

    Raises:
        AudioFormatError: missing or unreadable file (the message names it).
    """
    p = _existing(path)
    try:
        info = sf.info(str(p))
    except (RuntimeError, sf.LibsndfileError) as err:
        raise AudioFormatError(f"cannot read audio file {p}: {err}") from err
    return WavInfo(int(info.frames), int(info.samplerate), int(info.channels))


def read_wav(path: str | os.PathLike[str], start: int = 0, stop: int | None = None) -> tuple[np.ndarray, int]:
    """Read a WAV file, or only its samples ``start:stop`` (nothing else is read from disk).

    Args:
        path: the file.
        start: first sample (frame) to read.
        stop: one past the last sample to read, or None for the end of the file.
    Returns:
        (audio, sample_rate_hz): audio is float32 of shape (frames, channels), full scale
        [-1, 1); a mono file gives shape (frames, 1). A span past the end is cut short.
    """
    p = _existing(path)
    try:
        audio, fs = sf.read(str(p), start=int(start), stop=stop, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as err:
        raise AudioFormatError(f"cannot read audio file {p}: {err}") from err
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
