"""Multichannel WAV reading and writing (float32 frames x channels).

Damaged files are named, not silently used: an empty (0-byte) file is an
:class:`AudioFormatError`; :func:`wav_truncation` tells whether a WAV's data chunk is shorter
than its header declares (libsndfile then reads only the frames present).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

from sst_ros.errors import AudioFormatError

__all__ = ["WavInfo", "WavTruncation", "read_wav", "wav_info", "wav_truncation", "write_wav"]


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


class WavTruncation(NamedTuple):
    """A WAV file whose data chunk ends before the length its header declares.

    Attributes:
        declared_frames: frames (samples per channel) the header declares.
        present_frames: whole frames actually in the file.
        sample_rate_hz: sample rate, Hz.
    """

    declared_frames: int
    present_frames: int
    sample_rate_hz: int

    @property
    def missing_frames(self) -> int:
        """Frames the header declares but the file lacks."""
        return self.declared_frames - self.present_frames

    def message(self, path: str | os.PathLike[str]) -> str:
        """A warning naming the file, what is missing, and what happens next."""
        fs = max(self.sample_rate_hz, 1)
        return (
            f"WAV file {path} is truncated: its header declares {self.declared_frames / fs:.2f} s "
            f"({self.declared_frames} frames) but only {self.present_frames / fs:.2f} s ({self.present_frames} frames) "
            f"are present, {self.missing_frames / fs:.2f} s ({self.missing_frames} frames) missing; processing what "
            "is there (re-copy or re-record the file for the rest)"
        )


_RIFF_UNKNOWN_SIZE = 0xFFFFFFFF  # streaming writers and RF64: "size in the ds64 chunk / until the end"
_MAX_CHUNKS = 1000  # chunks walked before the data chunk, at most (a guard against garbage headers)


def wav_truncation(path: str | os.PathLike[str]) -> WavTruncation | None:
    """Whether a RIFF/RF64 WAV file's data chunk is shorter than its header declares.

    Only the header is read (``fmt`` for the frame size, ``ds64`` for RF64, the ``data`` chunk's
    declared size), and compared with the file size.

    Returns:
        a :class:`WavTruncation` when whole frames are missing; None for a complete file, a file
        that is not a RIFF/RF64 WAV (e.g. FLAC), or a header that does not declare a length
        (size 0 or 0xFFFFFFFF, as streaming writers leave it).
    Raises:
        AudioFormatError: missing or empty file (see :func:`read_wav`).
    """
    p = _existing(path)
    size = p.stat().st_size
    with p.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return None
        ds64_data: int | None = None
        block_align, fs = 0, 0
        pos = 12
        for _ in range(_MAX_CHUNKS):
            fh.seek(pos)
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            cid, csize = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            body = pos + 8
            if cid == b"fmt ":
                fmt = fh.read(16)
                if len(fmt) < 16:
                    return None
                fs, block_align = struct.unpack("<I", fmt[4:8])[0], struct.unpack("<H", fmt[12:14])[0]
            elif cid == b"ds64":
                ds = fh.read(16)
                if len(ds) < 16:
                    return None
                ds64_data = struct.unpack("<Q", ds[8:16])[0]
            elif cid == b"data":
                declared = ds64_data if (csize == _RIFF_UNKNOWN_SIZE and ds64_data is not None) else csize
                if block_align <= 0 or declared in (0, _RIFF_UNKNOWN_SIZE):
                    return None
                declared_frames, present_frames = declared // block_align, max(0, size - body) // block_align
                if present_frames >= declared_frames:
                    return None
                return WavTruncation(int(declared_frames), int(present_frames), int(fs))
            pos = body + csize + (csize & 1)  # chunks are padded to an even length
    return None


def _existing(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.is_file():
        raise AudioFormatError(f"audio file {p} does not exist")
    if p.stat().st_size == 0:
        raise AudioFormatError(f"audio file {p} is empty (0 bytes); re-copy or re-record it")
    return p


def wav_info(path: str | os.PathLike[str]) -> WavInfo:
    """Read only the header of an audio file (no samples).

    Raises:
        AudioFormatError: missing, empty (0 bytes) or unreadable file (the message names it).
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
        [-1, 1); a mono file gives shape (frames, 1). A span past the end is cut short, and so
        is a truncated file (check :func:`wav_truncation` to warn about it).
    Raises:
        AudioFormatError: missing, empty (0 bytes) or unreadable file (the message names it).
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
