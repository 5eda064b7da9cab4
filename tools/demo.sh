#!/usr/bin/env bash
# The README's main job: a small OpenStack-shaped system traced end to end.
# Creates .venv (like tools/test.sh) if missing, installs the package, runs
# `os-trace demo` (arguments are passed on: --transport-url, --db-url, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/venv.sh
echo "== installing os_trace_plugins"
"$VENV/bin/pip" install -q -e .
exec "$VENV/bin/os-trace" demo "$@"
