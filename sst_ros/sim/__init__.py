"""sst_ros.sim: synthetic moving-source scenes in shoebox rooms (pyroomacoustics).

Entry point :func:`simulate_scene` (``cfg, array, seed, duration_s`` -> :class:`Scene`),
configuration :class:`SceneConfig` (``config/sim/default.yaml``, every range in one file),
command line ``sst simulate --config --array --n --out --workers --seed``.

Recipe (one scene, all drawn from the seed):

- ``room``: shoebox size, RT60, per-wall energy absorption by Sabine inversion; early
  reflections from pyroomacoustics' image sources (orders 1..N), a diffuse-coherent
  exponential late tail beyond the mixing time (two bands, faster decay above 2 kHz).
- ``trajectory``: array anywhere on the floor plan at robot height with a random yaw; the
  talker on a line plus a lateral sinusoid (or static) at mouth height, at most walking pace.
- ``render``: exact per-sample direct path (time-varying fractional delay), early RIRs at
  trajectory points every ``rir_interval_s`` crossfaded with cos^2 windows, late tail.
- ``speech``: recorded speech corpora plus a cached espeak-ng pool, pauses kept.
- ``noise``: spherically (or cylindrically) isotropic noise with the theoretical coherence
  for the (perturbed) microphone positions; optional fan / talker interferers.
- ``scene``: SNR, microphone gain and position errors, self-noise, level; labels per frame
  (azimuth/elevation in the array frame, REP-103; active from direct-path energy).
"""

from sst_ros.sim.config import SceneConfig, load_scene_config
from sst_ros.sim.scene import Scene, simulate_scene

__all__ = ["Scene", "SceneConfig", "load_scene_config", "simulate_scene"]
