"""StreamClock: the sample count is the truth, stamps are hints (jitter, bursts, zeros, gaps, rates)."""

from __future__ import annotations

import numpy as np
import pytest

from sst_ros.audio.clock import StreamClock
from sst_ros.errors import ConfigError
from sst_ros.timebase import NS_PER_S as NS

FS = 16000
T0 = 1_700_000_000 * NS  # a wall-clock-like ROS time


def run(clock: StreamClock, stamps, n: int, receipts=None) -> list:
    """Push one message per stamp; returns every release (in order)."""
    out = []
    for k, st in enumerate(stamps):
        out += clock.push(int(st), n, k, None if receipts is None else int(receipts[k]))
    return out


def exact(n_msgs: int, n: int, t0: int = T0, fs: int = FS) -> np.ndarray:
    return t0 + np.arange(n_msgs) * n * NS // fs


def assert_continuous(releases, n_msgs: int) -> None:
    assert [r.item for r in releases] == list(range(n_msgs))  # every message, in order
    assert not any(r.new_segment or r.bridge_frames for r in releases)


def test_exact_stamps_pass_straight_through() -> None:
    clock = StreamClock(FS)
    rel = run(clock, exact(200, 160), 160)
    assert_continuous(rel, 200)
    assert [r.sample_index for r in rel] == [160 * k for k in range(200)]
    assert clock.ns_at(160 * 199) == T0 + 199 * 10_000_000
    assert clock.held == 0 and clock.jitter_s == 0.0


@pytest.mark.parametrize("n", [160, 1600])
def test_jitter_of_30_ms_is_absorbed(n: int) -> None:
    rng = np.random.default_rng(0)
    n_msgs = 20 * FS // n
    stamps = exact(n_msgs, n) + rng.uniform(-0.03, 0.03, n_msgs) * NS
    clock = StreamClock(FS)
    rel = run(clock, stamps, n)
    assert_continuous(rel, n_msgs)
    assert abs(clock.ns_at(n * (n_msgs - 1)) - exact(n_msgs, n)[-1]) < 0.01 * NS  # inferred time within 10 ms


def test_bursty_wall_clock_stamping_of_10_ms_chunks() -> None:
    # a capturer that stamps with now() after each read; reads complete in bursts of 5 to 15
    rng = np.random.default_rng(1)
    n, n_msgs = 160, 2000
    due = exact(n_msgs, n) + n * NS // FS  # a chunk can be read once its last sample exists
    stamps, k = [], 0
    while k < n_msgs:
        burst = int(rng.integers(5, 16))
        t = due[min(k + burst - 1, n_msgs - 1)] + rng.uniform(0.0, 0.01) * NS  # all delivered at the burst end
        stamps += [t + i * 20_000 for i in range(min(burst, n_msgs - k))]
        k += burst
    clock = StreamClock(FS)
    rel = run(clock, stamps, n)
    assert_continuous(rel, n_msgs)
    # outputs follow the sample count: the inferred time is a steady, late-by-the-median-delay clock
    lag = (clock.ns_at(n * (n_msgs - 1)) - exact(n_msgs, n)[-1]) / NS
    assert 0.0 < lag < 0.2


def test_constant_offset_is_kept_and_single_wild_stamp_ignored() -> None:
    stamps = exact(100, 1600, t0=5 * NS)
    stamps[50] += 3 * NS  # one bad stamp
    clock = StreamClock(FS)
    rel = run(clock, stamps, 1600)
    assert_continuous(rel, 100)
    assert clock.ns_at(0) == 5 * NS


def test_lost_message_is_bridged_with_silence() -> None:
    stamps = np.delete(exact(60, 1600), 30)  # message 30 lost in transport
    clock = StreamClock(FS)
    rel = run(clock, stamps, 1600)
    assert [r.item for r in rel] == list(range(59))
    bridged = [r for r in rel if r.bridge_frames]
    assert len(bridged) == 1 and bridged[0].item == 30 and bridged[0].bridge_frames == 1600
    assert bridged[0].gap_s == pytest.approx(0.1) and not any(r.new_segment for r in rel)
    assert bridged[0].sample_index == 31 * 1600  # sample index = time again
    assert clock.bridged_s == pytest.approx(0.1) and clock.n_bridged == 1


def test_long_gap_and_backward_jump_start_new_segments() -> None:
    stamps = np.concatenate([exact(20, 1600), exact(20, 1600, t0=T0 + 10 * NS), exact(20, 1600, t0=T0)])
    clock = StreamClock(FS)
    rel = run(clock, stamps, 1600)
    assert [r.item for r in rel] == list(range(60))
    seg = [r for r in rel if r.new_segment]
    assert [r.item for r in seg] == [20, 40]
    assert seg[0].gap_s == pytest.approx(10 - 2.0) and seg[1].gap_s == pytest.approx(-(10 + 2.0))
    assert clock.ns_at(rel[-1].sample_index) == T0 + 19 * NS // 10  # the last segment's own time


