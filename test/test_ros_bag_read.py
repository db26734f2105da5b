"""read_bag_audio on bags written here with rosbags (no DDS): contents, geometry and every error path."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from helpers import cdr_audio as _audio
from helpers import cdr_audio_info as _info
from rosbags.rosbag2 import StoragePlugin, Writer

from sst_ros.audio.stacks import AUDIO_DATA_STAMPED_TYPE, AUDIO_INFO_TYPE
from sst_ros.data.bag import audio_typestore, find_bags, read_bag_audio
from sst_ros.errors import BagError
from sst_ros.geometry import load_array

STORE = audio_typestore()


def _write_bag(path, messages: list[tuple[str, str, bytes]], geometry: bool = True) -> None:
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conns = {}
        for k, (topic, msgtype, raw) in enumerate(messages):
            if topic not in conns:
                conns[topic] = w.add_connection(topic, msgtype, typestore=STORE)
            w.write(conns[topic], 1_000 + k, raw)
    if geometry:
        (path / "array.yaml").write_text(yaml.safe_dump(load_array("respeaker_usb_v2").to_dict()))


def test_reads_two_topics_with_their_info(tmp_path) -> None:
    rng = np.random.default_rng(0)
    a = [rng.uniform(-1, 1, (100, 4)) for _ in range(3)]
    b = [rng.uniform(-1, 1, (30, 1)).astype(np.float32) for _ in range(2)]
    msgs = [("/r1/audio_info", AUDIO_INFO_TYPE, _info(4, 16000, "S24LE")),
            ("/r2/audio_info", AUDIO_INFO_TYPE, _info(1, 8000, "F32LE"))]
    msgs += [("/r1/audio", AUDIO_DATA_STAMPED_TYPE, _audio(x, "S24LE", 10**9 + 100 * k)) for k, x in enumerate(a)]
    msgs += [("/r2/audio", AUDIO_DATA_STAMPED_TYPE, _audio(x, "F32LE", 7 + k)) for k, x in enumerate(b)]
    _write_bag(tmp_path / "bag", msgs)
    r1, r2 = read_bag_audio(tmp_path / "bag")
    assert (r1.topic, r1.sample_rate_hz, r1.sample_format, r1.samples.shape) == ("/r1/audio", 16000, "S24LE", (300, 4))
    np.testing.assert_allclose(r1.samples, np.concatenate(a), atol=2**-23)
    assert r1.first_stamp_ns == 10**9 and r1.message_offsets.tolist() == [0, 100, 200]
    assert r1.duration_s == pytest.approx(300 / 16000)
    assert r1.geometry is not None and r1.geometry.n_mics == 4
    np.testing.assert_array_equal(r2.samples, np.concatenate(b))
    assert find_bags(tmp_path) == [tmp_path / "bag"]


def test_missing_bag_and_metadata(tmp_path) -> None:
    with pytest.raises(BagError, match="does not exist"):
        read_bag_audio(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match=r"metadata\.yaml is missing"):
        read_bag_audio(tmp_path / "empty")


def test_corrupt_mcap_names_the_bag(tmp_path) -> None:
    x = np.zeros((100, 1))
    _write_bag(tmp_path / "bag", [("/audio_info", AUDIO_INFO_TYPE, _info(1, 16000, "S16LE"))]
               + [("/audio", AUDIO_DATA_STAMPED_TYPE, _audio(x, "S16LE", k)) for k in range(5)])
    (mcap,) = (tmp_path / "bag").glob("*.mcap")
    mcap.write_bytes(mcap.read_bytes()[:200])
    with pytest.raises(BagError, match=r"bag .*bag cannot be read"):
        read_bag_audio(tmp_path / "bag")


def test_no_audio_topic_and_no_info(tmp_path) -> None:
    _write_bag(tmp_path / "only_info", [("/audio_info", AUDIO_INFO_TYPE, _info(1, 16000, "S16LE"))])
    with pytest.raises(BagError, match="no audio_common_msgs/msg/AudioDataStamped topic"):
        read_bag_audio(tmp_path / "only_info")
    _write_bag(tmp_path / "no_info", [("/audio", AUDIO_DATA_STAMPED_TYPE, _audio(np.zeros((4, 1)), "S16LE", 0))])
    with pytest.raises(BagError, match="no AudioInfo for audio topic /audio"):
        read_bag_audio(tmp_path / "no_info")


def test_payload_not_matching_info_and_bad_geometry(tmp_path) -> None:
    msgs = [("/audio_info", AUDIO_INFO_TYPE, _info(3, 16000, "S16LE")),
            ("/audio", AUDIO_DATA_STAMPED_TYPE, _audio(np.zeros((5, 2)), "S16LE", 0))]  # 20 bytes, not 3 x 2
    _write_bag(tmp_path / "bag", msgs, geometry=False)
    with pytest.raises(BagError, match="does not match its AudioInfo"):
        read_bag_audio(tmp_path / "bag")
    _write_bag(tmp_path / "geo", msgs[:1] + [("/audio", AUDIO_DATA_STAMPED_TYPE, _audio(np.zeros((5, 3)), "S16LE", 0))],
               geometry=False)
    assert read_bag_audio(tmp_path / "geo")[0].geometry is None
    (tmp_path / "geo" / "array.yaml").write_text("name: x\nmicrophones_m: [[1, 2]]\n")
    with pytest.raises(BagError, match=r"array\.yaml .* is invalid"):
        read_bag_audio(tmp_path / "geo")
