"""The two ROS 2 audio stacks without DDS: raw CDR readers against rclpy, formats, stamps, detection.

The mgonzs13 messages exist only in ``.ros_ws_mgonzs13`` (built by ``make setup``), so rclpy's
own serialization of them is produced by a subprocess in that workspace's environment; the
readers run here and must agree with it bit for bit.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest
from _audio_stacks import MG_INSTALL, cdr_audio_stamped, mgonzs13_env
from helpers import REPO_ROOT

from sst_ros.audio.pcm import decode_pcm, encode_pcm
from sst_ros.audio.stacks import (
    AUDIO_DATA_STAMPED_TYPE,
    AUDIO_DATA_TYPE,
    AUDIO_STAMPED_TYPE,
    MGONZS13,
    MGONZS13_DEFINITIONS,
    PORTAUDIO_FORMATS,
    ROS_DRIVERS,
    STACKS,
    AudioStack,
    StampAt,
    check_coding_format,
    read_audio_data_cdr,
    read_audio_stamped_cdr,
)
from sst_ros.data.bag import audio_typestore
from sst_ros.errors import AudioFormatError, ConfigError

# Runs in the mgonzs13 environment: rclpy serializes AudioStamped messages (every format, frame
# ids of every length modulo 4, 1 and 3 channels, all arrays empty), stamped_audio_msg builds
# some, and the type hashes ROS computes for the four types are read from the graph.
_RCLPY_SCRIPT = textwrap.dedent("""
    import array, pickle, sys
    import numpy as np
    import audio_common_msgs, rclpy
    from audio_common_msgs.msg import Audio, AudioData, AudioInfo, AudioStamped
    from rclpy.serialization import serialize_message
    from sst_ros.audio.stacks import PORTAUDIO_FORMATS
    from sst_ros.ros.audio_stacks import installed_stack, stamped_audio_msg

    rng = np.random.default_rng(0)
    typecodes = {"<f4": "f", "<i4": "i", "<i2": "h", "i1": "b", "u1": "B"}
    cases = []
    for code, (_name, field, dtype, _pcm) in PORTAUDIO_FORMATS.items():
        for k, frame_id in enumerate(["", "m", "ab", "abc", "mic_array", "a/longer/frame_id"]):
            channels = 1 + 2 * (k % 2)
            n = channels * (3 + k)
            if dtype == "<f4":
                values = rng.uniform(-1, 1, n).astype(np.float32)
            else:
                info = np.iinfo(np.dtype(dtype))
                values = rng.integers(info.min, info.max, n, endpoint=True).astype(dtype)
            msg = AudioStamped()
            msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_000 + k, 123_456_789 + code
            msg.header.frame_id = frame_id
            setattr(msg.audio.audio_data, field, array.array(typecodes[dtype], values.tobytes()))
            msg.audio.info.format, msg.audio.info.channels = code, channels
            msg.audio.info.rate, msg.audio.info.chunk = 16000 + code, n // channels
            cases.append((code, frame_id, channels, values, bytes(serialize_message(msg))))
    empty = AudioStamped()
    empty.audio.info.format, empty.audio.info.channels, empty.audio.info.rate = 8, 2, 16000
    built = []
    x = rng.uniform(-0.9, 0.9, (7, 2))
    for fmt in ("S16LE", "S32LE", "F32LE"):
        built.append((fmt, x, bytes(serialize_message(stamped_audio_msg(installed_stack(), x, fmt, 42, "f", 48000)))))
    rclpy.init()
    node = rclpy.create_node("hash_probe")
    hashes = {}
    for cls in (AudioStamped, Audio, AudioData, AudioInfo):
        pub = node.create_publisher(cls, "/hash_probe/" + cls.__name__, 1)
        (info,) = node.get_publishers_info_by_topic(pub.topic_name)
        hashes["audio_common_msgs/msg/" + cls.__name__] = str(info.topic_type_hash)
    node.destroy_node()
    rclpy.shutdown()
    out = {"module": audio_common_msgs.__file__, "stack": installed_stack().name, "cases": cases,
           "empty": bytes(serialize_message(empty)), "built": built, "hashes": hashes}
    with open(sys.argv[1], "wb") as fh:
        pickle.dump(out, fh)
