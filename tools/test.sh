#!/usr/bin/env bash
# The whole test suite from nothing: a virtualenv, the package with its test
# extras, ruff, mypy, then every test layer (unit, functional, real services)
# on SQLAlchemy 2.1, and the unit + functional layers again on SQLAlchemy 2.0.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/venv.sh
echo "== headless Chromium and Graphviz for the HTML/DOT report tests"
bash tools/install-chromium.sh
echo "== installing os_trace_plugins[test,bench,grpc]"
pip_install -e '.[test,bench,grpc]'
echo "== ruff"
"$VENV/bin/ruff" check os_trace_plugins tests bench
echo "== mypy"
"$VENV/bin/mypy" os_trace_plugins
echo "== pytest (SQLAlchemy $("$VENV/bin/python" -c 'import sqlalchemy; print(sqlalchemy.__version__)'))"
"$VENV/bin/pytest" -q "$@" tests
SA20="$VENV/sa20"
if [ ! -d "$SA20/sqlalchemy" ]; then
    pip_install --no-deps --target "$SA20" 'SQLAlchemy>=2.0,<2.1'
fi
echo "== pytest unit + functional (SQLAlchemy $(PYTHONPATH=$SA20 "$VENV/bin/python" -c 'import sqlalchemy; print(sqlalchemy.__version__)'))"
PYTHONPATH="$SA20" "$VENV/bin/pytest" -q "$@" tests/unit tests/functional
