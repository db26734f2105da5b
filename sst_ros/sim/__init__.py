"""sst_ros.sim: synthetic moving-source scenes in shoebox rooms (pyroomacoustics).

Entry point :func:`simulate_scene` (``cfg, array, seed, duration_s`` -> :class:`Scene`),
configuration :class:`SceneConfig` (``config/sim/default.yaml``, every range in one file),
command line ``sst simulate --config --array --n --out --workers --seed``.

Recipe (one scene, all drawn from the seed):

- ``room``: shoebox size, RT60, per-wall energy absorption by Sabine inversion; early
  reflections from pyroomacoustics' image sources (orders 1..N), a diffuse-coherent
  exponential late tail beyond the mixing time (two bands, faster decay above 2 kHz); in
  hybrid rooms (``room.hybrid_prob``) the tail follows pyroomacoustics' ray-traced decay.
- ``trajectory``: array anywhere on the floor plan at robot height with a random yaw; the
  talker on a line plus a lateral sinusoid (or static) at mouth height, at most walking pace;
  optionally raised up to ``source.max_elevation_deg``; crossing paths for a second talker.
- ``render``: exact per-sample direct path (time-varying fractional delay), early RIRs at
  trajectory points every ``rir_interval_s`` crossfaded with cos^2 windows, late tail.
- ``speech``: recorded speech corpora plus a cached espeak-ng pool, pauses kept.
- ``noise``: spherically (or cylindrically) isotropic noise with the theoretical coherence
  for the (perturbed) microphone positions, optionally with directional babble rendered
  through the room; optional fan / talker interferers.
- ``interferers``: television (music-like) and motor (whine on a speed ramp) signals.
- ``scene``: SNR, microphone gain and position errors, smooth per-microphone frequency
  responses, self-noise, level; labels per frame (azimuth/elevation in the array frame,
  REP-103; active from direct-path energy). ``labels.multi_source``: 0-3 talkers
  (``talkers.*``: turn taking, level spread, crossing, minimum separation) and labelled
  fan / television / motor interferers (negative source ids), multi-source labels.
- ``plane_wave``: not a scene: exact free-field plane waves at an array and a sensor noise
  floor, for the model's physics tests and ``bench/bench_plane_waves.py``.
"""

from sst_ros.sim.config import SceneConfig, load_scene_config
from sst_ros.sim.scene import Scene, simulate_scene

__all__ = ["Scene", "SceneConfig", "load_scene_config", "simulate_scene"]
