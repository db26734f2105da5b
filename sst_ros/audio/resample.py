"""Sample-rate conversion: offline (zero-phase) and streaming (causal, chunk-invariant).

The package's one offline resampler is :func:`resample` (with :func:`resample_part` for a
span of a long file, bit-identical to the same span of :func:`resample`'s output);
:class:`StreamingResampler` is its causal counterpart for streams. Both use a rational
factor ``up/down = fs_out/fs_in`` (reduced by the gcd) and the same low-pass FIR: a Kaiser
window (beta 5) over ``2 * 10 * max(up, down) + 1`` taps, cut-off at the lower Nyquist
frequency, as :func:`scipy.signal.resample_poly` designs it. Audio is (frames, channels)
float; results are float32.
"""

from __future__ import annotations

from collections.abc import Callable
from math import gcd

import numpy as np

from sst_ros.errors import AudioFormatError

__all__ = ["StreamingResampler", "resample", "resample_part", "resampled_length"]

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


def _half_len(up: int, down: int) -> int:
    """Half the low-pass length in samples at the upsampled rate (the filter design's size)."""
    return _HALF_LEN_PER_RATE * max(up, down)


def _lowpass(up: int, down: int) -> np.ndarray:
    """The anti-aliasing FIR at the upsampled rate, unit DC gain (both resamplers scale it by ``up``)."""
    from scipy.signal import firwin  # here, not at the top: importing scipy.signal costs 75 MB of memory

    return firwin(2 * _half_len(up, down) + 1, 1.0 / max(up, down), window=("kaiser", _KAISER_BETA))


def resample(audio: np.ndarray, fs_in: int, fs_out: int, *, in_input_precision: bool = False) -> np.ndarray:
    """Resample a whole recording (polyphase, zero-phase: no added delay; computed in float64).

    Args:
        audio: (frames, channels) or (frames,) float audio at ``fs_in`` Hz.
        fs_in: input rate, Hz. fs_out: output rate, Hz.
        in_input_precision: compute in the input's float precision (float32 input stays
            float32 inside) instead of float64; the simulator's speech pool uses it so that the
            simulated scenes stay those the shipped model was trained and benchmarked on.

    Returns:
        float32 (ceil(frames * fs_out / fs_in), channels); the input itself as float32 when
        the rates are equal.
    """
    x = _as_2d(audio)
    up, down = _factors(fs_in, fs_out)
    if up == down:
        return np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[0] == 0:
        return np.zeros((0, x.shape[1]), dtype=np.float32)
    h = _lowpass(up, down)
    if in_input_precision and np.issubdtype(x.dtype, np.floating):
        h = h.astype(x.dtype)  # as scipy does for its own design: the arithmetic stays in x's precision
    else:
        x = x.astype(np.float64)
    from scipy.signal import resample_poly

    y = resample_poly(x, up, down, axis=0, window=h)
    return np.ascontiguousarray(y, dtype=np.float32)


def resampled_length(n_in: int, fs_in: int, fs_out: int) -> int:
    """Length of :func:`resample`'s output for ``n_in`` input samples: ceil(n_in * fs_out / fs_in)."""
    up, down = _factors(fs_in, fs_out)
    return -(-int(n_in) * up // down)


def resample_part(
    read: Callable[[int, int], np.ndarray], n_in: int, fs_in: int, fs_out: int, start: int, stop: int
) -> np.ndarray:
    """Samples ``start:stop`` of :func:`resample` of a recording, reading only what they depend on.

    The result is bit-identical to ``resample(whole, fs_in, fs_out)[start:stop]``: the input
    span read starts on a multiple of ``down`` (so the polyphase filter keeps its phase) and
    extends past both ends of the requested span by more than the filter's half length.

    Args:
        read: ``read(a, b)`` returns input samples ``a:b`` as (b - a, channels) float.
        n_in: length of the whole input, samples at ``fs_in``.
        fs_in: input rate, Hz. fs_out: output rate, Hz.
        start, stop: the wanted output samples (at ``fs_out``), ``0 <= start <= stop``.
    Returns:
        float32 (stop - start, channels), cut short where ``stop`` passes the output's end.
    """
    up, down = _factors(fs_in, fs_out)
    if up == down:
        return np.ascontiguousarray(read(start, min(stop, n_in)), dtype=np.float32)
    margin = _half_len(up, down) // up + 2  # input samples the filter reaches on either side
    a = max(0, (start * down) // up - margin)
    a -= a % down
    b = min(int(n_in), -(-stop * down // up) + margin)
    offset = a * up // down  # output index of the span's first sample
    return resample(read(a, b), fs_in, fs_out)[start - offset : stop - offset]


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
        if self.up == self.down:  # same rate: identity
            h = np.ones(1)
        else:
            h = _lowpass(self.up, self.down) * self.up
        n_taps = h.shape[0]
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
