#!/usr/bin/env bash
# The main job, end to end on the embedded lab: set up, lab up, the canon sweep, then the
# investigation of every failure the sweep found. Prints where the outputs are.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/redfix lab up
.venv/bin/redfix lab sweep
if .venv/bin/redfix batch --help >/dev/null 2>&1 && [ -d notebooks ] && [ -f notebooks/investigate.ipynb ]; then
  .venv/bin/redfix batch params/lab
else
  for c in params/lab/*.yaml; do .venv/bin/redfix isolate "$c" --classify || true; done
fi
echo "outputs: $(pwd)/outputs/$(date -u +%F)/"
