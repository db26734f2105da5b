"""Offline and streaming resampling: lengths, spectra, chunk invariance, delay."""

from __future__ import annotations

import numpy as np
import pytest

from sst_ros.audio.resample import StreamingResampler, resample, resample_part, resampled_length
from sst_ros.errors import AudioFormatError

RATES = [(48000, 16000), (44100, 16000), (16000, 48000), (22050, 16000), (16000, 16000)]


def _tone(fs: int, f_hz: float, n_s: float = 0.5, ch: int = 2) -> np.ndarray:
    t = np.arange(int(fs * n_s)) / fs
    return np.stack([np.sin(2 * np.pi * f_hz * t + k) for k in range(ch)], axis=1).astype(np.float32)


@pytest.mark.parametrize(("fs_in", "fs_out"), RATES)
def test_offline_length_and_tone(fs_in, fs_out) -> None:
    x = _tone(fs_in, 1000.0)
    y = resample(x, fs_in, fs_out)
    assert y.dtype == np.float32 and y.shape == (int(np.ceil(x.shape[0] * fs_out / fs_in)), 2)
    spec = np.abs(np.fft.rfft(y[:, 0] * np.hanning(y.shape[0])))
    peak_hz = np.fft.rfftfreq(y.shape[0], 1 / fs_out)[np.argmax(spec)]
    assert peak_hz == pytest.approx(1000.0, abs=fs_out / y.shape[0] * 1.01)
    mid = slice(y.shape[0] // 4, 3 * y.shape[0] // 4)
    assert np.max(np.abs(y[mid, 0])) == pytest.approx(1.0, abs=0.01)


def test_offline_removes_content_above_new_nyquist() -> None:
    y = resample(_tone(48000, 12000.0), 48000, 16000)  # 12 kHz is above 8 kHz
    assert np.max(np.abs(y[200:-200])) < 0.01


@pytest.mark.parametrize(("fs_in", "fs_out"), RATES)
def test_streaming_is_chunk_invariant(fs_in, fs_out) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((fs_in // 5, 2)).astype(np.float32)
    r = StreamingResampler(fs_in, fs_out, 2)
    whole = r.process(x)
    assert whole.shape[0] == int(np.ceil(x.shape[0] * fs_out / fs_in))
    for sizes in ([1] * 200 + [x.shape[0]], list(rng.integers(0, 700, size=400))):
        r.reset()
        outs, i = [], 0
        for n in sizes:
            outs.append(r.process(x[i : i + int(n)]))
            i += int(n)
            if i >= x.shape[0]:
                break
        outs.append(r.process(x[i:]))
        np.testing.assert_array_equal(np.concatenate(outs), whole)


@pytest.mark.parametrize(("fs_in", "fs_out"), [(48000, 16000), (44100, 16000), (16000, 48000)])
def test_streaming_matches_offline_after_delay(fs_in, fs_out) -> None:
    x = _tone(fs_in, 440.0, n_s=1.0, ch=1)
    r = StreamingResampler(fs_in, fs_out, 1)
    y = r.process(x)[:, 0]
    t = np.arange(y.shape[0]) / fs_out - r.delay_s
    ref = np.sin(2 * np.pi * 440.0 * t)
    steady = slice(fs_out // 10, y.shape[0])
    np.testing.assert_allclose(y[steady], ref[steady], atol=2e-3)
    assert 0 < r.delay_s < 0.005


def test_streaming_same_rate_is_identity() -> None:
    x = np.random.default_rng(0).standard_normal((100, 3)).astype(np.float32)
    r = StreamingResampler(16000, 16000, 3)
    np.testing.assert_array_equal(r.process(x), x)
    assert r.delay_s == 0.0


@pytest.mark.parametrize(("fs_in", "fs_out"), RATES + [(8000, 16000), (96000, 16000)])
def test_part_is_bit_identical_to_the_same_span_of_the_whole(fs_in, fs_out) -> None:
    """Reading only a span (training crops of long files) changes no sample, even at the span's edges."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((fs_in // 3 + 7, 2)).astype(np.float32)
    whole = resample(x, fs_in, fs_out)
    assert resampled_length(x.shape[0], fs_in, fs_out) == whole.shape[0]
    reads: list[tuple[int, int]] = []

    def read(a: int, b: int) -> np.ndarray:
        reads.append((a, b))
        return x[a:b]

    spans = [(0, 1), (0, 500), (whole.shape[0] - 300, whole.shape[0]), (whole.shape[0] - 10, whole.shape[0] + 50)]
    spans += [tuple(sorted(rng.integers(0, whole.shape[0], 2))) for _ in range(20)]
    for start, stop in spans:
        np.testing.assert_array_equal(resample_part(read, x.shape[0], fs_in, fs_out, start, stop), whole[start:stop])
    a, b = reads[1]  # 500 samples at the start: a small part of the input is read
    assert a == 0 and b < x.shape[0] // 4


def test_errors() -> None:
    with pytest.raises(AudioFormatError, match="positive integers"):
        resample(np.zeros((10, 1)), 0, 16000)
    with pytest.raises(AudioFormatError, match="positive integers"):
        StreamingResampler(44100.5, 16000, 1)
    r = StreamingResampler(48000, 16000, 2)
    with pytest.raises(AudioFormatError, match="2 channels"):
        r.process(np.zeros((10, 3)))


def test_input_precision_mode_equals_scipys_own_design_bit_for_bit() -> None:
    """The simulator's speech pool resamples float32 corpora in float32 (as it did with scipy's
    resample_poly directly), so simulated scenes do not change with the shared resampler."""
    from scipy.signal import resample_poly

    x = (np.random.default_rng(5).standard_normal(7001) * 0.3).astype(np.float32)
    for fs_in, up, down in ((44100, 160, 441), (8000, 2, 1), (48000, 1, 3)):
        got = resample(x, fs_in, 16000, in_input_precision=True)[:, 0]
        np.testing.assert_array_equal(got, resample_poly(x, up, down).astype(np.float32))
    assert not np.array_equal(resample(x, 44100, 16000)[:, 0], resample_poly(x, 160, 441))  # float64 by default
