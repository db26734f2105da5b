"""Regression: a permuted ``channel_order`` is applied exactly once on every path.

An array wired with ``channel_order: [1, 0, 3, 2]`` (input channels == microphones) and a clip
whose channels are swapped to match must give the same answers as the plain clip with the
plain array: through the node's code path (``TrackingPipeline`` fed message bytes), ``sst
predict`` (model and baseline) and ``sst evaluate`` (model and baselines). Before the fix,
``sst predict`` took such audio as already in microphone order and mirrored the azimuths.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _model_synth import FRAME, FS, make_clip

from sst_ros.audio.pcm import encode_pcm
from sst_ros.cli import main as sst_main
from sst_ros.data.clipset import write_array_yaml, write_clip
from sst_ros.geometry import MicArray, load_array
from sst_ros.sim.plane_wave import speech_signal
from sst_ros.train.report import read_predictions_csv

ORDER = [1, 0, 3, 2]  # microphone i is on input channel ORDER[i]
N_FRAMES = 30


def _swapped(array: MicArray) -> MicArray:
    data = array.to_dict()
    data.update(name="respeaker_swapped", channel_order=ORDER)
    return MicArray.from_dict(data)


def _as_stream(mic_audio: np.ndarray) -> np.ndarray:
    """The device stream of the swapped wiring: input channel ORDER[i] carries microphone i."""
    stream = np.empty_like(mic_audio)
    stream[:, ORDER] = mic_audio
    return stream


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    plain = load_array("respeaker_usb_v2")
    swapped = _swapped(plain)
    root = tmp_path_factory.mktemp("order")
    rng = np.random.default_rng(3)
    # speech: the default model is trained to leave a broadband point source (a fan) out
    audio, labels = make_clip(plain, -122.0, N_FRAMES, rng, source=speech_signal(N_FRAMES * FRAME, rng))
    for name, arr, x in (("plain", plain, audio), ("swapped", swapped, _as_stream(audio))):
        write_array_yaml(root / name, arr)
        write_clip(root / name, "clip", x, FS, labels)
    (root / "swapped.yaml").write_text((root / "swapped" / "array.yaml").read_text())
    return {"plain": root / "plain", "swapped": root / "swapped", "yaml": root / "swapped.yaml"}


def _predict(sets: dict[str, Path], tmp: Path, which: str, *extra: str) -> np.ndarray:
    out = tmp / f"{which}{'_'.join(extra)}.csv"
    argv = ["predict", "--wav", str(sets[which] / "clip.wav"), "--out", str(out), *extra]
    if which == "swapped":
        argv += ["--array", str(sets["yaml"])]
    assert sst_main(argv) == 0
    return read_predictions_csv(out).azimuth_deg


@pytest.mark.parametrize("method", [[], ["--baseline", "normmusic"]], ids=["model", "normmusic"])
def test_predict_applies_channel_order_once(sets, tmp_path, method) -> None:
    plain = _predict(sets, tmp_path, "plain", *method)
    np.testing.assert_array_equal(_predict(sets, tmp_path, "swapped", *method), plain)
    # The wiring matters: the swapped stream read as if it were plain gives other azimuths.
    misread = tmp_path / "misread.csv"
    assert sst_main(["predict", "--wav", str(sets["swapped"] / "clip.wav"), "--out", str(misread), *method]) == 0
    assert np.abs(read_predictions_csv(misread).azimuth_deg - plain).max() > 10.0


def test_evaluate_applies_channel_order_once(sets, tmp_path) -> None:
    from sst_ros.train.evaluate import evaluate

    reports = {
        which: evaluate(None, sets[which], tmp_path / which, baselines="all", plots=False)
        for which in ("plain", "swapped")
    }
    for method, res in reports["plain"]["methods"].items():
        assert reports["swapped"]["methods"][method]["pooled"] == res["pooled"], method
    assert reports["plain"]["methods"]["crnn"]["pooled"]["mae_deg"] < 10.0


def test_node_pipeline_applies_channel_order_once(sets) -> None:
    from sst_ros.audio.wav import read_wav
    from sst_ros.model.checkpoint import load_checkpoint
    from sst_ros.tracking.pipeline import AudioFormat, TrackingPipeline

    loaded = load_checkpoint(None)
    tracks = {}
    for which, arr in (("plain", None), ("swapped", load_array(sets["yaml"]))):
        audio, fs = read_wav(sets[which] / "clip.wav")
        pl = TrackingPipeline(loaded, array=arr)
        pl.set_format(AudioFormat(4, fs, "F32LE"))
        frames = []
        for i in range(0, audio.shape[0], 1600):
            frames += pl.process_bytes(encode_pcm(audio[i : i + 1600], "F32LE"), i * 1_000_000_000 // fs).frames
        tracks[which] = [(f.stamp_ns, [(t.track_id, t.azimuth_deg) for t in f.tracks]) for f in frames]
    assert tracks["swapped"] == tracks["plain"]
    assert any(trk for _, trk in tracks["plain"])
