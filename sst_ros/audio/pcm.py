"""Interleaved PCM payloads <-> float32 sample arrays.

The payload of ``audio_common_msgs/AudioData`` is interleaved (frame-major: ch0, ch1, ...,
chN-1, ch0, ...) little-endian PCM. Channel count and sample format travel separately in
``AudioInfo`` (``sample_format`` strings below).

Scaling: integer formats map to float full scale [-1, 1) by dividing by 2**(bits-1)
(S16LE: 32768, S24LE: 8388608, S32LE: 2147483648); ``F32LE`` is passed through unscaled.
Round trips bytes -> :func:`decode_pcm` -> :func:`encode_pcm` -> bytes are bit-exact for
S16LE, S24LE and F32LE. float32 holds 24 significant bits, so for S32LE they are bit-exact
for 24-bit data carried in 32-bit words (the usual case for 24-bit ADCs) or when decoding
with ``dtype=np.float64``.
"""

from __future__ import annotations

import numpy as np

from sst_ros.errors import AudioFormatError

__all__ = ["SAMPLE_FORMATS", "bytes_per_sample", "decode_pcm", "encode_pcm", "normalize_format"]

SAMPLE_FORMATS: tuple[str, ...] = ("S16LE", "S24LE", "S32LE", "F32LE")

_BYTES = {"S16LE": 2, "S24LE": 3, "S32LE": 4, "F32LE": 4}
_INT_BITS = {"S16LE": 16, "S24LE": 24, "S32LE": 32}


def normalize_format(sample_format: str) -> str:
    """Return the canonical (upper-case) name of ``sample_format``.

    Raises:
        AudioFormatError: the format is not one of :data:`SAMPLE_FORMATS`.
    """
    if not isinstance(sample_format, str):
        raise AudioFormatError(f"sample format must be a string such as 'S16LE', got {type(sample_format).__name__}")
    name = sample_format.strip().upper()
    if name not in _BYTES:
        raise AudioFormatError(
            f"unknown sample format {sample_format!r}; supported: {', '.join(SAMPLE_FORMATS)} "
            "(set AudioInfo.sample_format / the sample_format parameter to one of them)"
        )
    return name


def bytes_per_sample(sample_format: str) -> int:
    """Bytes of one sample of one channel (S16LE: 2, S24LE: 3, S32LE/F32LE: 4)."""
    return _BYTES[normalize_format(sample_format)]


def _check_channels(n_channels: int) -> int:
    try:
        n = int(n_channels)
    except (TypeError, ValueError) as err:
        raise AudioFormatError(f"channel count must be an integer, got {n_channels!r}") from err
    if n < 1 or n != n_channels:
        raise AudioFormatError(f"channel count must be a positive integer, got {n_channels!r}")
    return n


def decode_pcm(data: bytes | memoryview, n_channels: int, sample_format: str, dtype: type = np.float32) -> np.ndarray:
    """Decode an interleaved PCM payload.

    Args:
        data: payload bytes (``bytes``, ``bytearray``, ``memoryview``, ``array.array('B')`` or a
            sequence of ints 0..255, as rclpy gives ``uint8[]``).
        n_channels: channels per frame.
        sample_format: one of :data:`SAMPLE_FORMATS`.
        dtype: float dtype of the result (float32 by default; float64 keeps S32LE exact).

    Returns:
        Array of shape (frames, n_channels); integer formats scaled to [-1, 1). An empty
        payload gives shape (0, n_channels).

    Raises:
        AudioFormatError: unknown format, bad channel count, or a payload length that is not
            a multiple of ``n_channels * bytes_per_sample``.
    """
    fmt = normalize_format(sample_format)
    n_ch = _check_channels(n_channels)
    if isinstance(data, (list, tuple)):
        buf = np.asarray(data, dtype=np.uint8)
    else:
        try:
            buf = np.frombuffer(data, dtype=np.uint8)
        except (TypeError, ValueError) as err:
            raise AudioFormatError(f"audio payload must be bytes-like, got {type(data).__name__}") from err
    width = _BYTES[fmt]
    frame_bytes = width * n_ch
    if buf.size % frame_bytes:
        raise AudioFormatError(
            f"audio payload of {buf.size} bytes is not a multiple of {n_ch} channels x {width} bytes "
            f"({fmt}) = {frame_bytes} bytes per frame; check that AudioInfo channels and sample_format "
            "match what the publisher sends"
        )
    out: np.ndarray
    if fmt == "F32LE":
        out = buf.view("<f4").astype(dtype)
    elif fmt == "S24LE":
        b = buf.reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = (v << 8) >> 8  # sign-extend 24 -> 32 bits
        out = v.astype(dtype) / dtype(2.0**23)
    else:
        bits = _INT_BITS[fmt]
        ints = buf.view("<i2" if fmt == "S16LE" else "<i4")
        out = (ints.astype(np.float64) / 2.0 ** (bits - 1)).astype(dtype)
    return np.ascontiguousarray(out.reshape(-1, n_ch))


def encode_pcm(samples: np.ndarray, sample_format: str) -> bytes:
    """Encode samples as an interleaved little-endian PCM payload.

    Args:
        samples: (frames, channels) float array (a 1-D array is one channel); integer formats
            expect full scale [-1, 1), values are rounded to the nearest step and clipped.
        sample_format: one of :data:`SAMPLE_FORMATS`.

    Returns:
        ``frames * channels * bytes_per_sample`` bytes.

    Raises:
        AudioFormatError: unknown format, bad shape, or non-finite samples for an integer format.
    """
    fmt = normalize_format(sample_format)
    x = np.asarray(samples)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise AudioFormatError(f"encode_pcm expects (frames, channels) samples, got shape {x.shape}")
    if fmt == "F32LE":
        return np.ascontiguousarray(x, dtype="<f4").tobytes()
    x = x.astype(np.float64, copy=False)
    if not np.all(np.isfinite(x)):
        raise AudioFormatError(f"cannot encode NaN or infinite samples as {fmt}; clean the audio first")
    bits = _INT_BITS[fmt]
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    ints = np.clip(np.rint(x * 2.0 ** (bits - 1)), lo, hi)
    if fmt == "S16LE":
        return np.ascontiguousarray(ints, dtype="<i2").tobytes()
    i32 = np.ascontiguousarray(ints, dtype="<i4")
    if fmt == "S32LE":
        return i32.tobytes()
    return i32.reshape(-1).view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
