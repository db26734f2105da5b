"""Re-blocking, per-sample times and gap detection."""

from __future__ import annotations

import numpy as np
import pytest

from sst_ros.audio.stream import GapDetector, Reblocker, sample_times_ns
from sst_ros.errors import AudioFormatError

FS = 16000
T0 = 1_700_000_000_123_456_789


def _chunks(x: np.ndarray, sizes: list[int]) -> list[tuple[np.ndarray, int]]:
    out, i = [], 0
    for n in sizes:
        out.append((x[i : i + n], T0 + round(i * 1e9 / FS)))
        i += n
    return out


@pytest.mark.parametrize("sizes", [[1600] * 10, [1, 999, 7, 3000, 0, 5000, 993, 5000], [320] * 50])
@pytest.mark.parametrize("known_rate", [True, False])
def test_reblocker_blocks_independent_of_chunking(sizes, known_rate) -> None:
    x = np.random.default_rng(0).standard_normal((sum(sizes), 3)).astype(np.float32)
    rb = Reblocker(3, 320, FS if known_rate else None)
    blocks = []
    for chunk, t in _chunks(x, sizes):
        blocks += rb.push(chunk, t)
    n_blocks = x.shape[0] // 320
    assert len(blocks) == n_blocks
    assert rb.pending_frames == x.shape[0] - n_blocks * 320
    np.testing.assert_array_equal(np.concatenate([b.samples for b in blocks]), x[: n_blocks * 320])
    expect = sample_times_ns(T0, x.shape[0], FS)[::320][:n_blocks]
    got = np.array([b.start_ns for b in blocks])
    if known_rate:
        assert np.max(np.abs(got - expect)) <= 1  # rounding of the chunk stamps
    else:  # estimated rate: exact where a block starts on a chunk, close elsewhere (after the first chunk)
        assert got[0] == T0
        assert np.max(np.abs(got[len(got) // 2 :] - expect[len(got) // 2 :])) < 1000


def test_reblocker_reset_drops_partial_block() -> None:
    rb = Reblocker(1, 4, FS)
    assert rb.push(np.ones((3, 1)), 0) == []
    rb.reset()
    blocks = rb.push(np.zeros((4, 1)), 5_000_000)
    assert len(blocks) == 1 and blocks[0].start_ns == 5_000_000
    np.testing.assert_array_equal(blocks[0].samples, 0)


def test_reblocker_rejects_wrong_channels() -> None:
    rb = Reblocker(2, 4, FS)
    with pytest.raises(AudioFormatError, match=r"\(frames, 2\)"):
        rb.push(np.zeros((4, 3)), 0)
    with pytest.raises(AudioFormatError):
        Reblocker(0, 4)
    with pytest.raises(AudioFormatError):
        Reblocker(2, 0)


def test_sample_times() -> None:
    t = sample_times_ns(10, 4, 3.0)
    assert t.dtype == np.int64
    np.testing.assert_array_equal(t, [10, 10 + 333_333_333, 10 + 666_666_667, 10 + 1_000_000_000])
    assert sample_times_ns(0, 0, FS).shape == (0,)
    with pytest.raises(AudioFormatError):
        sample_times_ns(0, 4, 0)


def test_gap_detector_continuous_gap_overlap() -> None:
    g = GapDetector(FS, tolerance_s=0.002)
    hop_ns = 100_000_000  # 1600 frames
    assert g.check(T0, 1600) is None  # first message
    assert g.check(T0 + hop_ns, 1600) is None
    assert g.check(T0 + 2 * hop_ns + 1_000_000, 1600) is None  # 1 ms jitter: within tolerance
    gap = g.check(T0 + 4 * hop_ns + 1_000_000, 1600)  # one message missing
    assert gap == pytest.approx(0.1, abs=1e-9)
    back = g.check(T0 + 4 * hop_ns, 1600)  # stamp goes backwards (overlap)
    assert back == pytest.approx(-0.101, abs=1e-9)
    g.reset()
    assert g.check(0, 1600) is None


def test_gap_detector_validates() -> None:
    with pytest.raises(AudioFormatError):
        GapDetector(0)
    with pytest.raises(AudioFormatError):
        GapDetector(FS, -1.0)
