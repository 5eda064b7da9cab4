#!/usr/bin/env bash
# The whole test suite from nothing: a virtualenv, the package with its test
# extras, ruff, mypy, then every test layer (unit, functional, real services)
# on the newest supported releases (SQLAlchemy 2.1, OpenTelemetry, oslo.messaging),
# the unit + functional layers again on SQLAlchemy 2.0, and once more in a
# second virtualenv holding the oldest supported OpenTelemetry SDK and
# oslo.messaging (tools/oldest-constraints.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/venv.sh
echo "== headless Chromium and Graphviz for the HTML/DOT report tests"
bash tools/install-chromium.sh
echo "== installing os_trace_plugins[test,services,bench,grpc]"
pip_install -e '.[test,services,bench,grpc]'
echo "== ruff"
"$VENV/bin/ruff" check os_trace_plugins tests bench
echo "== mypy"
"$VENV/bin/mypy" os_trace_plugins
versions() {
    "$1" -c 'import sqlalchemy
from importlib.metadata import version
print("SQLAlchemy", sqlalchemy.__version__, "| opentelemetry-sdk", version("opentelemetry-sdk"),
      "| oslo.messaging", version("oslo.messaging"))'
}
echo "== pytest ($(versions "$VENV/bin/python"))"
"$VENV/bin/pytest" -q "$@" tests
SA20="$VENV/sa20"
if [ ! -d "$SA20/sqlalchemy" ]; then
    pip_install --no-deps --target "$SA20" 'SQLAlchemy>=2.0,<2.1'
fi
echo "== pytest unit + functional ($(PYTHONPATH=$SA20 versions "$VENV/bin/python"))"
PYTHONPATH="$SA20" "$VENV/bin/pytest" -q "$@" tests/unit tests/functional
OLDEST="$VENV-oldest"
if [ ! -x "$OLDEST/bin/python" ]; then
    echo "== creating $OLDEST"
    "$PY" -m venv "$OLDEST"
    VENV="$OLDEST" pip_install -U pip setuptools wheel
fi
# opentelemetry-distro: the SDK configurator the zero-code tests start under
VENV="$OLDEST" pip_install -e '.[test]' opentelemetry-distro -c tools/oldest-constraints.txt
echo "== pytest unit + functional ($(versions "$OLDEST/bin/python"))"
"$OLDEST/bin/pytest" -q "$@" tests/unit tests/functional
