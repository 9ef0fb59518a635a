#!/usr/bin/env bash
# AWX / Automation Platform checks: the execution environment's build context (ansible-builder create),
# the survey specs (AWX's rules; defaults pass the roles' argument specs), and the four playbooks run as
# job templates through ansible-runner with only the Kubernetes Bearer Token credential's environment
# (needs the lab; LAB_STATE_DIR selects another). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pytest -q -p no:cacheprovider tests/awx "$@"
