"""The causal CRNN tracker (CNN + GRU + spatial-spectrum head + activity head).

Architecture after Zhong and Dietzen 2025 (reference code): blocks of
``convs_per_block x (3x3 conv, BatchNorm, ReLU)`` followed by max pooling over frequency
(4, 2, 2, 2, 2) and, in the last block, over time (5 STFT frames of 20 ms = one 100 ms output
frame); a one-layer unidirectional GRU over the 100 ms frames; a per-frame head
``H -> h1 (tanh) -> h2 (ReLU) -> K (sigmoid)`` giving a spatial spectrum over azimuth, and an
activity output ``h2 -> 1 (sigmoid)``. With ``ModelConfig.interferer_map`` a branch of its own
``H -> h2 (tanh) -> K (sigmoid)`` maps directional non-speech interferers, and the spectrum the
network returns is the talker map times (1 - that map).

Made causal: every convolution is padded only on the *past* side in time (two frames), the
time pooling windows are aligned at multiples of ``frames_per_output`` STFT frames, and the
GRU is unidirectional. Offline :meth:`CRNN.forward` and streaming :meth:`CRNN.step` run the
same code: offline is streaming from a zero state over the whole input, so they agree to
floating-point rounding.

Width and depth come from :class:`ModelConfig`; :meth:`ModelConfig.preset` gives the CPU
default (``"cpu"``) and the paper-sized network (``"paper"``, 64 channels, GRU 256, head
512/256, about 1 M parameters) on one code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from sst_ros.errors import ConfigError
from sst_ros.model.config import ModelConfig  # re-exported: the network's shape lives beside it in the API

__all__ = ["CRNN", "INTERFERER_MAP_PREFIX", "HeadLogits", "ModelConfig", "ModelOutput", "StreamState"]

_KT = 3  # conv kernel size in time (causal: KT - 1 frames of history)

INTERFERER_MAP_PREFIX = "head_interf."
"""Start of the names of the interferer map's parameters (``ModelConfig.interferer_map``)."""


class ModelOutput(NamedTuple):
    """CRNN outputs per 100 ms frame.

    Attributes:
        spectrum: (B, T_out, K) spatial spectrum in [0, 1].
        activity: (B, T_out) source activity probability in [0, 1].
        embedding: (B, T_out, H) GRU output (the feature the adaptation aligns).
    """

    spectrum: torch.Tensor
    activity: torch.Tensor
    embedding: torch.Tensor


class HeadLogits(NamedTuple):
    """The head's outputs before their sigmoids (the training losses take these).

    Attributes:
        spectrum: (B, T_out, K) logits of the talker map.
        activity: (B, T_out) logits of the activity output.
        interferer: (B, T_out, K) logits of the interferer map; None for a network without one.
    """

    spectrum: torch.Tensor
    activity: torch.Tensor
    interferer: torch.Tensor | None = None


@dataclass
class StreamState:
    """Carried state of a stream: conv history, pooling remainders, GRU hidden state."""

    conv: list[torch.Tensor]
    pool: list[torch.Tensor]
    gru: torch.Tensor


