#!/usr/bin/env bash
# The README's main job: a small OpenStack-shaped system traced end to end.
# Creates .venv (like tools/test.sh) if missing, installs the package (a
# regular install: an editable one makes setuptools print a notice), runs
# `os-trace demo` (arguments are passed on: --transport-url, --db-url, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/venv.sh
echo "== installing os_trace_plugins"
pip_install .
exec "$VENV/bin/os-trace" demo "$@"
