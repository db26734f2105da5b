"""``sst simulate``: write a labelled synthetic clip set.

    sst simulate --config config/sim/default.yaml --array respeaker_usb_v2 \\
        --n 1000 --out training/data/sim_train --workers 2 --seed 0

Writes ``<out>/scene_<i>.wav`` + ``.csv`` (see :mod:`sst_ros.data.clipset`),
``<out>/array.yaml``, ``<out>/sim_config.yaml`` (the full config used) and
``<out>/scenes.jsonl`` (one metadata line per scene, in index order). Scene ``i`` uses the
seed ``scene_seed(seed, i)``, so a set is reproducible and can be extended with
``--start-index``.

Sharded (a cluster's job array): ``--shard I/N`` writes only the scenes whose index is ``I``
modulo ``N``, byte for byte those of the whole run; copy the ``N`` folders into one and run
``sst simulate --merge --out DIR``, which refuses an incomplete merge naming the missing clips
and leaves exactly the folder the unsharded run writes. Until then a clip set refuses to load.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sst_ros.data.clipset import write_array_yaml, write_clip
from sst_ros.errors import ConfigError, DataError
from sst_ros.geometry import MicArray, load_array
from sst_ros.sim.config import SceneConfig, load_scene_config
from sst_ros.sim.scene import simulate_scene
from sst_ros.sim.speech import get_speech_pool

__all__ = ["MANIFEST", "SHARD_PLAN", "merge_shards", "register", "run_simulate", "scene_seed"]

MANIFEST = "scenes.jsonl"
"""One metadata line per scene, in index order."""
SHARD_PLAN = "shards.json"
"""Written by ``--shard`` runs (the whole set's start index, count, seed and shard count); removed by the merge."""

log = logging.getLogger(__name__)

_STATE: dict[str, Any] = {}


def scene_seed(seed: int, index: int) -> int:
    """Seed of scene ``index`` of a set generated with ``seed`` (63-bit, independent streams)."""
    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


def _init_worker(
    cfg_dict: dict[str, Any], array_dict: dict[str, Any], out: str, duration_s: float, subtype: str
) -> None:
    _STATE.update(
        cfg=SceneConfig.from_dict(cfg_dict),
        array=MicArray.from_dict(array_dict),
        out=out,
        duration_s=duration_s,
        subtype=subtype,
    )


def _one(job: tuple[int, int]) -> dict[str, Any]:
    index, seed = job
    scene = simulate_scene(_STATE["cfg"], _STATE["array"], seed, _STATE["duration_s"])
    name = f"scene_{index:06d}"
    write_clip(_STATE["out"], name, scene.audio, scene.fs, scene.labels, subtype=_STATE["subtype"])
    return {"index": index, "name": name, **scene.metadata}


def _progress(total: int):  # noqa: ANN202
    try:
        from tqdm import tqdm

        return tqdm(total=total, unit="scene", desc="simulate", file=sys.stderr, smoothing=0.05)
    except ImportError:  # pragma: no cover - tqdm is a dependency, but stay usable
        return None


def run_simulate(
    config: SceneConfig | str | None,
    array: MicArray | str,
    n: int,
    out: str | Path,
    workers: int = 1,
    seed: int = 0,
    duration_s: float | None = None,
    start_index: int = 0,
    subtype: str = "PCM_16",
    overwrite: bool = False,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
) -> Path:
    """Simulate ``n`` scenes into the clip-set folder ``out``; returns the folder.

    ``shard=(i, k)`` simulates only the scenes whose index is ``i`` modulo ``k`` (the same seeds
    and files as the unsharded run) and records the set's plan in ``shards.json`` and its own
    metadata in ``scenes.shard-<i>-of-<k>.jsonl``; once every shard's folder has been copied
    into one, :func:`merge_shards` checks it and writes ``scenes.jsonl``.
    """
    cfg = load_scene_config(config)
    arr = array if isinstance(array, MicArray) else load_array(array)
    dur = float(cfg.duration_s if duration_s is None else duration_s)
    _check_counts(n, workers, seed, dur)
    if shard is not None and not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
        raise ConfigError(f"--shard must be I/N with 0 <= I < N, got {shard[0]}/{shard[1]}")
    out = Path(out)
    indices = [i for i in range(start_index, start_index + n) if shard is None or i % shard[1] == shard[0]]
    _prepare_out(out, indices, overwrite, arr, cfg, {"duration_s_used": dur, "seed": seed})
    # Load the speech corpora once in the parent: forked workers inherit them.
    get_speech_pool(
        int(cfg.sample_rate_hz),
        int(cfg.speech.espeak_pool_size),
        tuple(cfg.speech.espeak_rate_wpm),
        tuple(cfg.speech.espeak_pitch),
    )
    jobs = [(i, scene_seed(seed, i)) for i in indices]
    init_args = (cfg.to_dict(), arr.to_dict(), str(out), dur, subtype)
    t0 = time.monotonic()
    results = _run_jobs(jobs, init_args, workers, progress)
    elapsed = time.monotonic() - t0
    results.sort(key=lambda m: m["index"])
    k = len(results)
    if shard is None:
        manifest = out / MANIFEST
        mode = "a" if start_index and manifest.exists() else "w"
    else:
        plan = {"start_index": start_index, "n": n, "seed": seed, "shards": shard[1]}
        (out / SHARD_PLAN).write_text(json.dumps(plan, sort_keys=True) + "\n")
        manifest, mode = out / _shard_manifest(*shard), "w"
        results = [{"plan": plan}, *results]  # each shard's own record of the plan, checked by the merge
    with manifest.open(mode) as fh:
        for meta in results:
            fh.write(json.dumps(meta) + "\n")
    log.info("wrote %d scenes to %s in %.1f s (%.2f scenes/s)", k, out, elapsed, k / max(elapsed, 1e-9))
    return out


def _shard_manifest(i: int, k: int) -> str:
    return f"scenes.shard-{i}-of-{k}.jsonl"


def merge_shards(out: str | Path) -> Path:
    """Finish a sharded set whose shard folders were copied into ``out``: check that every scene of
    the plan (``shards.json``) and every shard's metadata is there, then write ``scenes.jsonl`` in
    index order and remove the shard files, leaving exactly the folder the unsharded run writes.

    Raises:
        DataError: no plan in ``out``, or scenes or shard metadata missing (the message names the
            missing clips and the shards that make them); nothing is changed then.
    """
    out = Path(out)
    plan_path = out / SHARD_PLAN
    if not plan_path.is_file():
        raise DataError(f"{out} holds no {SHARD_PLAN}: not a sharded simulation (made with --shard I/N)")
    plan = json.loads(plan_path.read_text())
    start, n, k = int(plan["start_index"]), int(plan["n"]), int(plan["shards"])
    missing = [
        i for i in range(start, start + n)
        if not all((out / f"scene_{i:06d}{ext}").is_file() for ext in (".wav", ".csv"))
    ]  # fmt: skip
    parts = [out / _shard_manifest(i, k) for i in range(k)]
    shards = sorted({i % k for i in missing} | {i for i, p in enumerate(parts) if not p.is_file()})
    if shards:
        names = ", ".join(f"scene_{i:06d}" for i in missing[:10])
        names += f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise DataError(
            f"{out} is an incomplete merge of a {k}-shard simulation: "
            + (f"{len(missing)} of {n} clips missing ({names})" if missing else "all clips present")
            + f"; shards {', '.join(f'{i}/{k}' for i in shards)} are missing or incomplete: run "
            f"`sst simulate ... --shard I/{k}` for them (same --n, --seed, --start-index) and copy their folders here"
        )
    lines: list[str] = []
    for i, part in enumerate(parts):
        head, *rest = [ln for ln in part.read_text().splitlines() if ln.strip()] or ["{}"]
        if json.loads(head).get("plan") != plan:
            raise DataError(
                f"{part} was made for another set than {plan_path} ({head} against {json.dumps(plan)}): every shard "
                f"must be run with the same --n, --seed and --start-index; run shard {i}/{k} again"
            )
        lines += rest
    by_index = sorted((int(json.loads(ln)["index"]), ln) for ln in lines)
    if [i for i, _ in by_index] != list(range(start, start + n)):
        raise DataError(f"the shard metadata in {out} does not list scenes {start}..{start + n - 1} once each")
    manifest = out / MANIFEST
    before = manifest.read_text() if start and manifest.exists() else ""  # --start-index extends a set
    tmp = manifest.with_name(manifest.name + ".tmp")
    tmp.write_text(before + "".join(ln + "\n" for _, ln in by_index))
    os.replace(tmp, manifest)  # a crash before this leaves the shard files: the merge can run again
    for part in parts:
        part.unlink()
    plan_path.unlink()
    return out


def _check_counts(n: int, workers: int, seed: int, duration_s: float) -> None:
    """ConfigError naming the option when a count, the seed or the duration (s) is out of range."""
    if n < 1:
        raise ConfigError(f"--n must be >= 1, got {n}")
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")
    if duration_s <= 0:
        raise ConfigError(f"--duration must be > 0 s, got {duration_s}")


def _prepare_out(
    out: Path, indices: list[int], overwrite: bool, arr: MicArray, cfg: SceneConfig, run_info: dict[str, Any]
) -> None:
    """Create ``out`` with ``array.yaml`` and ``sim_config.yaml``; refuse to overwrite scenes unless asked."""
    if not overwrite and any((out / f"scene_{i:06d}.wav").exists() for i in indices):
        raise ConfigError(
            f"{out} already holds some of scenes {indices[0]}..{indices[-1]}; "
            "choose another --out, --start-index, or pass --overwrite"
        )
    out.mkdir(parents=True, exist_ok=True)
    # The clips hold microphone channels: array.yaml describes those, not the device stream.
    write_array_yaml(out, arr.microphones_only())
    (out / "sim_config.yaml").write_text(yaml.safe_dump({**run_info, **cfg.to_dict()}, sort_keys=False))


def _run_jobs(
    jobs: list[tuple[int, int]], init_args: tuple[Any, ...], workers: int, progress: bool
) -> list[dict[str, Any]]:
    """Simulate and write every ``(index, seed)`` job, in this process or a worker pool; their metadata."""
    bar = _progress(len(jobs)) if progress else None
    results: list[dict[str, Any]] = []
    pool = None
    it: Iterator[dict[str, Any]]
    if workers == 1:
        _init_worker(*init_args)
        it = map(_one, jobs)
    else:
        ctx = mp.get_context("fork") if sys.platform.startswith("linux") else mp.get_context()
        pool = ctx.Pool(workers, initializer=_init_worker, initargs=init_args)
        it = pool.imap_unordered(_one, jobs, chunksize=1)
    try:
        for meta in it:
            results.append(meta)
            if bar is not None:
                bar.update(1)
    except BaseException:
        if pool is not None:
            pool.terminate()
        raise
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        if bar is not None:
            bar.close()
    return results


def _main(args: argparse.Namespace) -> int:
    if args.merge:
        merge_shards(args.out)
        print(f"merged: {args.out}")
        return 0
    if args.n is None:
        raise ConfigError("--n is required (the number of scenes), except with --merge")
    run_simulate(
        args.config,
        args.array,
        args.n,
        args.out,
        workers=args.workers,
        seed=args.seed,
        duration_s=args.duration,
        start_index=args.start_index,
        subtype=args.subtype,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        shard=args.shard,
    )
    return 0


def _shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) for ``--shard``."""
    try:
        i, k = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard must be I/N (e.g. 0/4), got '{text}'") from None
    if not (k >= 1 and 0 <= i < k):
        raise argparse.ArgumentTypeError(f"--shard must be I/N with 0 <= I < N, got '{text}'")
    return i, k


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` subcommand."""
    p = subparsers.add_parser(
        "simulate",
        help="write a labelled synthetic clip set (moving talkers in random rooms)",
        description="Simulate labelled multichannel scenes into a clip-set folder (WAV + CSV + array.yaml).",
    )
    p.add_argument("--config", default=None, help="scene config YAML (default: config/sim/default.yaml)")
    p.add_argument("--array", default="respeaker_usb_v2", help="array name or geometry YAML (default: %(default)s)")
    p.add_argument("--n", type=int, default=None, help="number of scenes (required except with --merge)")
    p.add_argument("--out", required=True, help="output clip-set folder")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default: %(default)s)")
    p.add_argument("--duration", type=float, default=None, help="clip length in s (default: the config's)")
    p.add_argument("--start-index", type=int, default=0, help="index of the first scene (extend a set)")
    p.add_argument("--subtype", default="PCM_16", choices=("PCM_16", "PCM_24", "FLOAT"), help="WAV sample format")
    p.add_argument("--overwrite", action="store_true", help="replace existing scenes in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--shard", type=_shard, default=None, metavar="I/N",
        help="simulate only the scenes whose index is I modulo N (same seeds and files as the whole run), "
        "e.g. one task of a cluster job array; copy the shard folders into one and run --merge",
    )  # fmt: skip
    p.add_argument(
        "--merge", action="store_true",
        help="check that every shard of the set in --out is there (naming missing clips) and write scenes.jsonl",
    )  # fmt: skip
    p.set_defaults(func=_main)
