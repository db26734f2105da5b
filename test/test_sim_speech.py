"""Source signals: recorded corpora, cached espeak-ng pool, clean fallback when missing."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

import sst_ros.sim.speech as speech
from sst_ros.sim.speech import SpeechPool

FS = 16000


def test_espeak_pool_items_are_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SST_CACHE_DIR", str(tmp_path))
    pool = SpeechPool(FS, espeak_pool_size=50)
    assert pool.espeak_params(3) == SpeechPool(FS, espeak_pool_size=50).espeak_params(3)
    assert pool.espeak_params(3) != pool.espeak_params(4)
    if not pool.has_espeak:
        pytest.skip("espeak-ng not installed")
    x = pool.espeak(3)
    assert x is not None and x.dtype == np.float32 and x.size > FS // 2
    assert list((tmp_path / "espeak").glob("*.wav"))  # cached on disk
    y = SpeechPool(FS, espeak_pool_size=50).espeak(3)  # a fresh pool reads the cache
    np.testing.assert_allclose(x, y, atol=1e-4)


def test_real_corpora_load_at_pool_rate() -> None:
    pool = SpeechPool(FS)
    if not pool.has_real:
        pytest.skip("no recorded speech corpus installed")
    assert all(x.dtype == np.float32 and x.ndim == 1 for x in pool.real)
    x, name = pool.utterance(np.random.default_rng(0), real_prob=1.0)
    assert ":" in name and x.size > FS // 4
    # Unit RMS over the loud part: levels of different corpora are comparable.
    loud = np.abs(x) > 0.01 * np.abs(x).max()
    assert 0.5 < np.sqrt(np.mean(x[loud] ** 2)) < 2.0


def test_missing_corpora_and_espeak_fall_back_with_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(speech, "REAL_CORPORA", {"none": str(tmp_path / "nothing" / "*.wav")})
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with caplog.at_level(logging.WARNING, logger="sst_ros.sim.speech"):
        pool = SpeechPool(FS)
    assert not pool.has_real and not pool.has_espeak
    text = caplog.text
    assert "not found" in text and "espeak-ng" in text
    x, name = pool.utterance(np.random.default_rng(1), real_prob=0.5)
    assert name == "synthetic" and np.isfinite(x).all() and np.abs(x).max() > 0
