"""One synthetic scene: talkers moving in a random room, heard by a microphone array.

``simulate_scene(cfg, array, seed, duration_s)`` draws everything from ``seed`` (same seed,
same scene), renders the tracked talker (source 0) with the time-varying room response,
adds spherically diffuse noise at a drawn SNR, optional directional interferers (a fan, an
unlabelled talker), microphone imperfections (gain and position errors, self-noise), and
labels the talker per ``cfg.label_frame_s`` (azimuth/elevation in the array frame, REP-103,
degrees; active from the energy of the talker's direct-path signal).

With ``labels.multi_source`` a scene has 0 to 3 talkers (``talkers.count_weights``; source
ids 0..n-1), taking turns or talking independently, optionally crossing paths and kept
``talkers.min_separation_deg`` apart, and labelled directional non-speech interferers (fan,
television, motor; source ids -1, -2, ... in that order): every source gets per-frame
azimuth, elevation and activity (:meth:`Labels.from_sources`).

Levels: the SNR (talkers to the diffuse noise plus directional babble) and each
interferer's SIR are relative to the talkers' mean active power at the microphones
(``_reference_power``); with no talker, to the direct-path power of a unit-RMS talker at
2 m, :data:`NO_TALKER_POWER`.

Randomness: ``SeedSequence(seed).spawn(N)`` children, one generator per concern. The first
seven are the single-talker simulator's and draw exactly as before; every later feature
draws from its own child, so a config that leaves the new fields at their defaults gives
the same scene, sample for sample, as before they existed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sst_ros.data.clipset import Labels, SourceLabels
from sst_ros.errors import ConfigError
from sst_ros.geometry import SPEED_OF_SOUND_M_S, MicArray, angular_distance_deg, az_el_from_vector, wrap_deg
from sst_ros.sim.config import MAX_TALKERS, SceneConfig, load_scene_config
from sst_ros.sim.interferers import motor_signal, tv_signal
from sst_ros.sim.noise import coloured_noise, diffuse_noise
from sst_ros.sim.render import (
    RenderOptions,
    apply_mic_responses,
    mic_responses,
    render_source,
    render_static_group,
)
from sst_ros.sim.room import Room, sample_room
from sst_ros.sim.speech import SpeechPool, get_speech_pool
from sst_ros.sim.trajectory import (
    ArrayPose,
    Trajectory,
    crossing_trajectory,
    raise_to_elevation,
    sample_array_pose,
    sample_trajectory,
)

__all__ = ["NO_TALKER_POWER", "Scene", "activity_labels", "direction_labels", "simulate_scene"]

log = logging.getLogger(__name__)

_SUBFRAME_S = 0.01
# Reference power (at the microphones) of a scene without talkers: the direct path of a
# unit-RMS talker at 2 m, (1 / (4 pi 2))^2.
NO_TALKER_POWER = (1.0 / (4.0 * np.pi * 2.0)) ** 2
# Streams: the single-talker simulator's seven, then talkers, their rendering, television,
# motor, babble, hybrid rooms, microphone responses, talker elevation.
_N_STREAMS = 15
_SEPARATION_TRIES = 20  # random paths per talker and round
_SEPARATION_ROUNDS = 10  # rounds of redrawing all free talkers


@dataclass
class Scene:
    """A simulated scene.

    Attributes:
        audio: (frames, M) float32 microphone signals in array order, full scale [-1, 1).
        fs: sample rate in Hz (``cfg.sample_rate_hz``).
        labels: per-frame labels, array frame: single-source (the talker) or, with
            ``labels.multi_source``, every talker (ids 0..n-1) and labelled interferer (ids < 0)
            in ``labels.sources``. A multi-source scene without any source has no ``sources``
            (it reads as one talker that is never active).
        metadata: plain-data description (room, pose, talkers, trajectories, signals, levels,
            interferers with their source ids, seed).
        talker_images: with ``simulate_scene(..., keep_images=True)``, each talker's
            reverberant image at the microphones, (frames, M) float64 in talker (source id)
            order, at its level in the mixture before microphone responses, gains and the
            final level; empty otherwise. For analyses that need each talker's share of a frame.
        background_image: with ``keep_images``, everything else at the same point: diffuse
            noise, directional babble and interferers, (frames, M) float64; None otherwise.
    """

    audio: np.ndarray
    fs: int
    labels: Labels
    metadata: dict[str, Any] = field(default_factory=dict)
    talker_images: tuple[np.ndarray, ...] = ()
    background_image: np.ndarray | None = None


def direction_labels(
    traj: Trajectory, pose: ArrayPose, n_frames: int, frame_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame start times (F,) s and azimuth/elevation (F,) degrees of the talker at frame centres,
    in the array frame (REP-103), seen from the array origin."""
    t = np.arange(n_frames) * frame_s
    vec = pose.to_array(traj.position(t + 0.5 * frame_s))
    az, el = az_el_from_vector(vec)
    return t, np.asarray(wrap_deg(np.rad2deg(az))), np.rad2deg(el)


