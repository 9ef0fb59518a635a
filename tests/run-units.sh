#!/usr/bin/env bash
# Unit tests of the collection (pytest; fake API, no lab needed). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pytest -q -p no:cacheprovider tests/unit "$@"
