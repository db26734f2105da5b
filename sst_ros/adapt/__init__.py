"""Unsupervised adaptation of the tracker to the robot's room (importance-weighted adversarial).

Modules (import from them directly; this package does not import torch eagerly):

* :mod:`sst_ros.adapt.grl`: gradient reversal (autograd function, layer, DANN schedule).
* :mod:`sst_ros.adapt.discriminator`: GRU domain discriminator over packed true-length sequences.
* :mod:`sst_ros.adapt.weights`: importance weights growing with P(target | features), mean 1.
* :mod:`sst_ros.adapt.losses`: (weighted) domain-adversarial BCE.
* :mod:`sst_ros.adapt.batches`: random labelled synthetic crops, padded feature batches with true lengths.
* :mod:`sst_ros.adapt.config`: the typed configuration (variants, selection criteria).
* :mod:`sst_ros.adapt.evaluation`: task loss per clip, label-free diagnostics, oracle metrics.
* :mod:`sst_ros.adapt.selection`: label-free snapshot selection (IWCV) and the run's result.
* :mod:`sst_ros.adapt.state`: the resumable state of a run.
* :mod:`sst_ros.adapt.trainer`: the trainer (FE_s, FE_t, head, D, D0; source_only / dann / iwan).
* :mod:`sst_ros.adapt.source_clips`: the labelled synthetic clips when none are given
  (simulated like the model's training scenes, cached).
* :mod:`sst_ros.adapt.run`: adapt a checkpoint and write the adapted one with provenance.
* :mod:`sst_ros.adapt.summary`: the closing summary of ``sst adapt``.
* :mod:`sst_ros.adapt.cli`: ``sst adapt``.

Unlabelled target sets (rosbag2 bags or WAV folders) are data: :mod:`sst_ros.data.target_set`.
Domain label convention throughout: target (real) = 1, source (synthetic) = 0.
"""

__all__: list[str] = []