def activity_labels(
    direct: np.ndarray, fs: int, n_frames: int, frame_s: float, threshold_db: float, min_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Active flag per frame from the direct-path signal (N,) at the array.

    A 10 ms sub-frame is speech when its energy is above the clip's robust maximum (99th
    percentile of sub-frame energies) plus ``threshold_db``; a frame is active when at least
    ``min_fraction`` of its sub-frames are speech.

    Returns:
        (active (F,) bool, speech mask (N,) bool per sample of ``direct``: its sub-frame's decision,
        False beyond the F frames).
    """
    per_frame = max(1, int(round(frame_s / _SUBFRAME_S)))
    sub_len = max(1, int(round(frame_s * fs / per_frame)))
    n_sub = n_frames * per_frame
    x = np.zeros(n_sub * sub_len)
    m = min(x.shape[0], direct.shape[0])
    x[:m] = direct[:m]
    energy = np.mean(x.reshape(n_sub, sub_len) ** 2, axis=1)
    ref = np.percentile(energy, 99) if n_sub else 0.0
    if ref <= 1e-20:
        mask = np.zeros(n_sub, dtype=bool)
    else:
        mask = energy > ref * 10.0 ** (threshold_db / 10.0)
    frac = mask.reshape(n_frames, per_frame).mean(axis=1) if n_frames else np.zeros(0)
    speech = np.zeros(direct.shape[0], dtype=bool)
    per_sample = np.repeat(mask, sub_len)[: direct.shape[0]]
    speech[: per_sample.shape[0]] = per_sample
    return frac >= min_fraction - 1e-9, speech


def _speech_track(
    pool: SpeechPool, n: int, fs: int, cfg: Any, rng: np.random.Generator
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Utterances separated by pauses, from a lead silence on, cut to n samples."""
    out = np.zeros(n)
    pos = int(rng.uniform(*cfg.lead_s) * fs)
    used: list[dict[str, Any]] = []
    while pos < n:
        x, name = pool.utterance(rng, cfg.real_prob)
        gain_db = rng.uniform(*cfg.utterance_gain_db)
        seg = x[: n - pos] * 10.0 ** (gain_db / 20.0)
        out[pos : pos + seg.shape[0]] = seg
        used.append({"id": name, "start_s": round(pos / fs, 3), "gain_db": round(float(gain_db), 2)})
        pos += x.shape[0] + int(rng.uniform(*cfg.pause_s) * fs)
    return out, used


def _noise_source(kind: str, pool: SpeechPool, fs: int, rng: np.random.Generator):  # noqa: ANN202
    """A function (n, M) -> independent single-channel noises of ``kind``."""

    def babble(n: int, m: int) -> np.ndarray:
        out = np.zeros((n, m))
        for ch in range(m):
            for _ in range(int(rng.integers(4, 9))):
                x, _ = pool.utterance(rng, 0.5)
                reps = int(np.ceil(n / max(x.shape[0], 1))) + 1
                loop = np.tile(x, reps)
                off = int(rng.integers(0, max(1, x.shape[0])))
                out[:, ch] += loop[off : off + n]
        return out

    def recorded(n: int, m: int) -> np.ndarray:
        x = pool.recorded_noise()
        if x is None:
            return coloured_noise(n, rng, "pink", m)
        reps = int(np.ceil(n / x.shape[0])) + 1
        loop = np.tile(x, reps)
        offs = rng.integers(0, x.shape[0], m)
        return np.stack([loop[o : o + n] for o in offs], axis=1)

    if kind == "babble":
        return babble
    if kind == "recorded":
        return recorded
    return lambda n, m: coloured_noise(n, rng, kind, m)


def _fan_signal(n: int, fs: int, rng: np.random.Generator) -> np.ndarray:
    """Fan / machine noise: brown-ish broadband noise plus a blade-pass hum with harmonics."""
    t = np.arange(n) / fs
    base = coloured_noise(n, rng, "brown" if rng.random() < 0.5 else "pink")[:, 0].astype(np.float64)
    f0 = rng.uniform(40.0, 200.0)
    hum = sum(rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.28)) for k in range(1, 6))
    am = 1.0 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.2, 2.0) * t)
    x = (base + rng.uniform(0.2, 1.5) * hum) * am
    return x / max(np.sqrt(np.mean(x**2)), 1e-12)


def _static_point(
    room: Room, rng: np.random.Generator, avoid: np.ndarray, margin: float = 0.2, min_dist_m: float = 0.5
) -> np.ndarray:
    """A point ``margin`` from the walls, 0.2-2.5 m high, over ``min_dist_m`` horizontally from ``avoid``."""
    for _ in range(100):
        p = np.array([rng.uniform(margin, room.size_m[i] - margin) for i in range(3)])
        p[2] = rng.uniform(0.2, min(2.5, room.size_m[2] - margin))
        if np.hypot(*(p[:2] - avoid[:2])) > min_dist_m:
            return p
    return p


