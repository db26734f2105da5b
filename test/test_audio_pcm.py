"""PCM payload encoding/decoding: exact round trips, scaling, byte layout, errors."""

from __future__ import annotations

import array

import numpy as np
import pytest

from sst_ros.audio.pcm import SAMPLE_FORMATS, bytes_per_sample, decode_pcm, encode_pcm
from sst_ros.errors import AudioFormatError


@pytest.mark.parametrize(
    ("fmt", "dtype", "lo", "hi"), [("S16LE", "<i2", -(2**15), 2**15), ("S32LE", "<i4", -(2**31), 2**31)]
)
def test_integer_bytes_round_trip_bit_exact(rng, fmt, dtype, lo, hi) -> None:
    ints = rng.integers(lo, hi, size=(257, 3), dtype=np.int64)
    ints[0] = [lo, hi - 1, 0]
    if fmt == "S32LE":  # float32 keeps 24 significant bits: 24-bit data in 32-bit words
        ints = (ints // 256) * 256
    data = ints.astype(dtype).tobytes()
    x = decode_pcm(data, 3, fmt)
    assert x.dtype == np.float32 and x.shape == (257, 3)
    assert encode_pcm(x, fmt) == data


def test_s24_round_trip_and_sign_extension(rng) -> None:
    ints = rng.integers(-(2**23), 2**23, size=(100, 2))
    ints[0] = [-(2**23), 2**23 - 1]
    data = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints.reshape(-1))
    x = decode_pcm(data, 2, "S24LE")
    np.testing.assert_array_equal(x, (ints / 2.0**23).astype(np.float32))
    assert encode_pcm(x, "S24LE") == data
    assert decode_pcm(b"\xff\xff\xff", 1, "S24LE")[0, 0] == -(2.0**-23)


def test_s32_exact_with_float64(rng) -> None:
    ints = rng.integers(-(2**31), 2**31, size=(64, 2)).astype("<i4")
    x = decode_pcm(ints.tobytes(), 2, "S32LE", dtype=np.float64)
    assert encode_pcm(x, "S32LE") == ints.tobytes()


def test_f32_round_trip_exact(rng) -> None:
    x = rng.standard_normal((50, 4)).astype(np.float32)  # F32LE is not scaled nor clipped
    data = encode_pcm(x, "F32LE")
    assert len(data) == 50 * 4 * 4
    np.testing.assert_array_equal(decode_pcm(data, 4, "F32LE"), x)


def test_interleaving_and_scaling() -> None:
    # frame-major: ch0, ch1, ch0, ch1
    data = np.array([0, 16384, -32768, 32767], dtype="<i2").tobytes()
    x = decode_pcm(data, 2, "S16LE")
    np.testing.assert_array_equal(x, [[0.0, 0.5], [-1.0, 32767 / 32768]])


@pytest.mark.parametrize("fmt", ["S16LE", "S24LE", "S32LE"])
def test_encode_clips_and_rounds(fmt) -> None:
    bits = {"S16LE": 16, "S24LE": 24, "S32LE": 32}[fmt]
    x = np.array([[2.0], [-3.0], [1.0], [0.4 / 2 ** (bits - 1)], [0.6 / 2 ** (bits - 1)]])
    y = decode_pcm(encode_pcm(x, fmt), 1, fmt, dtype=np.float64)[:, 0]
    step = 2.0 ** -(bits - 1)
    np.testing.assert_allclose(y, [1 - step, -1.0, 1 - step, 0.0, step], rtol=0, atol=0)


def test_rejects_nan_for_integer_format() -> None:
    with pytest.raises(AudioFormatError, match="NaN"):
        encode_pcm(np.array([[np.nan]]), "S16LE")


@pytest.mark.parametrize("fmt", SAMPLE_FORMATS)
def test_payload_types_accepted(fmt) -> None:
    data = encode_pcm(np.full((4, 2), 0.25), fmt)
    for payload in (data, bytearray(data), memoryview(data), array.array("B", data), list(data)):
        np.testing.assert_array_equal(decode_pcm(payload, 2, fmt), np.full((4, 2), 0.25, dtype=np.float32))


def test_empty_payload_gives_no_frames() -> None:
    assert decode_pcm(b"", 4, "S16LE").shape == (0, 4)


def test_bytes_per_sample_and_case() -> None:
    assert [bytes_per_sample(f) for f in SAMPLE_FORMATS] == [2, 3, 4, 4]
    assert bytes_per_sample("s16le") == 2


@pytest.mark.parametrize(
    ("n_bytes", "ch", "fmt"), [(7, 1, "S16LE"), (6, 4, "S16LE"), (10, 2, "S24LE"), (12, 4, "F32LE")]
)
def test_bad_length_names_sizes_and_fix(n_bytes, ch, fmt) -> None:
    with pytest.raises(AudioFormatError) as err:
        decode_pcm(bytes(n_bytes), ch, fmt)
    text = str(err.value)
    assert f"{n_bytes} bytes" in text and f"{ch} channels" in text and "AudioInfo" in text


@pytest.mark.parametrize("fmt", ["S8", "U16LE", "mp3", "", "S16BE"])
def test_unknown_format_lists_supported(fmt) -> None:
    with pytest.raises(AudioFormatError, match="S16LE, S24LE, S32LE, F32LE"):
        decode_pcm(b"\x00\x00", 1, fmt)
    with pytest.raises(AudioFormatError, match="unknown sample format"):
        encode_pcm(np.zeros((1, 1)), fmt)


@pytest.mark.parametrize("ch", [0, -1, 1.5])
def test_bad_channel_count(ch) -> None:
    with pytest.raises(AudioFormatError, match="channel count"):
        decode_pcm(b"\x00\x00", ch, "S16LE")


def test_bad_shape() -> None:
    with pytest.raises(AudioFormatError, match="frames, channels"):
        encode_pcm(np.zeros((2, 2, 2)), "S16LE")