def test_zero_stamps_use_the_time_of_receipt() -> None:
    receipts = exact(100, 1600) + 1600 * NS // FS + 3_000_000  # received after the last sample, +3 ms
    clock = StreamClock(FS)
    rel = run(clock, np.zeros(100), 1600, receipts)
    assert_continuous(rel, 100)
    assert clock.n_receipt_stamped == 100
    assert abs(clock.ns_at(0) - T0) < 0.005 * NS


def test_frozen_stamps_switch_to_receipt() -> None:
    receipts = exact(100, 1600) + 1600 * NS // FS
    stamps = np.full(100, 42 * NS)  # a driver that stamps once
    clock = StreamClock(FS)
    rel = run(clock, stamps, 1600, receipts)
    assert [r.item for r in rel] == list(range(100))
    assert clock.by_receipt and not any(r.new_segment for r in rel[10:])
    assert abs(clock.ns_at(99 * 1600) - exact(100, 1600)[-1]) < 0.005 * NS


@pytest.mark.parametrize(("declared", "sent"), [(16000, 48000), (48000, 16000), (48000, 44100)])
def test_wrong_declared_rate_is_found_within_3_s(declared: int, sent: int) -> None:
    n = sent // 100  # 10 ms messages at the true rate
    clock = StreamClock(declared)
    for k in range(400):
        clock.push(T0 + k * 10_000_000, n, k)
        if clock.last_rate is not None and clock.last_rate.mismatch:
            break
    assert clock.last_rate is not None and clock.last_rate.mismatch
    assert (k + 1) * 0.01 <= 3.0  # seconds of stamps before the decision
    assert clock.last_rate.measured_hz == pytest.approx(sent, rel=0.01)


@pytest.mark.parametrize("case", ["sporadic loss", "loss burst", "heavy jitter"])
def test_right_rate_with_lost_messages_or_jitter_is_no_mismatch(case: str) -> None:
    rng = np.random.default_rng(2)
    jitter_s = 0.03 if case == "heavy jitter" else 0.002
    stamps = exact(1000, 160) + rng.uniform(-jitter_s, jitter_s, 1000) * NS
    keep = np.ones(1000, bool)
    if case == "sporadic loss":
        keep = rng.random(1000) > 0.2  # 20 % lost in transport
    elif case == "loss burst":
        keep[300:446] = False  # 146 of 200 messages lost in one burst
    clock = StreamClock(FS)
    run(clock, stamps[keep], 160)
    assert clock.last_rate is not None and not clock.last_rate.mismatch, clock.last_rate


def test_bad_settings() -> None:
    with pytest.raises(ConfigError, match="sample rate"):
        StreamClock(0)
    with pytest.raises(ConfigError, match="gap_tolerance_s"):
        StreamClock(FS, gap_tolerance_s=-1)
    with pytest.raises(ConfigError, match="no message"):
        StreamClock(FS).ns_at(0)


def test_silence_goes_where_the_gap_is_not_before_a_wild_stamp() -> None:
    stamps = list(exact(60, 1600))
    stamps[30] += 3 * NS  # one wild stamp: message 30's audio is continuous with 29's
    del stamps[31]  # message 31 lost in transport
    rel = run(StreamClock(FS), stamps, 1600)
    assert [r.item for r in rel] == list(range(59))
    assert rel[30].sample_index == 30 * 1600 and not rel[30].bridge_frames  # in place, on the old clock
    assert rel[31].bridge_frames == 1600 and rel[31].sample_index == 32 * 1600


def test_stamps_stepping_back_restart_the_rate_measurement() -> None:
    # bursty system-clock stamps, then the system clock steps back 1 s (an NTP correction), then a
    # replay loop: no false rate alarm, and the rate history stays bounded
    rng = np.random.default_rng(3)
    n, n_msgs = 160, 1500
    due = exact(n_msgs, n) + n * NS // FS
    stamps = np.array([due[min(k + 9 - k % 10, n_msgs - 1)] for k in range(n_msgs)]) + rng.uniform(0, 0.005) * NS
    stamps[700:] -= NS
    clock = StreamClock(FS)
    for _loop in range(3):
        for k, st in enumerate(stamps):
            clock.push(int(st), n, k)
            assert clock.last_rate is None or not clock.last_rate.mismatch, (k, clock.last_rate)
    assert len(clock._rate_pts) <= 2 * 5.0 * 100 + 1


def test_header_stamps_are_trusted_again_once_they_advance() -> None:
    receipts = exact(200, 1600) + 1600 * NS // FS
    stamps = np.concatenate([np.zeros(100), exact(100, 1600, t0=T0 + 10 * NS)])  # zeros, then a fixed driver
    clock = StreamClock(FS)
    run(clock, stamps, 1600, receipts)
    assert not clock.by_receipt
    assert clock.ns_at(199 * 1600) == T0 + 10 * NS + 99 * NS // 10  # on the header's clock again
    assert clock.last_rate is None or not clock.last_rate.mismatch
