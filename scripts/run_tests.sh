#!/usr/bin/env bash
# Runs pytest with DDS isolated: a unique ROS_DOMAIN_ID per run, discovery on localhost.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Domain ids 1..101 are safe for FastDDS port ranges; pick one from the PID and time.
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( ( $$ + $(date +%s) ) % 100 + 1 ))}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export MPLBACKEND=Agg
echo "[tests] ROS_DOMAIN_ID=$ROS_DOMAIN_ID"
exec python -m pytest -q "$@"
