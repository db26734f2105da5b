"""Unsupervised adaptation of the tracker to the robot's room (importance-weighted adversarial).

Modules (import from them directly; this package does not import torch eagerly):

* :mod:`sst_ros.adapt.grl`: gradient reversal (autograd function, layer, DANN schedule).
* :mod:`sst_ros.adapt.discriminator`: GRU domain discriminator over packed true-length sequences.
* :mod:`sst_ros.adapt.weights`: importance weights growing with P(target | features), mean 1.
* :mod:`sst_ros.adapt.losses`: (weighted) domain-adversarial BCE.
* :mod:`sst_ros.adapt.target_data`: unlabelled target sets from rosbag2 bags or WAV folders.
* :mod:`sst_ros.adapt.batches`: labelled synthetic clips, padded feature batches with true lengths.
* :mod:`sst_ros.adapt.iwan`: the trainer (FE_s, FE_t, head, D, D0; source_only / dann / iwan).
* :mod:`sst_ros.adapt.run`: adapt a checkpoint and write the adapted one with provenance.
* :mod:`sst_ros.adapt.cli`: ``sst adapt``.

Domain label convention throughout: target (real) = 1, source (synthetic) = 0.
"""

__all__: list[str] = []
