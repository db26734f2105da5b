"""Bags of either audio stack (no DDS): written with the project's writers, read by read_bag_audio.

mgonzs13 ``AudioStamped`` bags need no info topic; the typestore is chosen per bag, from the
bag's own definitions or, without them, from the audio topic's type name; plain ros-drivers
``AudioData`` reads with its record times as stamps, which the recorder sets to each message's
receipt.
"""

from __future__ import annotations

import numpy as np
import pytest
from _audio_stacks import cdr_audio_stamped
from helpers import cdr_audio_info
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer

from sst_ros.audio.stacks import AUDIO_DATA_TYPE, AUDIO_INFO_TYPE, AUDIO_STAMPED_TYPE, MGONZS13, ROS_DRIVERS
from sst_ros.data.bag import AUDIO_TOPIC_TYPES, audio_typestore, bag_audio_stack, read_bag_audio
from sst_ros.data.bag_writer import BagWriter, SplitBagWriter
from sst_ros.errors import BagError
from sst_ros.geometry import load_array

FS = 16000


def _int16(rng: np.random.Generator, frames: int, channels: int) -> np.ndarray:
    return rng.integers(-32768, 32767, (frames, channels), endpoint=True).astype(np.int16)


def test_audio_stamped_bag_reads_bit_exact_without_info_topic(tmp_path) -> None:
    rng = np.random.default_rng(0)
    a = [_int16(rng, 160, 4) for _ in range(5)]
    f = [rng.uniform(-1, 1, (100, 2)).astype(np.float32) for _ in range(3)]
    with BagWriter(tmp_path / "bag", load_array("respeaker_usb_v2"), stack=MGONZS13) as bag:
        for k, x in enumerate(a):
            bag.write("/a/audio", AUDIO_STAMPED_TYPE, k + 1, cdr_audio_stamped(x.ravel(), 8, 4, FS, 10**12 + k * 10**7))
        for k, x in enumerate(f):
            bag.write("/f/audio", AUDIO_STAMPED_TYPE, k + 1, cdr_audio_stamped(x.ravel(), 1, 2, 48000, 7 + k))
    ra, rf = read_bag_audio(tmp_path / "bag")
    assert (ra.topic, ra.stack, ra.sample_rate_hz, ra.sample_format) == ("/a/audio", MGONZS13, FS, "S16LE")
    np.testing.assert_array_equal(ra.samples * 32768, np.concatenate(a))  # bit-exact
    assert ra.message_stamps_ns.tolist() == [10**12 + k * 10**7 for k in range(5)]
    assert ra.message_offsets.tolist() == [0, 160, 320, 480, 640] and ra.geometry is not None
    assert (rf.sample_rate_hz, rf.sample_format) == (48000, "F32LE")
    np.testing.assert_array_equal(rf.samples, np.concatenate(f))
    with AnyReader([tmp_path / "bag"]) as reader:  # the bag carries mgonzs13's definitions
        (conn, *_) = reader.connections
        assert conn.msgtype == AUDIO_STAMPED_TYPE and "float32[] float32_data" in conn.msgdef.data
        assert reader.typestore.hash_rihs01(AUDIO_STAMPED_TYPE) == audio_typestore(MGONZS13).hash_rihs01(
            AUDIO_STAMPED_TYPE
        )


def test_8_bit_formats_read_as_float(tmp_path) -> None:
    i8 = np.array([-128, -1, 0, 1, 127, 64], dtype=np.int8)
    u8 = np.array([0, 127, 128, 129, 255, 192], dtype=np.uint8)
    with BagWriter(tmp_path / "bag", stack=MGONZS13) as bag:
        bag.write("/i/audio", AUDIO_STAMPED_TYPE, 1, cdr_audio_stamped(i8, 16, 2, FS, 1))
        bag.write("/u/audio", AUDIO_STAMPED_TYPE, 1, cdr_audio_stamped(u8, 32, 2, FS, 1))
    ri, ru = read_bag_audio(tmp_path / "bag")
    np.testing.assert_array_equal(ri.samples.ravel(), i8 / 128.0)
    np.testing.assert_array_equal(ru.samples.ravel(), (u8.astype(float) - 128) / 128.0)


