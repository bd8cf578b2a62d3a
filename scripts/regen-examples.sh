#!/usr/bin/env bash
# Regenerate outputs/example from its stored bundles, no engine needed: every verdict.json is
# re-classified by replay, every case notebook and summary.ipynb re-executed, STATUS.md/.html
# rewritten; then nbval checks the executed notebooks. Run after a change to classify/report/notebooks.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/redfix batch params/lab --replay --force --out-root outputs --date example
.venv/bin/python -m pytest -p no:cacheprovider -q --nbval --nbval-current-env \
  --nbval-sanitize-with "$PWD/tests/nbval_sanitize.cfg" outputs/example
