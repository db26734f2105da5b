#!/usr/bin/env python3
"""How the direction prior's benchmark figures depend on its settings (a report; labels read).

For each domain: the shipped network's talker azimuths on the unlabelled pool (as ``sst adapt``
computes them), then for each setting of the smoothing width, the uniform share and the floor
(:func:`sst_ros.adapt.direction_prior.direction_weights`), the MAE of the weighted spectrum on
the labelled test clips. The package's defaults were fixed before this ran; the table shows
whether the figures of the ``prior`` row depend on that choice. Only the weights are varied
(a setting whose weights are all 1 is the unadapted model); the decision's other checks
(enough speech, agreeing halves) are those of the defaults.

Usage:
    python training/adapt_benchmark/prior_sensitivity.py --data training/data/adapt_benchmark \\
        [--domains sector combined]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scoring import load_test_set, model_spectra, spectrum_errors  # noqa: E402

from sst_ros.adapt.direction_prior import (  # noqa: E402
    FLOOR,
    SMOOTHING_DEG,
    UNIFORM_SHARE,
    direction_weights,
    target_directions,
)
from sst_ros.data.target_set import load_target_set  # noqa: E402
from sst_ros.model.checkpoint import load_checkpoint  # noqa: E402
from sst_ros.model.direction_prior import DirectionPrior  # noqa: E402

DOMAINS = ("device", "sector", "acoustic", "combined")
SMOOTHING = (10.0, 15.0, 20.0)
SHARE = (0.25, 0.5)
FLOORS = (0.05, 0.1, 0.2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("training/data/adapt_benchmark"))
    p.add_argument("--domains", nargs="+", default=list(DOMAINS), choices=DOMAINS)
    args = p.parse_args(argv)
    loaded = load_checkpoint(None)
    grid, fs = loaded.model_cfg.grid, loaded.feature_cfg.sample_rate_hz
    settings = list(itertools.product(SMOOTHING, SHARE, FLOORS))
    print("| domain | unadapted | " + " | ".join(f"s{s:g} u{u:g} f{f:g}" for s, u, f in settings) + " |")
    print("|---|---|" + "---|" * len(settings))
    for domain in args.domains:
        pool = load_target_set([args.data / domain / "pool"], loaded.array, fs, min_duration_s=loaded.frame_s)
        az = np.concatenate(target_directions(loaded, [r.audio for r in pool.recordings]))
        test = load_test_set(args.data / domain / "test", loaded)
        spectra, n = model_spectra(loaded.model, test), test.n_active.sum()
        cells = [f"{spectrum_errors(spectra, grid, test).sum() / n:.2f}"]
        for s, u, f in settings:
            w = direction_weights(az, grid, smoothing_deg=s, uniform_share=u, floor=f)
            mae = spectrum_errors(spectra, grid, test, DirectionPrior(w) if w.min() < 1 else None).sum() / n
            default = (s, u, f) == (SMOOTHING_DEG, UNIFORM_SHARE, FLOOR)
            cells.append(f"**{mae:.2f}**" if default else f"{mae:.2f}")
        print(f"| {domain} | " + " | ".join(cells) + " |", flush=True)
    print(f"(bold: the package's defaults, smoothing {SMOOTHING_DEG:g} deg, share {UNIFORM_SHARE:g}, floor {FLOOR:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
