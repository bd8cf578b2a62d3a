#!/usr/bin/env bash
# The main job, end to end on the embedded lab: set up, lab up, the canon sweep, then every
# failure the sweep found investigated by the notebook (papermill batch) and the summary
# (STATUS.md + STATUS.html). Prints where everything is.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
day=$(date -u +%F)
.venv/bin/redfix lab up
.venv/bin/redfix lab sweep --out "outputs/$day/sweep"
.venv/bin/redfix batch params/lab --sweep "outputs/$day/sweep/sweep.json" --date "$day"
echo
echo "sweep report : $(pwd)/outputs/$day/sweep/sweep.md"
echo "STATUS.md    : $(pwd)/outputs/$day/STATUS.md"
echo "STATUS.html  : $(pwd)/outputs/$day/STATUS.html"
echo "notebooks    : $(pwd)/outputs/$day/*.ipynb"
