"""The tracker's parameter table: deprecated names are checked like the new ones (no ROS graph)."""

from __future__ import annotations

import pytest

from sst_ros.errors import ConfigError
from sst_ros.ros.tracker_params import PARAMETERS, RENAMED, renamed_value


def test_renamed_values_take_the_new_names_type_and_range() -> None:
    assert renamed_value("max_sources", 3, PARAMETERS["max_peaks"].default) == 3
    assert renamed_value("peak_threshold", 0, PARAMETERS["threshold"].default) == 0.0  # an int for a float
    assert isinstance(renamed_value("peak_threshold", 0, PARAMETERS["threshold"].default), float)
    assert set(RENAMED.values()) <= set(PARAMETERS)


@pytest.mark.parametrize(
    ("old", "value", "given_new", "expected"),
    [
        ("max_sources", 20, None, r"'max_sources' \(deprecated, now 'max_peaks'\) = 20 is outside \[1, 8\]"),
        ("death_frames", 5000, None, r"= 5000 is outside \[1, 1000\]"),
        ("max_sources", "abc", None, r"must be an integer, got 'abc'"),
        ("max_sources", 2.7, None, r"must be an integer, got 2.7"),
        ("peak_threshold", True, None, r"must be a number, got True"),
        ("max_sources", 2, 4, r"'max_sources' \(deprecated\) and 'max_peaks' are both given"),
    ],
)
def test_bad_renamed_values_are_named(old: str, value: object, given_new: object, expected: str) -> None:
    new_value = PARAMETERS[RENAMED[old]].default if given_new is None else given_new
    with pytest.raises(ConfigError, match=expected):
        renamed_value(old, value, new_value)
