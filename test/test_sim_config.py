"""Scene and array configs: defaults load, bad configs and impossible ranges name the field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from sst_ros.cli import main as sst_main
from sst_ros.errors import ConfigError
from sst_ros.geometry import array_config_dir, load_array
from sst_ros.sim.config import SceneConfig, default_config_path, load_scene_config


def test_default_config_loads_and_round_trips() -> None:
    cfg = load_scene_config()
    assert cfg.sample_rate_hz == 16000
    assert cfg.room.rt60_s == (0.2, 0.8)
    assert cfg.array.height_m == (0.3, 1.5)
    again = SceneConfig.from_dict(cfg.to_dict())
    assert again.to_dict() == cfg.to_dict()
    assert default_config_path().is_file()


def test_partial_override_keeps_other_defaults(tmp_path: Path) -> None:
    p = tmp_path / "scene.yaml"
    p.write_text(yaml.safe_dump({"room": {"rt60_s": [0.5, 0.6]}, "duration_s": 4.0}))
    cfg = load_scene_config(p)
    assert cfg.room.rt60_s == (0.5, 0.6) and cfg.duration_s == 4.0
    assert cfg.room.size_min_m == (3.0, 3.0, 2.5)


@pytest.mark.parametrize(
    "override, field",
    [
        ({"room": {"rt60_s": [0.8, 0.2]}}, "room.rt60_s"),
        ({"room": {"rt60_s": [0.0, 0.5]}}, "room.rt60_s"),
        ({"room": {"rt60_s": "long"}}, "room.rt60_s"),
        ({"room": {"rt60": [0.2, 0.5]}}, "room.rt60"),
        ({"room": {"size_min_m": [11.0, 3.0, 2.5]}}, "room.size_min_m"),
        ({"room": {"size_max_m": [10.0, 8.0]}}, "room.size_max_m"),
        ({"room": {"ism_max_order": 2.5}}, "room.ism_max_order"),
        ({"noise": {"snr_db": [10.0]}}, "noise.snr_db"),
        ({"noise": {"types": {"purple": 1.0}}}, "noise.types"),
        ({"noise": {"types": {"white": -1.0}}}, "noise.types.white"),
        ({"noise": {"field": "planar"}}, "noise.field"),
        ({"source": {"static_prob": 1.5}}, "source.static_prob"),
        ({"source": {"height_m": [1.0, 3.0]}}, "source.height_m"),
        ({"source": {"min_distance_m": 7.0}}, "source.min_distance_m"),
        ({"array": {"height_m": [0.3, 2.6]}}, "array.height_m"),
        ({"array": {"wall_margin_m": 1.6}}, "array.wall_margin_m"),
        ({"array": {"position_error_m": 0.05}}, "array.position_error_m"),
        ({"speech": {"pause_s": [-1.0, 1.0]}}, "speech.pause_s"),
        ({"labels": {"active_min_fraction": 2.0}}, "labels.active_min_fraction"),
        ({"sample_rate_hz": "16k"}, "sample_rate_hz"),
        ({"room": [1, 2]}, "room"),
        ({"interferers": {"fan_prob": True}}, "interferers.fan_prob"),
    ],
)
def test_bad_scene_configs_name_the_field(override: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_scene_config(override)
    assert f"'{field}'" in str(info.value)


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("room: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_scene_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_scene_config(tmp_path / "missing.yaml")


SHIPPED = ["respeaker_usb_v2", "respeaker_6mic_circular", "minidsp_uma8", "head_pair_2mic", "realman_9mic"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_arrays_load_with_citation(name: str) -> None:
    arr = load_array(name)
    assert arr.name == name
    assert len(arr.source) > 20  # vendor documentation cited
    assert arr.aperture_m < 0.3
    text = (array_config_dir() / f"{name}.yaml").read_text()
    assert text.lstrip().startswith("#")  # layout notes above the data


@pytest.mark.parametrize(
    "name, n_mics, radius_m",
    [("respeaker_6mic_circular", 6, 0.0463), ("minidsp_uma8", 7, 0.043), ("realman_9mic", 9, 0.03)],
)
def test_circular_layouts(name: str, n_mics: int, radius_m: float) -> None:
    arr = load_array(name)
    r = np.linalg.norm(arr.positions_m[:, :2], axis=1)
    ring = r[r > 1e-6]
    assert arr.n_mics == n_mics
    np.testing.assert_allclose(ring, radius_m, atol=2e-4)
    az = np.sort(np.degrees(np.arctan2(arr.positions_m[r > 1e-6, 1], arr.positions_m[r > 1e-6, 0])))
    np.testing.assert_allclose(np.diff(az), 360.0 / ring.size, atol=0.5)


def test_head_pair_is_linear_left_right() -> None:
    arr = load_array("head_pair_2mic")
    assert arr.is_linear and arr.n_mics == 2
    assert arr.positions_m[0, 1] > 0 > arr.positions_m[1, 1]  # channel 0 = left (+y)


@pytest.mark.parametrize(
    "mics, needle",
    [
        ([[0.0, 0.0, 0.0]], "at least 2 microphones"),
        ([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.03, 0.0, 0.0]], "coincide"),
        ([[32.0, 0.0, 0.0], [0.0, 32.0, 0.0], [-32.0, 0.0, 0.0]], "metres"),
        ([[0.0, 0.0], [0.1, 0.0]], "microphones_m"),
        ("abc", "microphones_m"),
    ],
)
def test_malformed_array_configs_rejected(tmp_path: Path, mics: object, needle: str) -> None:
    p = tmp_path / "arr.yaml"
    p.write_text(yaml.safe_dump({"name": "bad", "microphones_m": mics}))
    with pytest.raises(ConfigError, match=needle):
        load_array(p)


def test_cli_rejects_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"room": {"rt60_s": [0.9, 0.1]}}))
    rc = sst_main(["simulate", "--config", str(bad), "--n", "1", "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "room.rt60_s" in capsys.readouterr().err
    rc = sst_main(["simulate", "--n", "0", "--out", str(tmp_path / "o")])
    assert rc == 2
    rc = sst_main(["simulate", "--array", "no_such_array", "--n", "1", "--out", str(tmp_path / "o")])
    assert rc == 2


def test_every_scene_field_is_documented_in_default_yaml() -> None:
    from sst_ros.sim.config import _SCHEMA

    lines = default_config_path().read_text().splitlines()
    for dotted in _SCHEMA:
        *sections, leaf = dotted.split(".")
        # The field's line (under its section, if any) carries a comment.
        start = 0
        for section in sections:
            start = next(i for i, line in enumerate(lines) if line.startswith(f"{section}:"))
        line = next(line for line in lines[start:] if line.strip().startswith(f"{leaf}:"))
        assert "#" in line, f"config/sim/default.yaml: field '{dotted}' has no comment"


def test_new_scene_fields_default_to_off() -> None:
    cfg = load_scene_config()
    assert cfg.labels.multi_source is False
    assert cfg.talkers.count_weights == (0.0, 1.0, 0.0, 0.0)
    assert cfg.source.max_elevation_deg is None
    assert cfg.interferers.tv_prob == cfg.interferers.motor_prob == 0.0
    assert cfg.noise.directional_babble_prob == cfg.room.hybrid_prob == cfg.array.mic_response_db == 0.0
    again = SceneConfig.from_dict(cfg.to_dict())
    assert again.source.max_elevation_deg is None and again.talkers.count_weights == (0.0, 1.0, 0.0, 0.0)