class _CausalConv(nn.Module):
    """3x3 convolution, 'same' over frequency, causal over time (history passed in)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, (3, _KT), padding=(1, 0), bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor, prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.cat([prev, x], dim=-1)
        new_prev = z[..., z.shape[-1] - (_KT - 1) :]
        if z.shape[-1] < _KT:
            return z.new_zeros(z.shape[0], self.conv.out_channels, z.shape[2], 0), new_prev
        return F.relu(self.bn(self.conv(z))), new_prev


class _Pool(nn.Module):
    """Max pooling (freq, time); leftover time frames carried to the next call."""

    def __init__(self, fp: int, tp: int) -> None:
        super().__init__()
        self.fp, self.tp = fp, tp

    def forward(self, x: torch.Tensor, left: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.cat([left, x], dim=-1) if left.shape[-1] else x
        n = (z.shape[-1] // self.tp) * self.tp
        f_out = z.shape[2] // self.fp
        if n == 0:
            return z.new_zeros(z.shape[0], z.shape[1], f_out, 0), z
        y = F.max_pool2d(z[..., :n], (self.fp, self.tp))
        return y, z[..., n:]


class CRNN(nn.Module):
    """Causal CRNN mapping STFT features to a spatial spectrum and activity per 100 ms.

    Args:
        cfg: network shape.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        convs: list[_CausalConv] = []
        pools: list[_Pool] = []
        self._conv_shapes: list[tuple[int, int]] = []  # (c_in, n_freq) of each conv input
        self._pool_shapes: list[tuple[int, int]] = []
        self._conv_block: list[int] = []
        c_in, f = cfg.n_in_planes, cfg.n_freq
        for b, c_out in enumerate(cfg.conv_channels):
            for _ in range(cfg.convs_per_block):
                convs.append(_CausalConv(c_in, c_out))
                self._conv_shapes.append((c_in, f))
                self._conv_block.append(b)
                c_in = c_out
            pools.append(_Pool(cfg.freq_pool[b], cfg.time_pool[b]))
            self._pool_shapes.append((c_in, f))
            f //= cfg.freq_pool[b]
        self.convs = nn.ModuleList(convs)
        self.pools = nn.ModuleList(pools)
        self.gru = nn.GRU(c_in * f, cfg.gru_hidden, num_layers=cfg.gru_layers, batch_first=True)
        h1, h2 = cfg.head_hidden
        self.head1 = nn.Linear(cfg.gru_hidden, h1)
        self.head2 = nn.Linear(h1, h2)
        self.head_spec = nn.Linear(h2, cfg.grid.n_bins)
        self.head_act = nn.Linear(h2, 1)
        # the interferer map reads the embeddings through a hidden layer of its own: the talker
        # head's last layer is trained to be blind to interferers
        self.head_interf: nn.Sequential | None = None
        with torch.no_grad():  # start with low, flat maps (sparse targets)
            self.head_spec.bias.fill_(-3.0)
            if cfg.interferer_map:
                interf_out = nn.Linear(h2, cfg.grid.n_bins)
                interf_out.bias.fill_(-3.0)
                self.head_interf = nn.Sequential(nn.Linear(cfg.gru_hidden, h2), nn.Tanh(), interf_out)

    # ---- state -------------------------------------------------------------------------
    def init_state(self, batch: int = 1) -> StreamState:
        """Zero state: the start of a stream (equals the offline zero padding)."""
        p = next(self.parameters())
        conv = [p.new_zeros(batch, c, f, _KT - 1) for c, f in self._conv_shapes]
        pool = [p.new_zeros(batch, c, f, 0) for c, f in self._pool_shapes]
        gru = p.new_zeros(self.cfg.gru_layers, batch, self.cfg.gru_hidden)
        return StreamState(conv=conv, pool=pool, gru=gru)

    # ---- network -----------------------------------------------------------------------
    def _cnn(self, x: torch.Tensor, state: StreamState) -> tuple[torch.Tensor, StreamState]:
        conv_state, pool_state = list(state.conv), list(state.pool)
        i = 0
        for b, pool in enumerate(self.pools):
            while i < len(self.convs) and self._conv_block[i] == b:
                x, conv_state[i] = self.convs[i](x, conv_state[i])
                i += 1
            x, pool_state[b] = pool(x, pool_state[b])
        return x, StreamState(conv=conv_state, pool=pool_state, gru=state.gru)

    def _extract(self, x: torch.Tensor, state: StreamState) -> tuple[torch.Tensor, StreamState]:
        if x.dim() != 4 or x.shape[1] != self.cfg.n_in_planes or x.shape[2] != self.cfg.n_freq:
            raise ConfigError(
                f"CRNN expects features (B, {self.cfg.n_in_planes}, {self.cfg.n_freq}, T), got {tuple(x.shape)}"
            )
        y, state = self._cnn(x, state)
        B, C, Fo, T = y.shape
        seq = y.permute(0, 3, 1, 2).reshape(B, T, C * Fo)
        if T == 0:
            return seq.new_zeros(B, 0, self.cfg.gru_hidden), state
        h, g = self.gru(seq, state.gru)
        return h, StreamState(conv=state.conv, pool=state.pool, gru=g)

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        """Feature extractor (CNN + GRU), causal, from a zero state.

        Args:
            x: (B, 2M, n_freq, T) features.
        Returns:
            (B, T // frames_per_output, H) per-frame embeddings.
        """
        h, _ = self._extract(x, self.init_state(x.shape[0]))
        return h

    def head(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-frame head.

        Args:
            h: (B, T_out, H) embeddings.
        Returns:
            spectrum (B, T_out, K) in [0, 1] (with an interferer map: the talker map times (1 -
            the interferer map)), activity (B, T_out) in [0, 1].
        """
        return self.outputs(self.head_logits(h))

    @staticmethod
    def outputs(logits: HeadLogits) -> tuple[torch.Tensor, torch.Tensor]:
        """What :meth:`head` returns, from :meth:`head_logits`: the spectrum (B, T_out, K) in
        [0, 1], damped by the interferer map where there is one, and the activity (B, T_out)."""
        spectrum = torch.sigmoid(logits.spectrum)
        if logits.interferer is not None:
            spectrum = spectrum * torch.sigmoid(-logits.interferer)  # 1 - sigmoid(x) = sigmoid(-x)
        return spectrum, torch.sigmoid(logits.activity)

    def head_logits(self, h: torch.Tensor) -> HeadLogits:
        """The head before the sigmoids and before the interferer map damps the talker map
        (numerically stable losses, each map against its own target).

        Args:
            h: (B, T_out, H) embeddings.
        Returns:
            :class:`HeadLogits`: talker map (B, T_out, K), activity (B, T_out) and interferer map
            (B, T_out, K) or None.
        """
        z = F.relu(self.head2(torch.tanh(self.head1(h))))
        interferer = self.head_interf(h) if self.head_interf is not None else None
        return HeadLogits(self.head_spec(z), self.head_act(z).squeeze(-1), interferer)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """Offline pass over whole clips: (B, 2M, n_freq, T) -> :class:`ModelOutput`."""
        h = self.extract(x)
        spec, act = self.head(h)
        return ModelOutput(spec, act, h)

    def step(self, x: torch.Tensor, state: StreamState | None = None) -> tuple[ModelOutput, StreamState]:
        """Streaming pass over newly arrived STFT frames.

        Args:
            x: (B, 2M, n_freq, t_new) new feature frames (t_new may be 0 or not a multiple of 5).
            state: carried state (None = start of stream).
        Returns:
            outputs for the output frames completed by these frames, and the new state.
        """
        if state is None:
            state = self.init_state(x.shape[0])
        h, state = self._extract(x, state)
        spec, act = self.head(h)
        return ModelOutput(spec, act, h), state

    # ---- azimuth grid ------------------------------------------------------------------
    def bin_centers_deg(self) -> np.ndarray:
        """(K,) azimuth of each spectrum bin, degrees."""
        return self.cfg.grid.bin_centers_deg()

    def decode(self, spectrum: np.ndarray | torch.Tensor) -> np.ndarray:
        """Azimuth (degrees) of the highest peak of each spectrum row, sub-bin interpolated."""
        if isinstance(spectrum, torch.Tensor):
            spectrum = spectrum.detach().cpu().numpy()
        return self.cfg.grid.decode(spectrum)

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