def _wall_point(room: Room, rng: np.random.Generator, avoid: np.ndarray, min_dist_m: float = 1.0) -> np.ndarray:
    """A loudspeaker's place: 0.1-0.4 m in front of one of the four walls, 0.4-1.8 m high, over
    ``min_dist_m`` (horizontally) from ``avoid``."""
    size = room.size_m
    for _ in range(100):
        wall = int(rng.integers(4))
        axis, other = (0, 1) if wall < 2 else (1, 0)
        p = np.zeros(3)
        off = rng.uniform(0.1, 0.4)
        p[axis] = off if wall % 2 == 0 else size[axis] - off
        p[other] = rng.uniform(0.3, size[other] - 0.3)
        p[2] = rng.uniform(0.4, min(1.8, size[2] - 0.2))
        if np.hypot(*(p[:2] - avoid[:2])) > min_dist_m:
            return p
    return p


def _body_point(room: Room, pose: ArrayPose, rng: np.random.Generator) -> np.ndarray:
    """A point on the robot's body: 0.3-0.6 m from the array centre, elevation -60 to +10 degrees."""
    for _ in range(100):
        r = rng.uniform(0.3, 0.6)
        az = rng.uniform(-np.pi, np.pi)
        el = np.deg2rad(rng.uniform(-60.0, 10.0))
        local = r * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        p = pose.to_room(local[None, :])[0]
        if np.all(p >= 0.05) and np.all(p <= room.size_m - 0.05):
            return p
    return np.clip(p, 0.05, room.size_m - 0.05)


def _power(x: np.ndarray, mask: np.ndarray | None = None) -> float:
    if mask is not None and mask.any():
        x = x[mask]
    return float(np.mean(x**2)) if x.size else 0.0


def _below(x: np.ndarray, p_ref: float, ratio_db: float) -> np.ndarray:
    """``x`` scaled so that ``p_ref`` (a power) is ``ratio_db`` dB above its power (an SNR or SIR)."""
    return x * np.sqrt(p_ref / 10.0 ** (ratio_db / 10.0) / max(_power(x), 1e-20))