""")


@pytest.fixture(scope="module")
def rclpy_mgonzs13(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("mg") / "rclpy.pkl"
    proc = subprocess.run([sys.executable, "-c", _RCLPY_SCRIPT, str(out)], env=mgonzs13_env(), capture_output=True,
                          text=True, timeout=120, cwd=REPO_ROOT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out, "rb") as fh:
        return pickle.load(fh)


@pytest.mark.ros  # rclpy in a subprocess (DDS for the type hashes)
def test_subprocess_imports_the_mgonzs13_package(rclpy_mgonzs13) -> None:
    assert rclpy_mgonzs13["module"].startswith(str(MG_INSTALL))
    assert rclpy_mgonzs13["stack"] == MGONZS13


@pytest.mark.ros  # rclpy in a subprocess (DDS for the type hashes)
def test_audio_stamped_reader_equals_rclpy_serialization(rclpy_mgonzs13) -> None:
    """Every format, frame ids of every length mod 4 (alignment), 1 and 3 channels: bit-exact."""
    store = audio_typestore(MGONZS13)
    assert len(rclpy_mgonzs13["cases"]) == 30
    for code, frame_id, channels, values, raw in rclpy_mgonzs13["cases"]:
        k = ["", "m", "ab", "abc", "mic_array", "a/longer/frame_id"].index(frame_id)
        chunk = read_audio_stamped_cdr(raw)
        _name, field, dtype, pcm = PORTAUDIO_FORMATS[code]
        assert chunk.stamp_ns == (1_700_000_000 + k) * 10**9 + 123_456_789 + code
        assert (chunk.frame_id, chunk.channels, chunk.rate_hz, chunk.sample_format) == (
            frame_id,
            channels,
            16000 + code,
            pcm,
        )
        if dtype in ("i1", "u1"):  # 8-bit: converted to float32, full scale 1.0
            want = (values.astype(np.float32) - (128.0 if dtype == "u1" else 0.0)) / np.float32(128.0)
            got = decode_pcm(chunk.payload, channels, "F32LE")
            np.testing.assert_array_equal(got, want.reshape(-1, channels))
        else:
            assert bytes(chunk.payload) == values.astype(dtype).tobytes()  # the samples' own bytes
        # the typestore that reads bags decodes rclpy's bytes the same way
        msg = store.deserialize_cdr(raw, AUDIO_STAMPED_TYPE)
        np.testing.assert_array_equal(getattr(msg.audio.audio_data, field), values)
        assert msg.header.frame_id == frame_id
    empty = read_audio_stamped_cdr(rclpy_mgonzs13["empty"])
    assert len(empty.payload) == 0 and (empty.channels, empty.sample_format) == (2, "S16LE")


@pytest.mark.ros  # rclpy in a subprocess (DDS for the type hashes)
def test_stamped_audio_msg_round_trips(rclpy_mgonzs13) -> None:
    """What publish_audio sends with the mgonzs13 stack reads back as the samples it was given."""
    for fmt, x, raw in rclpy_mgonzs13["built"]:
        chunk = read_audio_stamped_cdr(raw)
        assert (chunk.stamp_ns, chunk.frame_id, chunk.channels, chunk.rate_hz) == (42, "f", 2, 48000)
        assert chunk.sample_format == fmt
        np.testing.assert_array_equal(decode_pcm(chunk.payload, 2, fmt), decode_pcm(encode_pcm(x, fmt), 2, fmt))


@pytest.mark.ros  # rclpy in a subprocess (DDS for the type hashes)
def test_vendored_definitions_hash_like_ros(rclpy_mgonzs13) -> None:
    """The definitions written into bags give the type hashes ROS computes for the built package."""
    store = audio_typestore(MGONZS13)
    assert set(rclpy_mgonzs13["hashes"]) == set(MGONZS13_DEFINITIONS)
    for name, ros_hash in rclpy_mgonzs13["hashes"].items():
        assert ros_hash == store.hash_rihs01(name), name


def test_vendored_msg_files_are_the_definitions() -> None:
    folder = REPO_ROOT / "third_party" / "audio_common_msgs_mgonzs13"
    for name, text in MGONZS13_DEFINITIONS.items():
        assert (folder / "msg" / f"{name.rsplit('/', 1)[1]}.msg").read_text() == text, name
    assert "MIT License" in (folder / "LICENSE").read_text()
    assert "Miguel" in (folder / "package.xml").read_text()


def test_big_endian_and_cut_short() -> None:
    values = np.array([1, -2, 3, -32768, 32767, 0], dtype=np.int16)
    le = read_audio_stamped_cdr(cdr_audio_stamped(values, 8, 2, 16000, 5, "ab"))
    be = read_audio_stamped_cdr(cdr_audio_stamped(values, 8, 2, 16000, 5, "ab", little_endian=False))
    assert bytes(le.payload) == bytes(be.payload) == values.astype("<i2").tobytes()
    assert be.stamp_ns == 5 and be.frame_id == "ab"
    raw = cdr_audio_stamped(values, 8, 2, 16000, 5)
    for cut in (3, 10, 30, len(raw) - 8, len(raw) - 1):
        with pytest.raises(AudioFormatError, match="cut short|encapsulation"):
            read_audio_stamped_cdr(raw[:cut])


@pytest.mark.parametrize(
    ("code", "arrays", "channels", "rate", "match"),
    [
        (4, {}, 1, 16000, r"info\.format 4 \(paInt24\) is not supported.*format:=8"),
        (99, {}, 1, 16000, r"info\.format 99 \(unknown\)"),
        (8, {"float32_data": [0.1, 0.2]}, 1, 16000, r"paInt16\) says the samples are in int16_data, but float32_data"),
        (8, {"int16_data": [1, 2], "int32_data": [1, 2]}, 1, 16000, "int32_data and int16_data are filled"),
        (8, {"int16_data": [1, 2, 3]}, 2, 16000, "3 samples in int16_data, not a multiple of its 2 channels"),
        (8, {"int16_data": [1, 2]}, 0, 16000, "channels=0, rate=16000; both must be positive"),
        (1, {"float32_data": [0.5]}, 1, 0, "channels=1, rate=0"),
    ],
)
def test_bad_audio_stamped_is_refused_clearly(code, arrays, channels, rate, match) -> None:
    raw = cdr_audio_stamped(None, code, channels, rate, 0, arrays=arrays)
    with pytest.raises(AudioFormatError, match=match):
        STACKS[MGONZS13].decode(AUDIO_STAMPED_TYPE, raw)


def test_stamp_position() -> None:
    """mgonzs13's capturer stamps before the blocking read: the first sample (no correction); a stack
    stamping the end of its chunk would have the chunk's duration subtracted."""
    mg = STACKS[MGONZS13]
    assert mg.stamp_at is StampAt.FIRST_SAMPLE
    raw = cdr_audio_stamped(np.zeros(1600, np.int16), 8, 1, 16000, 10**12)
    assert mg.decode(AUDIO_STAMPED_TYPE, raw).stamp_ns == 10**12
    end = AudioStack(**{**{f: getattr(mg, f) for f in mg.__dataclass_fields__}, "stamp_at": StampAt.END})
    assert end.first_sample_ns(10**12, 1600, 16000) == 10**12 - 100_000_000
    assert end.decode(AUDIO_STAMPED_TYPE, raw).stamp_ns == 10**12 - 100_000_000
    assert end.first_sample_ns(0, 1600, 16000) == 0  # no stamp stays no stamp


