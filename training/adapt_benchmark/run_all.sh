#!/usr/bin/env bash
# The adaptation benchmark end to end (see training/README.md, "Adaptation benchmark").
# Data -> training/data/adapt_benchmark, runs -> training/runs/adapt_benchmark (both ignored by
# git), tables -> training/adapt_benchmark/results. Resumable: re-run after a stop and finished
# runs are skipped. Extra arguments go to run_benchmark.py (e.g. --seeds 0 --steps 80).
set -euo pipefail
cd "$(dirname "$0")/../.."
source activate.sh
DATA=training/data/adapt_benchmark
nice -n 10 python training/adapt_benchmark/build_domains.py --out "$DATA" --workers 2
nice -n 10 python -u training/adapt_benchmark/run_benchmark.py --data "$DATA" --runs training/runs/adapt_benchmark "$@"
python training/adapt_benchmark/report.py --runs training/runs/adapt_benchmark --results training/adapt_benchmark/results