def simulate_scene(
    cfg: SceneConfig | dict[str, Any] | str | None,
    array: MicArray,
    seed: int,
    duration_s: float | None = None,
    *,
    keep_images: bool = False,
) -> Scene:
    """Simulate one scene (see module docstring); deterministic for ``seed``.

    Args:
        cfg: scene config (SceneConfig, dict of overrides, YAML path, or None for the default).
        array: microphone geometry (array frame, metres).
        seed: random seed (int >= 0).
        duration_s: clip length in seconds (default ``cfg.duration_s``).
        keep_images: also return each talker's image and the background at the microphones
            (:attr:`Scene.talker_images`, :attr:`Scene.background_image`); draws nothing, so the
            scene is the same either way.
    Returns:
        :class:`Scene` with audio (frames, M) float32 at ``cfg.sample_rate_hz``.
    """
    cfg = load_scene_config(cfg)
    dur = float(cfg.duration_s if duration_s is None else duration_s)
    if not np.isfinite(dur) or dur <= 0:
        raise ConfigError(f"duration_s must be a positive number of seconds, got {duration_s!r}")
    if int(seed) < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    fs = int(cfg.sample_rate_hz)
    frame_s = float(cfg.label_frame_s)
    n = int(round(dur * fs))
    n_frames = int(np.floor(n / (frame_s * fs) + 1e-9))
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(_N_STREAMS)]
    r_room, r_place, r_speech, r_noise, r_mic, r_int, r_render = streams[:7]
    r_talk, r_talk_render, r_tv, r_motor, r_babble, r_hybrid, r_resp, r_elev = streams[7:]
    multi = bool(cfg.labels.multi_source)
    pool = get_speech_pool(
        fs, int(cfg.speech.espeak_pool_size), tuple(cfg.speech.espeak_rate_wpm), tuple(cfg.speech.espeak_pitch)
    )
    hybrid = bool(r_hybrid.random() < cfg.room.hybrid_prob)
    opts = RenderOptions(
        ism_max_order=int(cfg.room.ism_max_order),
        rir_interval_s=float(cfg.room.rir_interval_s),
        late_tail=bool(cfg.room.late_tail),
        max_rir_s=float(cfg.room.max_rir_s),
        field=str(cfg.noise.field),
        hybrid=hybrid,
        rt_scattering=float(r_hybrid.uniform(0.05, 0.5)),
    )

    room = sample_room(cfg.room, r_room)
    pose = sample_array_pose(room.size_m, cfg.array, r_place)
    n_talk = _draw_talker_count(cfg, r_talk) if multi else 1
    trajs, plan = _plan_talkers(cfg, room, pose, dur, n_talk, n_frames, frame_s, (r_place, r_talk, r_elev))
    mics_nominal = pose.to_room(array.positions_m)
    mics = mics_nominal + r_mic.normal(0.0, cfg.array.position_error_m, mics_nominal.shape)
    mics = np.clip(mics, 1e-3, room.size_m - 1e-3)

    turn_taking = n_talk >= 2 and bool(r_talk.random() < cfg.talkers.turn_taking_prob)
    if turn_taking:
        tracks = _turn_taking_tracks(pool, n, fs, cfg.speech, n_talk, r_speech)
    else:
        tracks = [_speech_track(pool, n, fs, cfg.speech, r_speech if k == 0 else r_talk_render) for k in range(n_talk)]
    talkers: list[_Talker] = []
    for k, (traj, (speech, utterances)) in enumerate(zip(trajs, tracks, strict=True)):
        img = render_source(speech, traj, mics, room, fs, r_render if k == 0 else r_talk_render, opts, pose.origin_m)
        # Activity from the direct path at the array origin (dry signal delayed by the mean distance).
        dist = np.linalg.norm(traj.position(np.linspace(0, dur, 21)) - pose.origin_m, axis=1)
        shift = int(round(float(np.mean(dist)) / SPEED_OF_SOUND_M_S * fs))
        direct = np.concatenate([np.zeros(shift), speech])[:n]
        active, sample_mask = activity_labels(
            direct, fs, n_frames, frame_s, cfg.labels.vad_threshold_db, cfg.labels.active_min_fraction
        )
        p_talker = _power(img, sample_mask) if sample_mask.any() else _power(img)
        talkers.append(_Talker(traj, img, active, max(p_talker, 1e-12), utterances, bool(sample_mask.any())))
    p_ref = _reference_power(talkers, cfg, r_talk) if multi else talkers[0].power
    if len(talkers) == 1:
        speech_mix = talkers[0].image
    else:
        speech_mix = np.sum([tk.image for tk in talkers], axis=0) if talkers else np.zeros((n, array.n_mics))

    # Diffuse noise at the drawn SNR.
    kinds = list(cfg.noise.types)
    weights = np.array([cfg.noise.types[k] for k in kinds], dtype=np.float64)
    kind = kinds[int(r_noise.choice(len(kinds), p=weights / weights.sum()))]
    snr_db = float(r_noise.uniform(*cfg.noise.snr_db))
    noise = diffuse_noise(mics, n, fs, r_noise, _noise_source(kind, pool, fs, r_noise), field=cfg.noise.field)
    noise = noise.astype(np.float64) * np.sqrt(p_ref / 10.0 ** (snr_db / 10.0) / max(_power(noise), 1e-20))
    babble_meta = None
    if r_babble.random() < cfg.noise.directional_babble_prob:
        noise, babble_meta = _add_directional_babble(noise, pool, room, pose, mics, fs, opts, r_babble)
    mix = speech_mix + noise

    scene = _SceneParts(room, pose, mics, fs, dur, opts, p_ref, cfg.interferers.sir_db)
    interferers, point_sources = _add_interferers(mix, cfg, scene, pool, (r_int, r_tv, r_motor))
    background = mix - speech_mix if keep_images else None

    # Microphone imperfections and level.
    response_db = None
    if cfg.array.mic_response_db > 0:
        f_knots, response = mic_responses(array.n_mics, fs, float(cfg.array.mic_response_db), r_resp)
        mix = apply_mic_responses(mix, fs, f_knots, response)
        response_db = {"freq_hz": [round(float(f), 1) for f in f_knots], "gain_db": np.round(response, 2).tolist()}
    gains_db = r_mic.normal(0.0, cfg.array.gain_error_db, array.n_mics)
    mix *= 10.0 ** (gains_db / 20.0)[None, :]
    peak_dbfs = float(r_mic.uniform(*cfg.level.peak_dbfs))
    peak = float(np.max(np.abs(mix))) if mix.size else 0.0
    if peak > 0:
        mix *= 10.0 ** (peak_dbfs / 20.0) / peak
    self_noise_dbfs = float(r_mic.uniform(*cfg.array.self_noise_dbfs))
    mix += r_mic.standard_normal(mix.shape) * 10.0 ** (self_noise_dbfs / 20.0)
    audio = np.clip(mix, -1.0, 1.0 - 2.0**-15).astype(np.float32)

    if multi:
        labels = _multi_source_labels(talkers, point_sources, scene, n_frames, frame_s, cfg)
    else:
        t, az, el = direction_labels(talkers[0].traj, pose, n_frames, frame_s)
        labels = Labels(t, az, el, talkers[0].active, frame_s)
    first = talkers[0] if talkers else None
    metadata: dict[str, Any] = {
        "seed": int(seed),
        "duration_s": dur,
        "sample_rate_hz": fs,
        "array": array.name,
        "room": room.to_dict(),
        "array_pose": {
            "origin_m": [round(float(v), 3) for v in pose.origin_m],
            "yaw_deg": round(float(np.rad2deg(pose.yaw_rad)), 2),
        },
        "trajectory": first.traj.to_dict() if first else None,
        "utterances": first.utterances if first else [],
        "noise": {"type": kind, "snr_db": round(snr_db, 2), "field": cfg.noise.field},
        "interferers": interferers,
        "mic_gain_db": [round(float(g), 3) for g in gains_db],
        "peak_dbfs": round(peak_dbfs, 2),
        "self_noise_dbfs": round(self_noise_dbfs, 2),
        "active_fraction": round(float(first.active.mean()) if first and first.active.size else 0.0, 3),
        "multi_source": multi,
        "talkers": [tk.to_dict(k) for k, tk in enumerate(talkers)],
        "turn_taking": turn_taking,
        **plan,
        "reference_power_db": round(10.0 * np.log10(p_ref), 2),
        "room_model": "ism+raytraced" if hybrid else "ism+exponential",
        "directional_babble": babble_meta,
        "mic_response": response_db,
    }
    images = tuple(tk.image for tk in talkers) if keep_images else ()
    return Scene(audio, fs, labels, metadata, images, background)


