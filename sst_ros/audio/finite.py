"""Non-finite samples (NaN, +-Inf) in audio: count them and replace them by silence.

One NaN sample entering the model poisons the GRU state, and with it every later output
frame; a zero sample only costs the frames around it. Every place where audio enters
inference (:func:`sst_ros.model.infer.predict_audio`, ``sst evaluate``, the tracker node's
pipeline) cleans it with :func:`finite_audio` and reports the count.
"""

from __future__ import annotations

import numpy as np

__all__ = ["finite_audio", "nonfinite_message"]


def finite_audio(x: np.ndarray) -> tuple[np.ndarray, int]:
    """``x`` with every NaN / +-Inf sample replaced by 0, and how many there were.

    Args:
        x: audio of any shape, e.g. (frames, channels), float (full scale [-1, 1)) or integer.
    Returns:
        (audio, n_bad): ``audio`` is ``x`` itself (as an array, not copied) when every sample is
        finite, otherwise a copy of the same shape and dtype with the bad samples set to 0;
        ``n_bad`` is the number of samples replaced (0 when none).
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.inexact):
        return x, 0  # integer PCM cannot hold NaN or Inf
    finite = np.isfinite(x)
    n_bad = int(finite.size - np.count_nonzero(finite))
    if n_bad == 0:
        return x, 0
    return np.where(finite, x, x.dtype.type(0)), n_bad


def nonfinite_message(source: str, n_bad: int, n_samples: int) -> str:
    """The warning text for ``n_bad`` replaced samples out of ``n_samples`` in ``source``."""
    return (
        f"{source}: {n_bad} of {n_samples} samples are NaN or infinite; they were replaced by 0 (silence) so the "
        "model's state stays finite; check the recording or the program that wrote it"
    )
