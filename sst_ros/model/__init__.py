"""The causal streaming CRNN tracker.

Modules (import from them directly; this package does not import torch eagerly). Torch-free,
so that a robot runs an ONNX export without torch:

* :mod:`sst_ros.model.features`: causal, chunk-invariant STFT features (numpy).
* :mod:`sst_ros.model.azimuth`: azimuth grid, Gaussian targets, decoding, peaks.
* :mod:`sst_ros.model.config`: the network's shape (:class:`ModelConfig`).
* :mod:`sst_ros.model.runtime`: :func:`load_model` (a ``.pt`` checkpoint with torch, or an
  ``.onnx`` export with onnxruntime) and the :class:`TrackerModel` interface both satisfy.
* :mod:`sst_ros.model.stream`: :class:`StreamingTracker` (audio chunks -> DoaFrame per 100 ms).
* :mod:`sst_ros.model.infer`: :func:`predict_audio` on whole recordings.
* :mod:`sst_ros.model.onnx_format`: what an export carries besides its graph (JSON metadata).
* :mod:`sst_ros.model.onnx_runtime`: the ONNX Runtime backend (:class:`OnnxModel`).
* :mod:`sst_ros.model.onnx_cli`: ``sst export --onnx``.

With torch:

* :mod:`sst_ros.model.crnn`: the network (offline ``forward`` and streaming ``step``).
* :mod:`sst_ros.model.checkpoint`: save/load with geometry, configs and provenance (``LoadedModel``).
* :mod:`sst_ros.model.onnx_export`: the checked export (also needs onnx and onnxscript).
"""

__all__: list[str] = []