@dataclass
class _Talker:
    """One rendered talker: path, image at the microphones (N, M), frame activity, active power, utterances."""

    traj: Trajectory
    image: np.ndarray
    active: np.ndarray
    power: float
    utterances: list[dict[str, Any]]
    speaks: bool = True
    level_db: float = 0.0

    def to_dict(self, source_id: int) -> dict[str, Any]:
        return {
            "source_id": source_id,
            "trajectory": self.traj.to_dict(),
            "level_db": round(self.level_db, 2),
            "active_power_db": round(10.0 * np.log10(self.power), 2),
            "utterances": self.utterances,
            "active_fraction": round(float(self.active.mean()) if self.active.size else 0.0, 3),
            "speaks": self.speaks,
        }


@dataclass(frozen=True)
class _SceneParts:
    """What rendering an interferer needs: room, array pose, microphones (M, 3), rate, duration,
    render options, reference power and the SIR range (dB)."""

    room: Room
    pose: ArrayPose
    mics: np.ndarray
    fs: int
    duration_s: float
    opts: RenderOptions
    p_ref: float
    sir_db: tuple[float, float]


def _add_point_interferer(
    mix: np.ndarray, kind: str, p: np.ndarray, sig: np.ndarray, sc: _SceneParts, rng: np.random.Generator
) -> dict[str, Any]:
    """Render a static interferer at ``p`` (room frame), scale it to a drawn SIR, add it to ``mix``
    in place; its metadata."""
    img = render_source(
        sig, Trajectory(p, p.copy(), sc.duration_s), sc.mics, sc.room, sc.fs, rng, sc.opts, sc.pose.origin_m
    )
    sir = float(rng.uniform(*sc.sir_db))
    mix += _below(img, sc.p_ref, sir)
    az, el = az_el_from_vector(sc.pose.to_array(p[None, :])[0])
    return {
        "kind": kind,
        "position_m": [round(float(v), 3) for v in p],
        "sir_db": round(sir, 2),
        "azimuth_deg": round(float(np.rad2deg(az)), 2),
        "elevation_deg": round(float(np.rad2deg(el)), 2),
    }


def _add_interferers(
    mix: np.ndarray,
    cfg: SceneConfig,
    sc: _SceneParts,
    pool: SpeechPool,
    rngs: tuple[np.random.Generator, np.random.Generator, np.random.Generator],
) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], np.ndarray, np.ndarray | None]]]:
    """Add the drawn interferers to ``mix`` (N, M) in place: fan and unlabelled talker (``r_int``, as
    the single-talker simulator), television (``r_tv``), motor (``r_motor``).

    Returns:
        (metadata of every interferer, the static ones as (metadata, position (3,) room frame,
        on/off gate (N,) or None = always on): the sources multi-source labels list).
    """
    r_int, r_tv, r_motor = rngs
    n, fs = mix.shape[0], sc.fs
    interferers: list[dict[str, Any]] = []
    point_sources: list[tuple[dict[str, Any], np.ndarray, np.ndarray | None]] = []  # labelled in multi-source
    draw_fan, draw_talker = r_int.random(), r_int.random()
    if draw_fan < cfg.interferers.fan_prob:
        p = _static_point(sc.room, r_int, sc.pose.origin_m)
        sig = _fan_signal(n, fs, r_int)
        interferers.append(_add_point_interferer(mix, "fan", p, sig, sc, r_int))
        point_sources.append((interferers[-1], p, None))
    if draw_talker < cfg.interferers.talker_prob:
        traj2 = sample_trajectory(sc.room.size_m, sc.pose.origin_m, sc.duration_s, cfg.source, r_int)
        sig, utt2 = _speech_track(pool, n, fs, cfg.speech, r_int)
        img = render_source(sig, traj2, sc.mics, sc.room, fs, r_int, sc.opts, sc.pose.origin_m)
        sir = float(r_int.uniform(*cfg.interferers.sir_db))
        mix += _below(img, sc.p_ref, sir)
        interferers.append(
            {
                "kind": "talker",
                "trajectory": traj2.to_dict(),
                "sir_db": round(sir, 2),
                "utterances": [u["id"] for u in utt2],
            }
        )
    if r_tv.random() < cfg.interferers.tv_prob:
        p = _wall_point(sc.room, r_tv, sc.pose.origin_m)
        sig, gate = tv_signal(n, fs, r_tv)
        interferers.append(_add_point_interferer(mix, "tv", p, sig, sc, r_tv))
        point_sources.append((interferers[-1], p, gate))
    if r_motor.random() < cfg.interferers.motor_prob:
        p = _body_point(sc.room, sc.pose, r_motor)
        sig, gate = motor_signal(n, fs, r_motor)
        interferers.append(_add_point_interferer(mix, "motor", p, sig, sc, r_motor))
        point_sources.append((interferers[-1], p, gate))
    return interferers, point_sources