def _as_humble_bag(path) -> None:
    """Turn a version-9 sqlite3 bag into the version-5 layout ROS 2 Humble writes: no message definitions."""
    import re
    import sqlite3

    meta = (path / "metadata.yaml").read_text()
    meta = re.sub(r"\n\s*type_description_hash:\s*\n?\s*RIHS01_\w+", "", meta).replace("version: 9", "version: 5")
    (path / "metadata.yaml").write_text(meta)
    (db,) = path.glob("*.db3")
    con = sqlite3.connect(db)
    con.execute("DROP TABLE message_definitions")
    con.execute("DROP TABLE metadata")
    con.execute("UPDATE schema SET schema_version = 3")
    con.execute("CREATE TABLE t2 (id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, "
                "serialization_format TEXT NOT NULL, offered_qos_profiles TEXT NOT NULL)")  # fmt: skip
    con.execute("INSERT INTO t2 SELECT id, name, type, serialization_format, offered_qos_profiles FROM topics")
    con.execute("DROP TABLE topics")
    con.execute("ALTER TABLE t2 RENAME TO topics")
    con.commit()
    con.close()


def test_bag_without_definitions_uses_the_type_name(tmp_path) -> None:
    """No stored definitions (a Humble bag): the AudioStamped type name picks mgonzs13's typestore."""
    x = _int16(np.random.default_rng(1), 64, 1)
    path = tmp_path / "bag"
    with Writer(path, version=9, storage_plugin=StoragePlugin.SQLITE3) as w:
        conn = w.add_connection("/audio", AUDIO_STAMPED_TYPE, typestore=audio_typestore(MGONZS13))
        w.write(conn, 1, cdr_audio_stamped(x.ravel(), 8, 1, FS, 3))
    _as_humble_bag(path)
    with AnyReader([path], default_typestore=audio_typestore(ROS_DRIVERS)) as reader:
        assert reader.connections[0].msgdef.format.name == "NONE"
        assert AUDIO_STAMPED_TYPE not in reader.typestore.types  # a ros-drivers store could not decode it
    (got,) = read_bag_audio(path)
    assert got.stack == MGONZS13 and got.message_stamps_ns.tolist() == [3]
    np.testing.assert_array_equal(got.samples * 32768, x)


def test_stack_from_definitions_and_mixed_bags(tmp_path) -> None:
    """AudioInfo exists in both stacks: its stored definition, not its name, tells which."""
    mg_info = audio_typestore(MGONZS13)
    conn = type("C", (), {})
    mg = conn()
    mg.topic, mg.msgtype = "/i", AUDIO_INFO_TYPE
    mg.msgdef = type("D", (), {"data": mg_info.generate_msgdef(AUDIO_INFO_TYPE, ros_version=2)[0]})()
    rd = conn()
    rd.topic, rd.msgtype, rd.msgdef = "/j", AUDIO_INFO_TYPE, type("D", (), {"data": "uint8 channels\n"})()
    nodef = conn()
    nodef.topic, nodef.msgtype, nodef.msgdef = "/k", AUDIO_DATA_TYPE, type("D", (), {"data": ""})()
    assert bag_audio_stack([mg]).name == MGONZS13
    assert bag_audio_stack([rd]).name == ROS_DRIVERS
    assert bag_audio_stack([nodef]).name == ROS_DRIVERS
    with pytest.raises(BagError, match="mixes the two audio stacks"):
        bag_audio_stack([mg, rd], "b")
    # a real mixed bag: one AudioStamped and one AudioDataStamped topic
    path = tmp_path / "mixed"
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        c1 = w.add_connection("/m", AUDIO_STAMPED_TYPE, typestore=audio_typestore(MGONZS13))
        w.write(c1, 1, cdr_audio_stamped(np.zeros(2, np.int16), 8, 1, FS, 1))
        c2 = w.add_connection("/r_info", AUDIO_INFO_TYPE, typestore=audio_typestore(ROS_DRIVERS))
        w.write(c2, 2, cdr_audio_info(1, FS, "S16LE"))
        c3 = w.add_connection("/r", "audio_common_msgs/msg/AudioDataStamped", typestore=audio_typestore(ROS_DRIVERS))
        w.write(c3, 3, b"\x00\x01\x00\x00" + bytes(12))
    with pytest.raises(BagError, match="mixes the two audio stacks"):
        read_bag_audio(path)


