"""Geometry and REP-103 angle conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sst_ros.errors import AudioFormatError, ConfigError
from sst_ros.geometry import (
    MicArray,
    angular_distance_deg,
    az_el_from_vector,
    load_array,
    quaternion_from_az_el,
    unit_vector,
    wrap_deg,
)


def _rotate(q: tuple[float, float, float, float], v: np.ndarray) -> np.ndarray:
    """Rotate v by quaternion q = (x, y, z, w)."""
    x, y, z, w = q
    u = np.array([x, y, z])
    return 2 * np.dot(u, v) * u + (w * w - np.dot(u, u)) * v + 2 * w * np.cross(u, v)


@pytest.mark.parametrize("az_deg", [0.0, 45.0, 135.0, 180.0, -135.0, -45.0, -90.0])
@pytest.mark.parametrize("el_deg", [-30.0, 0.0, 40.0])
def test_pose_x_axis_points_at_source(az_deg: float, el_deg: float) -> None:
    q = quaternion_from_az_el(math.radians(az_deg), math.radians(el_deg))
    assert abs(np.linalg.norm(q) - 1.0) < 1e-12
    x_axis = _rotate(q, np.array([1.0, 0.0, 0.0]))
    np.testing.assert_allclose(x_axis, unit_vector(math.radians(az_deg), math.radians(el_deg)), atol=1e-12)


def test_azimuth_convention_rep103() -> None:
    # +y (left) is +90 degrees, behind is 180, right is -90.
    az, el = az_el_from_vector(np.array([[0, 1, 0], [-1, 0, 0], [0, -1, 0], [1, 0, 1]], dtype=float))
    np.testing.assert_allclose(np.degrees(az), [90, 180, -90, 0])
    np.testing.assert_allclose(np.degrees(el), [0, 0, 0, 45])


def test_wrap_and_distance() -> None:
    assert wrap_deg(180.0) == 180.0
    assert wrap_deg(-180.0) == 180.0
    assert wrap_deg(370.0) == pytest.approx(10.0)
    assert angular_distance_deg(179.0, -179.0) == pytest.approx(2.0)
    np.testing.assert_allclose(angular_distance_deg(np.array([0.0, 350.0]), np.array([10.0, 0.0])), [10.0, 10.0])


def test_default_array_loads() -> None:
    arr = load_array("respeaker_usb_v2")
    assert arr.n_mics == 4 and arr.n_input_channels == 4
    assert arr.aperture_m == pytest.approx(0.064)
    six = load_array("respeaker_usb_v2_6ch")
    audio = np.arange(12, dtype=np.float32).reshape(2, 6)
    np.testing.assert_array_equal(six.microphone_audio(audio), audio[:, 1:5])
    # Four channels on a six-channel stream's array: already the microphones.
    np.testing.assert_array_equal(six.microphone_audio(audio[:, 1:5]), audio[:, 1:5])
    with pytest.raises(AudioFormatError, match="has 5 channels.*6-channel stream or 4 microphone channels"):
        six.microphone_audio(audio[:, :5])


def test_channel_order_wins_when_counts_are_equal() -> None:
    """A permuted wiring with as many input channels as microphones is always applied."""
    data = load_array("respeaker_usb_v2").to_dict()
    data["channel_order"] = [1, 0, 3, 2]
    swapped = MicArray.from_dict(data)
    stream = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(swapped.microphone_audio(stream), stream[:, [1, 0, 3, 2]])
    assert swapped.geometry_mismatch(load_array("respeaker_usb_v2")) is None
    assert "has 6 microphones" in (swapped.geometry_mismatch(load_array("respeaker_6mic_circular")) or "")
    np.testing.assert_array_equal(swapped.microphones_only().microphone_audio(stream), stream)
    np.testing.assert_array_equal(swapped.device_stream(swapped.microphone_audio(stream)), stream)
    six = load_array("respeaker_usb_v2_6ch")
    wide = six.device_stream(stream)
    np.testing.assert_array_equal(wide[:, [0, 5]], 0.0)
    np.testing.assert_array_equal(six.microphone_audio(wide), stream)


def test_linear_array_axis() -> None:
    pair = MicArray("pair", np.array([[0, 0.07, 0], [0, -0.07, 0]]), (0, 1), 2)
    assert pair.is_linear and pair.axis_deg in (90.0, -90.0)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "a", "microphones_m": [[0, 0, 0]]}, "at least 2 microphones"),
        ({"name": "a", "microphones_m": [[0, 0, 0], [0, 0, 0]]}, "coincide"),
        ({"name": "a", "microphones_m": [[0, 0, 0], [32, 0, 0]]}, "must be in metres"),
        ({"name": "a", "microphones_m": [[0, 0], [1, 0]]}, "microphones_m"),
        ({"name": "a"}, "missing field 'microphones_m'"),
        ({"name": "a", "microphones_m": [[0, 0, 0], [0.1, 0, 0]], "channel_order": [0]}, "channel_order"),
    ],
)
def test_malformed_arrays_rejected(data: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        load_array(data)


def test_unknown_array_name_lists_shipped(tmp_path) -> None:
    with pytest.raises(ConfigError, match="respeaker_usb_v2"):
        load_array("no_such_array")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_array(bad)


def test_array_equality_by_value() -> None:
    a = load_array("respeaker_usb_v2")
    b = MicArray.from_dict(a.to_dict())
    assert a == b and hash(a) == hash(b)
    assert a != load_array("respeaker_usb_v2_6ch")