def _draw_talker_count(cfg: SceneConfig, rng: np.random.Generator) -> int:
    w = np.asarray(cfg.talkers.count_weights, dtype=np.float64)
    return int(rng.choice(MAX_TALKERS + 1, p=w / w.sum()))


def _min_separation(az: np.ndarray, others: list[np.ndarray]) -> float:
    """Smallest azimuth distance (degrees) to any of ``others`` over the frames (inf without any)."""
    if not others or az.size == 0:
        return float("inf")
    return float(min(np.min(angular_distance_deg(az, o)) for o in others))


def _plan_talkers(
    cfg: SceneConfig,
    room: Room,
    pose: ArrayPose,
    dur: float,
    n_talk: int,
    n_frames: int,
    frame_s: float,
    rngs: tuple[np.random.Generator, np.random.Generator, np.random.Generator],
) -> tuple[list[Trajectory], dict[str, Any]]:
    """The talkers' paths and a summary for the metadata (crossing, measured separation).

    Talker 0 comes from ``r_place`` as in the single-talker simulator; talker 1 crosses
    talker 0's azimuth with ``talkers.crossing_prob`` (exempt from the separation, which it
    cannot keep). The others keep ``talkers.min_separation_deg`` from every earlier talker in
    every label frame: random paths, redrawn (a bounded number of tries and rounds); failing
    that, static talkers in free directions (talker 0 too if its path leaves no room);
    failing that, the best set found, with a warning.
    """
    r_place, r_talk, r_elev = rngs
    if n_talk == 0:
        return [], {"crossing": False, "min_separation_deg": None}
    first = sample_trajectory(room.size_m, pose.origin_m, dur, cfg.source, r_place)
    fixed = [first]
    crossing = n_talk >= 2 and bool(r_talk.random() < cfg.talkers.crossing_prob)
    if crossing:
        cross = crossing_trajectory(room.size_m, pose, dur, cfg.source, first, r_talk)
        crossing = cross is not None
        if cross is not None:
            fixed.append(cross)
    geo = _Placement(cfg, room, pose, dur, n_frames, frame_s, float(cfg.talkers.min_separation_deg))
    trajs, sep = geo.place(fixed, n_talk, r_talk)
    if cfg.source.max_elevation_deg is not None:
        trajs = [raise_to_elevation(tr, pose, room.size_m, float(cfg.source.max_elevation_deg), r_elev) for tr in trajs]
    return trajs, {"crossing": crossing, "min_separation_deg": round(sep, 2) if np.isfinite(sep) else None}


