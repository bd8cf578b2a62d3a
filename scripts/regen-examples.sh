#!/usr/bin/env bash
# Regenerate outputs/example from its stored bundles, no engine needed: every verdict.json is
# re-classified by replay, every case notebook and summary.ipynb re-executed, STATUS.md/.html
# rewritten; then nbval checks the executed notebooks. Run after a change to classify/report/notebooks.
# (run_batch directly: the CLI's --date takes only YYYY-MM-DD, and the examples' folder is "example".)
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -c 'import sys
from redfix_lib.batch import run_batch
sys.exit(run_batch(["params/lab"], date="example", out_root="outputs", live=False, force=True))'
.venv/bin/python -m pytest -p no:cacheprovider -q --nbval --nbval-current-env \
  --nbval-sanitize-with "$PWD/tests/nbval_sanitize.cfg" outputs/example
