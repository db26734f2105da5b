"""TrackingPipeline (the tracker node's work without ROS): formats, checks, stamps, resampling."""

from __future__ import annotations

import numpy as np
import pytest

from sst_ros.audio.pcm import encode_pcm
from sst_ros.errors import AudioFormatError, ModelError
from sst_ros.geometry import load_array
from sst_ros.timebase import NS_PER_S as NS
from sst_ros.tracking import PeakConfig, TrackerConfig
from sst_ros.tracking.pipeline import AudioFormat, PipelineConfig, TrackingPipeline


@pytest.fixture(scope="module")
def loaded(tiny_model):
    from sst_ros.model.checkpoint import load_checkpoint

    return load_checkpoint(tiny_model)


def permissive() -> PipelineConfig:
    return PipelineConfig(peaks=PeakConfig(threshold=0.0), tracker=TrackerConfig(birth_hits=1, birth_window=1),
                          activity_threshold=0.0)  # fmt: skip


def noise(seconds: float, fs: int = 16000, channels: int = 4, seed: int = 0) -> np.ndarray:
    return (0.05 * np.random.default_rng(seed).standard_normal((int(seconds * fs), channels))).astype(np.float32)


def test_frames_stamped_with_audio_time_any_chunking(loaded) -> None:
    pl = TrackingPipeline(loaded, config=permissive())
    pl.set_format(AudioFormat(4, 16000, "S16LE"))
    x = noise(1.0)
    t0 = 7 * NS
    stamps = []
    for i in range(0, 16000, 1000):  # 62.5 ms messages: frames complete inside messages
        rep = pl.process_bytes(encode_pcm(x[i : i + 1000], "S16LE"), t0 + i * NS // 16000)
        stamps += [f.stamp_ns for f in rep.frames]
        assert rep.dropped is None and rep.gap_s is None
    assert stamps == [t0 + k * NS // 10 for k in range(10)]


def test_other_rate_is_resampled_and_stamps_account_for_the_delay(loaded) -> None:
    pl = TrackingPipeline(loaded, config=permissive())
    pl.set_format(AudioFormat(4, 48000, "F32LE"))
    x = noise(1.0, fs=48000)
    frames = []
    for i in range(0, 48000, 4800):
        frames += pl.process_bytes(encode_pcm(x[i : i + 4800], "F32LE"), 3 * NS + i * NS // 48000).frames
    assert len(frames) in (9, 10)  # the resampler's delay holds back a few samples
    delay_ns = frames[0].stamp_ns - 3 * NS
    assert -5_000_000 < delay_ns <= 0  # shifted by the resampler's (small) delay, never later
    assert all(b.stamp_ns - a.stamp_ns == NS // 10 for a, b in zip(frames, frames[1:], strict=False))


def test_channel_count_and_format_refused_with_the_fix(loaded) -> None:
    pl = TrackingPipeline(loaded)
    with pytest.raises(AudioFormatError, match="6 channels.*respeaker_usb_v2_6ch"):
        pl.set_format(AudioFormat(6, 16000, "S16LE"))
    assert pl.audio_format is None
    assert pl.process_bytes(b"\0" * 3200, 0).dropped == "format"
    with pytest.raises(AudioFormatError, match="unknown sample format"):
        pl.set_format(AudioFormat(4, 16000, "MP3"))
    # the 6-channel device stream is fine with the matching array config
    pl6 = TrackingPipeline(loaded, array=load_array("respeaker_usb_v2_6ch"), config=permissive())
    pl6.set_format(AudioFormat(6, 16000, "S16LE"))
    assert len(pl6.process_samples(noise(0.1, channels=6), 0).frames) == 1


def test_geometry_mismatch_is_a_model_error(loaded) -> None:
    other = load_array({"name": "pair", "microphones_m": [[0.0, 0.05, 0.0], [0.0, -0.05, 0.0]]})
    with pytest.raises(ModelError, match="pair"):
        TrackingPipeline(loaded, array=other)


def test_nan_zeroed_clipping_measured(loaded) -> None:
    pl = TrackingPipeline(loaded, config=permissive())
    pl.set_format(AudioFormat(4, 16000, "F32LE"))
    x = noise(0.1)
    x[:10, 0] = np.nan
    x[10, 1] = np.inf
    x[20:40, 2] = 1.0
    rep = pl.process_samples(x, 10 * NS)
    assert rep.n_nonfinite == 11 and rep.clipped_fraction == pytest.approx(20 / x.size)
    assert all(np.isfinite(t.azimuth_deg) for f in rep.frames for t in f.tracks)
    assert pl.process_samples(np.zeros((0, 4), np.float32), 10 * NS).dropped == "empty"


def test_long_gap_resets_short_gap_is_bridged_jitter_is_absorbed(loaded) -> None:
    pl = TrackingPipeline(loaded, config=permissive())
    pl.set_format(AudioFormat(4, 16000, "F32LE"))
    t, stamps, reports = 10 * NS, [], []

    def send(k: int, stamp: int) -> None:
        rep = pl.process_samples(noise(0.1, seed=k), stamp)
        reports.append(rep)
        stamps.extend(f.stamp_ns for f in rep.frames)

    for k in range(20):  # +-5 ms jitter on 100 ms messages: nothing happens
        send(k, t + k * NS // 10 + (5_000_000 if k % 2 else -5_000_000))
    assert not any(r.gap_s or r.reset for r in reports)
    # frames on the sample clock (100 ms apart), within the jitter of the stamps
    assert np.all(np.abs(np.array(stamps) - [t + k * NS // 10 for k in range(20)]) <= 5_000_000)
    assert np.all(np.diff(stamps) > 0)
    for k in range(21, 30):  # message 20 lost in transport: bridged with 100 ms of silence
        send(k, t + k * NS // 10)
    bridged = [r for r in reports if r.bridged_s]
    assert len(bridged) == 1 and bridged[0].bridged_s == pytest.approx(0.1) and not bridged[0].reset
    assert abs(stamps[-1] - (t + 29 * NS // 10)) <= 5_000_000 and len(stamps) == 30  # + the bridged frame
    reports.clear()
    for k in range(30, 40):  # the stream resumes 5 s later: a new segment
        send(k, t + (k + 50) * NS // 10)
    resets = [r for r in reports if r.reset]
    assert len(resets) == 1 and resets[0].gap_s == pytest.approx(5.0, abs=0.005)
    assert abs(stamps[-1] - (t + 89 * NS // 10)) <= 5_000_000


def test_wrong_declared_rate_is_refused_naming_both_rates(loaded) -> None:
    pl = TrackingPipeline(loaded, config=permissive())
    pl.set_format(AudioFormat(4, 16000, "F32LE"))
    x = noise(0.01, fs=48000)  # 10 ms at 48 kHz, declared as 16 kHz
    for k in range(300):
        rep = pl.process_samples(x, 10 * NS + k * NS // 100)
        if rep.dropped:
            break
    assert rep.dropped == "rate" and k * 0.01 <= 3.0
    assert "16000 Hz" in rep.error and "48000 Hz" in rep.error and "sample_rate" in rep.error
    assert pl.process_samples(x, 20 * NS).dropped == "rate"  # refused until a format is set again
    pl.set_format(AudioFormat(4, 48000, "F32LE"))
    assert pl.process_samples(x, 21 * NS).dropped is None


def test_small_messages_run_the_model_once_per_frame(loaded, monkeypatch) -> None:
    pl = TrackingPipeline(loaded, config=permissive())
    pl.set_format(AudioFormat(4, 16000, "F32LE"))
    calls = []
    real = pl._stream.process
    monkeypatch.setattr(pl._stream, "process", lambda chunk: calls.append(len(chunk)) or real(chunk))
    x = noise(1.0)
    stamps = []
    for i in range(0, 16000, 160):  # 10 ms messages
        stamps += [f.stamp_ns for f in pl.process_samples(x[i : i + 160], 5 * NS + i * NS // 16000).frames]
    assert len(calls) == 10 and stamps == [5 * NS + k * NS // 10 for k in range(10)]  # no frame later than due


def test_gather_delay_waits_for_the_next_frames_audio(loaded) -> None:
    pl = TrackingPipeline(loaded, config=permissive())
    assert pl.gather_delay_s() == 0.0  # no format: nothing to wait for
    pl.set_format(AudioFormat(4, 16000, "S16LE"))
    x = noise(0.2)
    delays = []
    for i in range(0, 3200, 320):  # 20 ms messages: a model frame every fifth
        pl.process_bytes(encode_pcm(x[i : i + 320], "S16LE"), 5 * NS + i * NS // 16000)
        delays.append(pl.gather_delay_s())
    # 80, 60, 40 ms of the frame's audio missing (at most 50 ms, less the 3 ms margin); at 20 ms the next message
    # completes the frame alone (no sleep first); then a new frame's 100 ms
    expected = [0.047, 0.047, 0.037, 0.0, 0.047] * 2
    assert delays == pytest.approx(expected, abs=1e-9)
    delays = []
    for i in range(3200, 16000, 1600):  # 100 ms messages: each completes a frame, the next one the next
        pl.process_bytes(encode_pcm(noise(0.1, seed=i)[:1600], "S16LE"), 5 * NS + i * NS // 16000)
        delays.append(pl.gather_delay_s())
    assert delays == [0.0] * 8  # no sleep before a message that completes the frame alone


def test_runtime_config_change_keeps_ids(loaded) -> None:
    pl = TrackingPipeline(loaded, config=permissive())
    pl.set_format(AudioFormat(4, 16000, "S16LE"))
    ids = []
    for k in range(5):
        rep = pl.process_samples(noise(0.1, seed=k), k * NS // 10)
        ids.append({t.track_id for f in rep.frames for t in f.tracks})
    ending = TrackerConfig(coast_misses=2, death_misses=2)
    pl.set_config(PipelineConfig(peaks=PeakConfig(threshold=1.0), tracker=ending))
    rep = pl.process_samples(noise(0.1, seed=9), 5 * NS // 10)
    assert {t.track_id for f in rep.frames for t in f.tracks} <= ids[-1]  # coasting, same ids
    rep = pl.process_samples(noise(0.1, seed=10), 6 * NS // 10)
    assert [f.tracks for f in rep.frames] == [()]  # ended after death_misses frames without peaks


def test_a_resent_message_is_skipped(loaded) -> None:
    pl = TrackingPipeline(loaded, config=permissive())
    pl.set_format(AudioFormat(4, 16000, "F32LE"))
    x = noise(0.1)
    stamps = []
    for _ in range(5):  # the first message sent 5 times (a publisher resending before discovery)
        rep = pl.process_samples(x, 10 * NS)
        stamps += [f.stamp_ns for f in rep.frames]
    assert rep.dropped == "duplicate"
    for k in range(1, 10):
        stamps += [f.stamp_ns for f in pl.process_samples(noise(0.1, seed=k), 10 * NS + k * NS // 10).frames]
    assert stamps == [10 * NS + k * NS // 10 for k in range(10)]
    # the same stamp with other audio is not a resend (e.g. a driver that stamps a burst once)
    assert pl.process_samples(noise(0.1, seed=99), 10 * NS + 9 * NS // 10).dropped is None