@dataclass(frozen=True)
class _Placement:
    """Placing talkers apart in azimuth (degrees, label frames) around the array."""

    cfg: SceneConfig
    room: Room
    pose: ArrayPose
    dur: float
    n_frames: int
    frame_s: float
    min_sep: float

    def azimuths(self, traj: Trajectory) -> np.ndarray:
        return np.asarray(direction_labels(traj, self.pose, self.n_frames, self.frame_s)[1])

    def separation(self, trajs: list[Trajectory], n_fixed: int) -> float:
        """Smallest azimuth distance over frames between talker k >= ``n_fixed`` and every earlier talker."""
        az = [self.azimuths(tr) for tr in trajs]
        return min((_min_separation(az[k], az[:k]) for k in range(max(1, n_fixed), len(trajs))), default=float("inf"))

    def place(self, fixed: list[Trajectory], n_talk: int, rng: np.random.Generator) -> tuple[list[Trajectory], float]:
        """``fixed`` plus paths up to ``n_talk`` talkers, and their separation (see :func:`_plan_talkers`)."""
        n_fixed = len(fixed)
        src = self.cfg.source
        best, best_sep = list(fixed), -1.0
        for _ in range(_SEPARATION_ROUNDS):
            trajs = list(fixed)
            for _k in range(n_fixed, n_talk):
                others = [self.azimuths(tr) for tr in trajs]
                for _try in range(_SEPARATION_TRIES):
                    traj = sample_trajectory(self.room.size_m, self.pose.origin_m, self.dur, src, rng)
                    if _min_separation(self.azimuths(traj), others) >= self.min_sep:
                        break
                trajs.append(traj)
            sep = self.separation(trajs, n_fixed)
            if sep >= self.min_sep:
                return trajs, sep
            if sep > best_sep:
                best, best_sep = trajs, sep
        standing = self.place_standing(fixed, n_talk, rng)
        if standing is not None:
            return standing
        log.warning(
            "no talker paths keep %.0f degrees apart in this room; using the best found (%.1f)", self.min_sep, best_sep
        )
        return best, best_sep

    def place_standing(
        self, fixed: list[Trajectory], n_talk: int, rng: np.random.Generator
    ) -> tuple[list[Trajectory], float] | None:
        """``fixed`` plus standing talkers in free directions; then with talker 0 standing at its start
        as well (not when talker 1 was made to cross talker 0's moving azimuth); None if neither works."""
        n_fixed = len(fixed)
        bases = [fixed]
        if n_fixed == 1:
            bases.append([Trajectory(fixed[0].start_m, fixed[0].start_m.copy(), self.dur)])
        for base in bases:
            trajs = list(base)
            for _k in range(n_fixed, n_talk):
                standing = self.static_in_free_direction(trajs, rng)
                if standing is None:
                    break
                trajs.append(standing)
            if len(trajs) == n_talk:
                sep = self.separation(trajs, n_fixed)
                if sep >= self.min_sep:
                    return trajs, sep
        return None

    def static_in_free_direction(self, trajs: list[Trajectory], rng: np.random.Generator) -> Trajectory | None:
        """A standing talker at an azimuth ``min_sep`` from every frame of ``trajs``, or None."""
        occupied = np.concatenate([self.azimuths(tr) for tr in trajs])
        grid = np.arange(-180.0, 180.0, 1.0)
        free = grid[np.array([np.min(angular_distance_deg(a, occupied)) >= self.min_sep for a in grid])]
        src, origin, size = self.cfg.source, self.pose.origin_m, self.room.size_m
        margin = src.wall_margin_m
        for a in rng.permutation(free):
            d = self.pose.rotation @ np.array([np.cos(np.deg2rad(a)), np.sin(np.deg2rad(a)), 0.0])
            # Farthest distance along this direction that stays wall_margin_m inside the floor plan.
            reach = [
                ((size[i] - margin - origin[i]) if d[i] > 0 else (margin - origin[i])) / d[i]
                for i in range(2)
                if abs(d[i]) > 1e-9
            ]
            r_max = min(src.max_distance_m, *reach)
            if r_max < src.min_distance_m:
                continue
            r = rng.uniform(src.min_distance_m, r_max)
            z = rng.uniform(*src.height_m)
            p = np.array([origin[0] + r * d[0], origin[1] + r * d[1], z])
            return Trajectory(p, p.copy(), self.dur)
        return None


def _turn_taking_tracks(
    pool: SpeechPool, n: int, fs: int, cfg: Any, n_talkers: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, list[dict[str, Any]]]]:
    """Speech tracks of talkers taking turns: one utterance at a time, the next by another talker
    after a pause (``cfg.pause_s``), overlapping by up to 0.3 s at a third of the turn changes."""
    outs = np.zeros((n_talkers, n))
    used: list[list[dict[str, Any]]] = [[] for _ in range(n_talkers)]
    pos = int(rng.uniform(*cfg.lead_s) * fs)
    k = int(rng.integers(n_talkers))
    while pos < n:
        x, name = pool.utterance(rng, cfg.real_prob)
        gain_db = rng.uniform(*cfg.utterance_gain_db)
        seg = x[: n - pos] * 10.0 ** (gain_db / 20.0)
        outs[k, pos : pos + seg.shape[0]] = seg
        used[k].append({"id": name, "start_s": round(pos / fs, 3), "gain_db": round(float(gain_db), 2)})
        gap = rng.uniform(*cfg.pause_s)
        if rng.random() < 1.0 / 3.0:
            gap -= rng.uniform(0.0, 0.3)
        pos += max(int(fs * 0.05), x.shape[0] + int(gap * fs))
        k = (k + int(rng.integers(1, n_talkers))) % n_talkers
    return [(outs[i], used[i]) for i in range(n_talkers)]


