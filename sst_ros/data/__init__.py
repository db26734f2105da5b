"""Data on disk: labelled clip sets, unlabelled target sets, rosbag2 bags.

* :mod:`sst_ros.data.clipset`: the clip-set format (WAV + label CSV + ``array.yaml``),
  :class:`~sst_ros.data.clipset.Labels` and the in-memory
  :class:`~sst_ros.data.clipset.LabelledAudio`.
* :mod:`sst_ros.data.clip_reader`: the one loader of clips and crops at a model's rate and geometry.
* :mod:`sst_ros.data.target_set`: unlabelled target recordings (rosbag2 bags, WAV files).
* :mod:`sst_ros.data.bag`: reading ``record_target`` bags, bag discovery;
  :mod:`sst_ros.data.bag_writer`: writing them.
* :mod:`sst_ros.data.plots`: label trajectories.
"""

__all__: list[str] = []