def test_bad_messages_and_format_changes_name_the_bag(tmp_path) -> None:
    with BagWriter(tmp_path / "pa24", stack=MGONZS13) as bag:
        bag.write("/audio", AUDIO_STAMPED_TYPE, 1, cdr_audio_stamped(None, 4, 1, FS, 1, arrays={"int32_data": [1]}))
    with pytest.raises(BagError, match=r"pa24: a message on /audio cannot be decoded: .*paInt24"):
        read_bag_audio(tmp_path / "pa24")
    with BagWriter(tmp_path / "change", stack=MGONZS13) as bag:
        bag.write("/audio", AUDIO_STAMPED_TYPE, 1, cdr_audio_stamped(np.zeros(4, np.int16), 8, 2, FS, 1))
        bag.write("/audio", AUDIO_STAMPED_TYPE, 2, cdr_audio_stamped(np.zeros(4, np.int16), 8, 1, FS, 2))
    with pytest.raises(BagError, match=r"format of /audio changes from \(2, 16000, 'S16LE'\) to \(1, 16000"):
        read_bag_audio(tmp_path / "change")


def test_plain_audio_data_reads_with_record_times(tmp_path) -> None:
    store = audio_typestore(ROS_DRIVERS)
    x = _int16(np.random.default_rng(2), 50, 2)
    parts = [x[:20], x[20:]]
    with SplitBagWriter(tmp_path / "bag") as w:
        w.write("/audio_info", AUDIO_INFO_TYPE, 5, cdr_audio_info(2, FS, "S16LE"), latched=True)
        for k, p in enumerate(parts):
            msg = store.types[AUDIO_DATA_TYPE](data=np.frombuffer(p.astype("<i2").tobytes(), np.uint8))
            w.write("/audio", AUDIO_DATA_TYPE, 1000 + k, bytes(store.serialize_cdr(msg, AUDIO_DATA_TYPE)))
    assert w.discard_without(AUDIO_TOPIC_TYPES) == []
    (got,) = read_bag_audio(tmp_path / "bag")
    np.testing.assert_array_equal(got.samples * 32768, x)
    assert got.message_stamps_ns.tolist() == [1000, 1001] and got.stack == ROS_DRIVERS


