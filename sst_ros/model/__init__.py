"""The causal streaming CRNN tracker.

Modules (import from them directly; this package does not import torch eagerly):

* :mod:`sst_ros.model.features`: causal, chunk-invariant STFT features.
* :mod:`sst_ros.model.azimuth`: azimuth grid, Gaussian targets, decoding, peaks.
* :mod:`sst_ros.model.crnn`: the network (offline ``forward`` and streaming ``step``).
* :mod:`sst_ros.model.checkpoint`: save/load with geometry, configs and provenance.
* :mod:`sst_ros.model.stream`: :class:`StreamingTracker` (audio chunks -> DoaFrame per 100 ms).
* :mod:`sst_ros.model.infer`: :func:`predict_audio` on whole recordings.
"""

__all__: list[str] = []
