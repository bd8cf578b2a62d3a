#!/usr/bin/env bash
# All tests, engine tests included: sets up, brings the lab up (installs and starts dockerd
# if needed), then runs pytest with engine skips turned into failures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/redfix lab up
export REDFIX_REQUIRE_ENGINE=1 PYTHONHASHSEED=0
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
