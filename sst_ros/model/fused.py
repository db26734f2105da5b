"""The inference form of a trained :class:`~sst_ros.model.crnn.CRNN`: the same streaming step, cheaper.

:meth:`CRNN.step <sst_ros.model.crnn.CRNN.step>` serves training as well, so it keeps BatchNorm
as a layer and dispatches through ``nn.Module`` calls. At 100 ms per call (the tracker node's
rhythm) that overhead, not the arithmetic, is most of the cost. :class:`FusedCRNN` is built
from an eval-mode network once per stream and runs the same computation with:

* BatchNorm folded into each convolution (``w * g / sqrt(var + eps)`` and a bias): one op
  instead of two;
* the channels-last memory layout, which sends PyTorch's CPU convolution to oneDNN's direct
  kernels (about 2.3x faster for these small maps than the default layout);
* functional calls (no module dispatch) and in-place ReLU.

It never writes the network's weights. The convolutions' weights (BatchNorm folded in) are
copied when it is built, while the GRU and the heads are read from the network at every call,
so after a weight change build a new one (:class:`LoadedModel
<sst_ros.model.checkpoint.LoadedModel>` builds one at the start of every stream). Its state is
a :class:`~sst_ros.model.crnn.StreamState`, so streams can be continued by either form; the
outputs agree with :meth:`CRNN.step` in eval mode to float rounding (about 1e-6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from sst_ros.model.crnn import CRNN, ModelOutput, StreamState

__all__ = ["FoldedBlock", "FusedCRNN", "FusedState", "folded_blocks"]

_CL = torch.channels_last


@dataclass
class FusedState(StreamState):
    """A :class:`StreamState` that also carries the :class:`FusedCRNN` that made it, so a stream
    keeps one engine (built at its start) across calls."""

    engine: FusedCRNN | None = None


@dataclass(frozen=True)
class FoldedBlock:
    """One CNN block of an eval-mode :class:`CRNN` with BatchNorm folded into its convolutions.

    Attributes:
        convs: (weight, bias) per convolution, in order: weight (C_out, C_in, 3, 3) over
            (azimuth, time) as in the network, bias (C_out,); copies, not the network's tensors.
        freq_pool, time_pool: the block's max-pooling factors over azimuth and time.
    """

    convs: list[tuple[torch.Tensor, torch.Tensor]]
    freq_pool: int
    time_pool: int


def folded_blocks(model: CRNN) -> list[FoldedBlock]:
    """The CNN of an eval-mode ``model`` as :class:`FoldedBlock` s: ``w * g / sqrt(var + eps)`` and
    the bias ``beta - mean * g / sqrt(var + eps)`` per convolution (one op instead of two).

    Raises:
        ValueError: ``model`` is in training mode (training-mode BatchNorm has no fixed affine form).
    """
    if model.training:
        raise ValueError("folding BatchNorm needs its running statistics: call model.eval() first")
    blocks = []
    convs = iter(model.convs)
    with torch.no_grad():
        for pool in model.pools:
            layers = []
            for _ in range(model.cfg.convs_per_block):
                layer = next(convs)
                conv, bn = cast(nn.Conv2d, layer.conv), cast(nn.BatchNorm2d, layer.bn)
                mean, var = cast(torch.Tensor, bn.running_mean), cast(torch.Tensor, bn.running_var)
                scale = bn.weight / torch.sqrt(var + bn.eps)  # (C_out,)
                w = conv.weight * scale[:, None, None, None]
                b = bn.bias - mean * scale
                layers.append((w.detach().clone(), b.detach().clone()))
            blocks.append(FoldedBlock(layers, int(cast(int, pool.fp)), int(cast(int, pool.tp))))
    return blocks


class FusedCRNN:
    """Inference-only streaming step of an eval-mode :class:`CRNN` (see the module docstring).

    Args:
        model: the network; its BatchNorm running statistics are folded in, so it must be in
            eval mode (training-mode BatchNorm has no fixed affine form).
    Raises:
        ValueError: ``model`` is in training mode.
    """

    def __init__(self, model: CRNN) -> None:
        self.model = model
        self._blocks = [
            ([(w.contiguous(memory_format=_CL), b) for w, b in block.convs], block.freq_pool, block.time_pool)
            for block in folded_blocks(model)
        ]

    def init_state(self, batch: int = 1) -> FusedState:
        """Zero state in the channels-last layout (the start of a stream)."""
        s = self.model.init_state(batch)
        return FusedState(
            conv=[c.contiguous(memory_format=_CL) for c in s.conv],
            pool=[p.contiguous(memory_format=_CL) for p in s.pool],
            gru=s.gru,
            engine=self,
        )

    @torch.inference_mode()
    def step(self, x: torch.Tensor, state: StreamState | None = None) -> tuple[ModelOutput, FusedState]:
        """:meth:`CRNN.step` on new feature frames ``x`` (B, planes, rows, t_new): the same outputs,
        and the same state as a :class:`FusedState` naming this engine."""
        if state is None:
            state = self.init_state(x.shape[0])
        x = x.contiguous(memory_format=_CL)
        conv_state, pool_state = list(state.conv), list(state.pool)
        i = 0
        for b, (layers, fp, tp) in enumerate(self._blocks):
            for w, bias in layers:
                z = torch.cat([conv_state[i], x], dim=-1)
                conv_state[i] = z[..., z.shape[-1] - 2 :]
                if z.shape[-1] < 3:
                    x = z.new_zeros(z.shape[0], w.shape[0], z.shape[2], 0)
                else:
                    x = F.conv2d(z, w, bias, padding=(1, 0)).relu_()
                i += 1
            z = torch.cat([pool_state[b], x], dim=-1) if pool_state[b].shape[-1] else x
            n = (z.shape[-1] // tp) * tp
            if n == 0:
                x, pool_state[b] = z.new_zeros(z.shape[0], z.shape[1], z.shape[2] // fp, 0), z
            else:
                x, pool_state[b] = F.max_pool2d(z[..., :n], (fp, tp)), z[..., n:]
        model = self.model
        B, C, Fo, T = x.shape
        if T == 0:
            h = x.new_zeros(B, 0, model.cfg.gru_hidden)
            gru = state.gru
        else:
            h, gru = model.gru(x.permute(0, 3, 1, 2).reshape(B, T, C * Fo), state.gru)
        spec, act = model.head(h)
        return ModelOutput(spec, act, h), FusedState(conv=conv_state, pool=pool_state, gru=gru, engine=self)