@pytest.mark.ros  # a recorder node in this process (nothing is published: its callbacks are called)
def test_recorder_writes_held_and_pre_roll_plain_audio_at_receipt(tmp_path, rclpy_context) -> None:
    """Plain AudioData held before its AudioInfo, and the gate's pre-roll, are written late: each is
    recorded at its own receipt (a reader's only time for it), the AudioInfo before them."""
    from rclpy.parameter import Parameter

    from sst_ros.ros.record_target import TargetRecorder

    params = {"topics": ["/t/audio"], "out": str(tmp_path / "bag"), "array": "", "gate": True,
              "gate_hangover_s": 0.0, "gate_preroll_s": 0.3, "status_period_s": 0.0, "no_publisher_warn_s": 0.0,
              "diagnostics_period_s": 0.0}  # fmt: skip
    rec = TargetRecorder(context=rclpy_context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    try:
        rec._subscriber.types["/t/audio"] = AUDIO_DATA_TYPE  # what the graph would say of a plain publisher
        store = audio_typestore(ROS_DRIVERS)
        rng = np.random.default_rng(3)
        loud, quiet = _int16(rng, 1600, 2) // 4, np.zeros((1600, 2), np.int16)
        t0 = rec.get_clock().now().nanoseconds - 10 * 10**9
        receipts = [t0 + k * 100_000_000 for k in range(6)]
        for k, (x, t) in enumerate(zip([loud, loud, loud, quiet, quiet, loud], receipts, strict=True)):
            if k == 3:
                rec._on_info("/t/audio_info", cdr_audio_info(2, FS, "S16LE"))  # releases the 3 held
            msg = store.types[AUDIO_DATA_TYPE](data=np.frombuffer(x.astype("<i2").tobytes(), np.uint8))
            rec._on_audio("/t/audio", bytes(store.serialize_cdr(msg, AUDIO_DATA_TYPE)), t)
        assert rec._topics["/t/audio"].messages == 6  # the 2 quiet ones came back as pre-roll
        assert rec._topics["/t/audio"].received == 6  # the 3 held ones are counted once, not again on release
    finally:
        rec.close()
        rec.destroy_node()
    (got,) = read_bag_audio(tmp_path / "bag")
    assert got.message_stamps_ns.tolist() == receipts and got.samples.shape[0] == 6 * 1600
    with AnyReader([tmp_path / "bag"]) as reader:
        (info,) = [t for c, t, _ in reader.messages() if c.msgtype == AUDIO_INFO_TYPE]
    assert info == t0


def test_mp3_audio_info_in_a_bag_is_refused(tmp_path) -> None:
    store = audio_typestore(ROS_DRIVERS)
    info = store.types[AUDIO_INFO_TYPE](channels=1, sample_rate=FS, sample_format="S16LE", bitrate=0,
                                        coding_format="MP3")  # fmt: skip
    with BagWriter(tmp_path / "bag") as bag:
        bag.write("/audio_info", AUDIO_INFO_TYPE, 1, bytes(store.serialize_cdr(info, AUDIO_INFO_TYPE)))
        msg = store.types[AUDIO_DATA_TYPE](data=np.zeros(4, np.uint8))
        bag.write("/audio", AUDIO_DATA_TYPE, 2, bytes(store.serialize_cdr(msg, AUDIO_DATA_TYPE)))
    with pytest.raises(BagError, match=r"AudioInfo on /audio_info is invalid: .*not raw PCM.*format:=wave"):
        read_bag_audio(tmp_path / "bag")


def test_target_set_loads_an_audio_stamped_bag(tmp_path) -> None:
    """``sst adapt --target`` reads mgonzs13 bags: load_target_set on one (48 kHz, resampled to 16 kHz)."""
    from sst_ros.data.target_set import load_target_set

    array = load_array("respeaker_usb_v2")
    x = np.random.default_rng(3).uniform(-0.5, 0.5, (4800 * 5, 4)).astype(np.float32)
    with SplitBagWriter(tmp_path / "bags" / "t", array, stack=MGONZS13) as w:
        for k in range(5):
            w.write("/audio", AUDIO_STAMPED_TYPE, k + 1, cdr_audio_stamped(x[k * 4800 : (k + 1) * 4800].ravel(), 1,
                                                                            4, 48000, 10**9 + k * 10**8))  # fmt: skip
    assert w.discard_without(AUDIO_TOPIC_TYPES) == []
    target = load_target_set([tmp_path / "bags"], array, FS)
    assert len(target) == 1 and target.recordings[0].topic == "/audio"
    assert target.recordings[0].audio.shape == (8000, 4) and target.duration_s == pytest.approx(0.5)


def test_crashed_audio_stamped_bag_recovers_bit_exact(tmp_path) -> None:
    """A closed AudioStamped bag that lost its metadata.yaml (as after a crash) is rebuilt with
    the mgonzs13 definitions (the ros-drivers store would clash on AudioData / AudioInfo)."""
    from sst_ros.data.bag_recover import recover_bag

    rng = np.random.default_rng(4)
    chunks = [_int16(rng, 160, 4) for _ in range(6)]
    with BagWriter(tmp_path / "bag", load_array("respeaker_usb_v2"), stack=MGONZS13) as bag:
        for k, x in enumerate(chunks):
            bag.write("/audio", AUDIO_STAMPED_TYPE, k + 1, cdr_audio_stamped(x.ravel(), 8, 4, FS, 10**9 + k * 10**7))
    (tmp_path / "bag" / "metadata.yaml").unlink()
    report = recover_bag(tmp_path / "bag")
    assert report.dropped_bytes == 0 and report.messages["/audio"] == 6
    (audio,) = read_bag_audio(tmp_path / "bag")
    assert audio.stack == MGONZS13
    np.testing.assert_array_equal(audio.samples * 32768, np.concatenate(chunks))
