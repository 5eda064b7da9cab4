# Sourced by tools/test.sh and tools/demo.sh: create the checkout's
# virtualenv on first use ($OS_TRACE_VENV, default .venv) and set $VENV.
PY=${PYTHON:-python3}
VENV=${OS_TRACE_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating $VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q -U pip setuptools wheel
fi
