#!/usr/bin/env bash
# All tests, engine and sshd tests included: sets up, brings the lab up (installs and starts
# dockerd if needed), then runs pytest (unit, engine, ssh, end-to-end lab verdicts) and nbval on
# the stored example notebooks, with engine/sshd skips turned into failures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/redfix lab up
export REDFIX_REQUIRE_ENGINE=1 PYTHONHASHSEED=0
.venv/bin/python -m pytest -p no:cacheprovider -q --nbval --nbval-current-env \
  --nbval-sanitize-with "$PWD/tests/nbval_sanitize.cfg" tests outputs/example "$@"