def test_ros_drivers_plain_audio_data_reader() -> None:
    store = audio_typestore(ROS_DRIVERS)
    msg = store.types[AUDIO_DATA_TYPE](data=np.arange(10, dtype=np.uint8))
    raw = bytes(store.serialize_cdr(msg, AUDIO_DATA_TYPE))
    assert bytes(read_audio_data_cdr(raw)) == bytes(range(10))
    chunk = STACKS[ROS_DRIVERS].decode(AUDIO_DATA_TYPE, raw)
    assert chunk.stamp_ns == 0 and chunk.frame_id == "" and not chunk.self_describing  # stamped on receipt
    with pytest.raises(AudioFormatError, match="cut short"):
        read_audio_data_cdr(raw[:-1])
    with pytest.raises(ConfigError, match="not an audio message of mgonzs13"):
        STACKS[MGONZS13].decode(AUDIO_DATA_TYPE, raw)


@pytest.mark.parametrize("coding", ["wave", "WAVE", " Wave ", "wav", "PCM", "raw", ""])
def test_pcm_coding_formats_accepted_without_case(coding) -> None:
    from sst_ros.ros.messages import info_fields

    check_coding_format(coding)
    info = SimpleNamespace(channels=2, sample_rate=16000, sample_format="s16le", coding_format=coding)
    assert info_fields(info) == (2, 16000, "S16LE")


