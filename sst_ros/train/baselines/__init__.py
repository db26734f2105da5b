"""Classical DOA baselines evaluated side by side with the CRNN tracker.

One file per algorithm, a shared template (:class:`DoaBaseline`) and a name -> class registry
(:data:`BASELINES`) that the evaluation and the tests loop over.
"""

from __future__ import annotations

from sst_ros.errors import ConfigError
from sst_ros.train.baselines.base import (
    BaselineConfig,
    DoaBaseline,
    energy_activity,
    smooth_spectra,
)
from sst_ros.train.baselines.music import Music
from sst_ros.train.baselines.normmusic import NormMusic
from sst_ros.train.baselines.srp_phat import SrpPhat

__all__ = [
    "BASELINES",
    "BaselineConfig",
    "DoaBaseline",
    "Music",
    "NormMusic",
    "SrpPhat",
    "available_baselines",
    "energy_activity",
    "get_baseline",
    "parse_baseline_names",
    "smooth_spectra",
]

BASELINES: dict[str, type[DoaBaseline]] = {cls.name: cls for cls in (SrpPhat, Music, NormMusic)}


def available_baselines() -> list[str]:
    """Registered baseline names, in registry order."""
    return list(BASELINES)


def get_baseline(name: str, cfg: BaselineConfig | None = None) -> DoaBaseline:
    """Instantiate a registered baseline by name (case-insensitive; ``srp-phat`` == ``srp_phat``)."""
    key = name.strip().lower().replace("-", "_")
    if key not in BASELINES:
        raise ConfigError(f"unknown baseline '{name}'; available: {', '.join(BASELINES)}")
    return BASELINES[key](cfg)


def parse_baseline_names(spec: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Normalise a comma-separated string or list of names; ``none``/empty -> [], ``all`` -> every one."""
    if spec is None:
        return []
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for item in items:
        key = item.strip().lower().replace("-", "_")
        if not key or key == "none":
            continue
        if key == "all":
            names.extend(n for n in BASELINES if n not in names)
            continue
        if key not in BASELINES:
            raise ConfigError(f"unknown baseline '{item.strip()}'; available: {', '.join(BASELINES)}, all, none")
        if key not in names:
            names.append(key)
    return names
