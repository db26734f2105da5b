"""Sample-rate conversion: offline (zero-phase) and streaming (causal, chunk-invariant).

Both use a rational factor ``up/down = fs_out/fs_in`` (reduced by the gcd) and a
Kaiser-windowed low-pass FIR designed like :func:`scipy.signal.resample_poly`.
Audio is (frames, channels) float; results are float32.
"""

from __future__ import annotations

from math import gcd

import numpy as np
from scipy.signal import firwin, resample_poly

from sst_ros.errors import AudioFormatError

__all__ = ["StreamingResampler", "resample"]

_KAISER_BETA = 5.0
_HALF_LEN_PER_RATE = 10


def _factors(fs_in: float, fs_out: float) -> tuple[int, int]:
    if int(fs_in) != fs_in or int(fs_out) != fs_out or fs_in <= 0 or fs_out <= 0:
        raise AudioFormatError(
            f"sample rates must be positive integers in Hz, got fs_in={fs_in}, fs_out={fs_out}"
        )
    g = gcd(int(fs_in), int(fs_out))
    return int(fs_out) // g, int(fs_in) // g


def _as_2d(audio: np.ndarray) -> np.ndarray:
    x = np.asarray(audio)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise AudioFormatError(f"expected (frames, channels) audio, got shape {x.shape}")
    return x


def resample(audio: np.ndarray, fs_in: int, fs_out: int) -> np.ndarray:
    """Resample a whole recording (polyphase, zero-phase: no added delay).

    Args:
        audio: (frames, channels) or (frames,) float audio at ``fs_in`` Hz.
        fs_in: input rate, Hz. fs_out: output rate, Hz.

    Returns:
        float32 (ceil(frames * fs_out / fs_in), channels).
    """
    x = _as_2d(audio)
    up, down = _factors(fs_in, fs_out)
    if up == down:
        return np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[0] == 0:
        return np.zeros((0, x.shape[1]), dtype=np.float32)
    y = resample_poly(x.astype(np.float64), up, down, axis=0, window=("kaiser", _KAISER_BETA))
    return np.ascontiguousarray(y, dtype=np.float32)


class StreamingResampler:
    """Causal polyphase resampler whose output does not depend on how input is chunked.

    Output sample ``n`` (at ``fs_out``) is ``sum_k h[k] * x_up[n*down - k]`` with ``x_up`` the
    input zero-stuffed by ``up``; it is emitted as soon as the newest input it needs has
    arrived, and computed by the same arithmetic whatever the chunking, so concatenated
    outputs are bit-identical for any chunk sizes. The filter delays the signal by
    :attr:`delay_s` seconds (linear phase); the offline :func:`resample` has no delay.

    Args:
        fs_in: input rate, Hz. fs_out: output rate, Hz. n_channels: channels per frame.
    """

    def __init__(self, fs_in: int, fs_out: int, n_channels: int) -> None:
        self.up, self.down = _factors(fs_in, fs_out)
        if int(n_channels) < 1:
            raise AudioFormatError(f"n_channels must be >= 1, got {n_channels}")
        self.fs_in, self.fs_out, self.n_channels = int(fs_in), int(fs_out), int(n_channels)
        max_rate = max(self.up, self.down)
        if max_rate == 1:  # same rate: identity
            n_taps, h = 1, np.ones(1)
        else:
            n_taps = 2 * _HALF_LEN_PER_RATE * max_rate + 1
            h = firwin(n_taps, 1.0 / max_rate, window=("kaiser", _KAISER_BETA)) * self.up
        self._k = -(-n_taps // self.up)  # taps per phase
        h = np.concatenate([h, np.zeros(self._k * self.up - n_taps)])
        # polyphase matrix: phase p, tap j -> h[p + j*up]
        self._poly = h.reshape(self._k, self.up).T.copy()  # (up, K)
        self._group_delay_up = (n_taps - 1) / 2.0
        self.reset()

    @property
    def delay_s(self) -> float:
        """Delay of the output relative to the input, seconds."""
        return self._group_delay_up / (self.up * self.fs_in)

    def reset(self) -> None:
        """Forget the history (start a new stream)."""
        self._hist = np.zeros((self._k - 1, self.n_channels), dtype=np.float64)
        self._n_in = 0  # input frames consumed since reset
        self._n_out = 0  # output frames produced since reset

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Resample the next chunk.

        Args:
            chunk: (n, n_channels) float audio at ``fs_in`` (n may be 0).

        Returns:
            float32 (m, n_channels) at ``fs_out``; m varies with the chunk boundaries.
        """
        x = _as_2d(chunk)
        if x.shape[1] != self.n_channels:
            raise AudioFormatError(
                f"StreamingResampler built for {self.n_channels} channels got {x.shape[1]}; make a new one"
            )
        if self.up == self.down:
            self._n_in += x.shape[0]
            return np.ascontiguousarray(x, dtype=np.float32)
        buf = np.concatenate([self._hist, x.astype(np.float64)])  # buf[0] is input index n_in-(K-1)
        base = self._n_in - (self._k - 1)
        n_in_total = self._n_in + x.shape[0]
        # outputs n whose newest input floor(n*down/up) has arrived: n*down < n_in_total*up
        n_end = (n_in_total * self.up + self.down - 1) // self.down
        n = np.arange(self._n_out, n_end, dtype=np.int64)
        y = np.zeros((n.size, self.n_channels), dtype=np.float64)
        if n.size:
            pos = n * self.down
            i0 = pos // self.up - base
            phase = pos % self.up
            for j in range(self._k):
                y += self._poly[phase, j][:, None] * buf[i0 - j]
        self._n_out = int(n_end)
        self._n_in = n_in_total
        self._hist = buf[buf.shape[0] - (self._k - 1) :] if self._k > 1 else buf[:0]
        return y.astype(np.float32)