@pytest.mark.parametrize("coding", ["mp3", "MP3", "opus", "flac"])
def test_compressed_coding_format_refused_with_the_fix(coding) -> None:
    from sst_ros.ros.messages import info_fields

    with pytest.raises(AudioFormatError, match=r"not raw PCM.*format:=wave"):
        info_fields(SimpleNamespace(channels=2, sample_rate=16000, sample_format="S16LE", coding_format=coding))


def _pub(type_name: str, type_hash: str = "") -> SimpleNamespace:
    return SimpleNamespace(topic_type=type_name, topic_type_hash=type_hash)


def test_graph_audio_type_decides_by_name_and_hash() -> None:
    """Both stacks name a type AudioData: the type hash tells them apart."""
    from sst_ros.ros.audio_stacks import GraphAudioType, graph_audio_type

    rd, mg = STACKS[ROS_DRIVERS], STACKS[MGONZS13]
    rd_hash = audio_typestore(ROS_DRIVERS).hash_rihs01(AUDIO_DATA_TYPE)
    mg_hash = audio_typestore(MGONZS13).hash_rihs01(AUDIO_DATA_TYPE)
    assert rd_hash != mg_hash
    assert graph_audio_type([], "/a", rd).type_name is None
    assert graph_audio_type([_pub(AUDIO_DATA_STAMPED_TYPE)], "/a", rd) == GraphAudioType(AUDIO_DATA_STAMPED_TYPE)
    assert graph_audio_type([_pub(AUDIO_DATA_TYPE, rd_hash)], "/a", rd).type_name == AUDIO_DATA_TYPE
    choice = graph_audio_type([_pub(AUDIO_DATA_TYPE, rd_hash), _pub(AUDIO_DATA_STAMPED_TYPE)], "/a", rd)
    assert (
        choice.type_name == AUDIO_DATA_STAMPED_TYPE
        and "reading audio_common_msgs/msg/AudioDataStamped only" in (choice.problems[0])
    )
    other = graph_audio_type([_pub(AUDIO_STAMPED_TYPE)], "/a", rd)
    assert other.type_name is None
    assert (
        "/a carries audio_common_msgs/msg/AudioStamped of mgonzs13/audio_common, but the installed "
        "audio_common_msgs is ros-drivers/audio_common's" in other.problems[0]
    )
    plain_mg = graph_audio_type([_pub(AUDIO_DATA_TYPE, mg_hash)], "/a", rd)
    assert (
        plain_mg.type_name is None
        and "mgonzs13/audio_common's AudioData, which holds no stamp" in (plain_mg.problems[0])
    )
    back = graph_audio_type([_pub(AUDIO_DATA_STAMPED_TYPE)], "/a", mg)
    assert (
        back.type_name is None
        and "of ros-drivers/audio_common, but the installed audio_common_msgs is mgonzs13/audio_common's"
        in back.problems[0]
    )
    neither = graph_audio_type([_pub(AUDIO_DATA_TYPE, "RIHS01_" + "0" * 64)], "/a", rd)  # a third AudioData
    assert neither.type_name is None and "whose definition differs from both stacks" in neither.problems[0]
    assert graph_audio_type([_pub(AUDIO_DATA_TYPE)], "/a", rd).type_name == AUDIO_DATA_TYPE  # no hash (Humble)
    strange = graph_audio_type([_pub("std_msgs/msg/String")], "/a", rd)
    assert "not an audio message of ros-drivers/audio_common" in strange.problems[0]


def test_installed_stack_here_is_ros_drivers() -> None:
    from sst_ros.ros.audio_stacks import installed_stack

    assert installed_stack() is STACKS[ROS_DRIVERS]
