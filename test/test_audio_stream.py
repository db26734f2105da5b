"""Gap detection in stamped audio streams."""

from __future__ import annotations

import pytest

from sst_ros.audio.stream import GapDetector
from sst_ros.errors import AudioFormatError

FS = 16000
T0 = 1_700_000_000_123_456_789


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