def _reference_power(talkers: list[_Talker], cfg: SceneConfig, rng: np.random.Generator) -> float:
    """Scale the talkers to their drawn level offsets (``talkers.level_spread_db``, around the first
    speaking talker's active power) in place; the reference power for SNR and SIR: the mean
    active power of the talkers that speak, or :data:`NO_TALKER_POWER` when none does.
    A talker that stays silent in the clip keeps its (silent) image."""
    offsets = [float(rng.uniform(*cfg.talkers.level_spread_db)) for _ in talkers]
    speaking = [tk for tk in talkers if tk.speaks]
    if not speaking:
        return NO_TALKER_POWER
    base = speaking[0].power
    for tk, offset in zip(talkers, offsets, strict=True):
        tk.level_db = offset
        if tk.speaks:
            target = base * 10.0 ** (offset / 10.0)
            tk.image *= np.sqrt(target / tk.power)
            tk.power = target
    return float(np.mean([tk.power for tk in speaking]))


def _utterance_loop(pool: SpeechPool, n: int, fs: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) recorded utterances (espeak-ng when no corpus is installed) back to back with 0-0.5 s pauses."""
    out = np.zeros(n)
    pos = -int(rng.uniform(0.0, 2.0) * fs)  # start inside the first utterance
    while pos < n:
        x, _ = pool.utterance(rng, 1.0)
        lo = max(0, -pos)
        seg = x[lo : n - pos] if n - pos > lo else x[:0]
        out[pos + lo : pos + lo + seg.shape[0]] = seg
        pos += x.shape[0] + int(rng.uniform(0.0, 0.5) * fs)
    return out


def _add_directional_babble(
    noise: np.ndarray,
    pool: SpeechPool,
    room: Room,
    pose: ArrayPose,
    mics: np.ndarray,
    fs: int,
    opts: RenderOptions,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Background babble: utterances from 3-6 static points over 1.5 m from the array, rendered
    through the room (one shared late tail), mixed with the diffuse ``noise`` (N, M) at a drawn
    babble-to-diffuse ratio of -5..10 dB; the sum keeps the noise's power (the drawn SNR)."""
    n = noise.shape[0]
    k = int(rng.integers(3, 7))
    points = np.stack([_static_point(room, rng, pose.origin_m, min_dist_m=1.5) for _ in range(k)])
    signals = np.stack([_utterance_loop(pool, n, fs, rng) for _ in range(k)])
    babble = render_static_group(signals, points, mics, room, fs, rng, opts, pose.origin_m)
    ratio_db = float(rng.uniform(-5.0, 10.0))
    p_noise = _power(noise)
    babble *= np.sqrt(p_noise * 10.0 ** (ratio_db / 10.0) / max(_power(babble), 1e-20))
    mixed = (noise + babble) / np.sqrt(1.0 + 10.0 ** (ratio_db / 10.0))
    az, _ = az_el_from_vector(pose.to_array(points))
    meta = {
        "n_points": k,
        "positions_m": np.round(points, 3).tolist(),
        "azimuth_deg": [round(float(a), 2) for a in np.rad2deg(az)],
        "babble_to_diffuse_db": round(ratio_db, 2),
    }
    return mixed, meta


def _gate_activity(
    gate: np.ndarray | None, shift: int, n_frames: int, frame_len: int, min_fraction: float
) -> np.ndarray:
    """Frame activity (F,) of an interferer from its on/off gate (always on without one)."""
    if gate is None:
        return np.ones(n_frames, dtype=bool)
    g = np.zeros(n_frames * frame_len)
    delayed = np.concatenate([np.zeros(shift), gate.astype(np.float64)])[: g.shape[0]]
    g[: delayed.shape[0]] = delayed
    return g.reshape(n_frames, frame_len).mean(axis=1) >= min_fraction - 1e-9


def _multi_source_labels(
    talkers: list[_Talker],
    point_sources: list[tuple[dict[str, Any], np.ndarray, np.ndarray | None]],
    sc: _SceneParts,
    n_frames: int,
    frame_s: float,
    cfg: SceneConfig,
) -> Labels:
    """Multi-source labels: talkers 0..n-1, the static interferers ``(metadata, position (3,) room
    frame, on/off gate (N,) or None = always on)`` -1, -2, ... (their metadata gets the id)."""
    t = np.arange(n_frames) * frame_s
    sources = []
    for k, tk in enumerate(talkers):
        _, az, el = direction_labels(tk.traj, sc.pose, n_frames, frame_s)
        sources.append(SourceLabels(k, az, el, tk.active))
    frame_len = max(1, int(round(frame_s * sc.fs)))
    for i, (meta, p, gate) in enumerate(point_sources):
        meta["source_id"] = -(i + 1)
        vec = sc.pose.to_array(p[None, :])[0]
        az, el = az_el_from_vector(vec)
        shift = int(round(float(np.linalg.norm(vec)) / SPEED_OF_SOUND_M_S * sc.fs))
        active = _gate_activity(gate, shift, n_frames, frame_len, cfg.labels.active_min_fraction)
        sources.append(
            SourceLabels(
                -(i + 1),
                np.full(n_frames, float(wrap_deg(np.rad2deg(az)))),
                np.full(n_frames, float(np.rad2deg(el))),
                active,
            )
        )
    return Labels.from_sources(t, sources, frame_s)
