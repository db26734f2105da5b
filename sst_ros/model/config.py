"""The CRNN's shape: :class:`ModelConfig` (widths, pooling, GRU, head, azimuth grid).

Torch-free, so that a runtime without torch (the ONNX Runtime backend,
:mod:`sst_ros.model.onnx_runtime`) reads the same configuration from an export's metadata as
:mod:`sst_ros.model.crnn` builds the network from.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sst_ros.config_fields import check_fields
from sst_ros.errors import ConfigError
from sst_ros.model.azimuth import AzimuthGrid

__all__ = ["ModelConfig"]


@dataclass(frozen=True)
class ModelConfig:
    """CRNN shape.

    Attributes:
        n_mics: microphones M.
        n_freq: rows of each feature plane: frequency bins (STFT features) or candidate
            azimuths (SRP features); the CNN pools over this axis.
        conv_channels: output channels of each CNN block.
        freq_pool: frequency pooling factor after each block.
        time_pool: time pooling factor after each block (product = STFT frames per output frame).
        convs_per_block: 3x3 convolutions per block.
        gru_hidden: GRU hidden size H (= embedding size).
        gru_layers: GRU layers.
        head_hidden: sizes of the two hidden head layers.
        grid: azimuth grid of the spectrum output.
        in_planes: input feature planes (0 = 2M, the STFT real/imaginary planes).
        interferer_map: a second map over the same azimuth grid, of directional non-speech
            interferers (television, fan, motor); the spectrum output is then the talker map times
            (1 - the interferer map), so a peak the model judges an interferer is damped.
    """

    n_mics: int
    n_freq: int = 256
    conv_channels: tuple[int, ...] = (16, 32, 32, 32, 32)
    freq_pool: tuple[int, ...] = (4, 2, 2, 2, 2)
    time_pool: tuple[int, ...] = (1, 1, 1, 1, 5)
    convs_per_block: int = 2
    gru_hidden: int = 128
    gru_layers: int = 1
    head_hidden: tuple[int, int] = (256, 128)
    grid: AzimuthGrid = field(default_factory=AzimuthGrid)
    in_planes: int = 0
    interferer_map: bool = False

    def __post_init__(self) -> None:
        n = len(self.conv_channels)
        if n == 0 or len(self.freq_pool) != n or len(self.time_pool) != n:
            raise ConfigError(
                "model config: conv_channels, freq_pool and time_pool need one entry per block, got "
                f"{self.conv_channels}, {self.freq_pool}, {self.time_pool}"
            )
        if self.n_mics < 1 or self.convs_per_block < 1 or self.gru_hidden < 1 or self.gru_layers < 1:
            raise ConfigError(f"model config: sizes must be positive: {self}")
        if self.freq_out < 1:
            raise ConfigError(f"model config: freq_pool {self.freq_pool} reduces {self.n_freq} bins to nothing")
        if len(self.head_hidden) != 2:
            raise ConfigError("model config: head_hidden needs two sizes")

    @property
    def n_in_planes(self) -> int:
        """Feature planes the CNN takes."""
        return self.in_planes if self.in_planes > 0 else 2 * self.n_mics

    @property
    def frames_per_output(self) -> int:
        """STFT frames per output frame (5 x 20 ms = 100 ms by default)."""
        return int(math.prod(self.time_pool))

    @property
    def freq_out(self) -> int:
        """Frequency bins left after the CNN."""
        f = self.n_freq
        for p in self.freq_pool:
            f //= p
        return f

    @classmethod
    def preset(cls, name: str, n_mics: int, grid: AzimuthGrid | None = None, **overrides: Any) -> ModelConfig:
        """A named size: ``"cpu"`` (the shipped default), ``"tiny"`` (tests) or ``"paper"``."""
        sizes: dict[str, dict[str, Any]] = {
            "cpu": {},
            "tiny": {"conv_channels": (8, 8, 8, 8, 8), "gru_hidden": 32, "head_hidden": (32, 32)},
            "paper": {"conv_channels": (64,) * 5, "gru_hidden": 256, "head_hidden": (512, 256)},
        }
        if name not in sizes:
            raise ConfigError(f"unknown model preset '{name}'; choose one of {sorted(sizes)}")
        kw = {**sizes[name], **overrides}
        if grid is not None:
            kw["grid"] = grid
        return cls(n_mics=n_mics, **kw)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (lists, not tuples) for checkpoints and YAML."""
        d = asdict(self)
        for k in ("conv_channels", "freq_pool", "time_pool", "head_hidden"):
            d[k] = list(d[k])
        if not self.interferer_map:  # absent when off: versions before the field still read the file
            del d["interferer_map"]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown fields are a :class:`ConfigError`."""
        d = check_fields(cls, data, "model config")
        for k in ("conv_channels", "freq_pool", "time_pool", "head_hidden"):
            if k in d:
                d[k] = tuple(int(v) for v in d[k])
        if isinstance(d.get("grid"), dict):
            d["grid"] = AzimuthGrid.from_dict(d["grid"])
        return cls(**d)

    def with_grid(self, grid: AzimuthGrid) -> ModelConfig:
        """Copy with another azimuth grid."""
        return replace(self, grid=grid)
