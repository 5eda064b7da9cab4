# Sourced by tools/test.sh and tools/demo.sh: create the checkout's
# virtualenv on first use ($OS_TRACE_VENV, default .venv), set $VENV and
# define `pip_install`.
PY=${PYTHON:-python3}
VENV=${OS_TRACE_VENV:-.venv}

# pip_install ARGS...: "$VENV/bin/pip" install -q ARGS, minus the lines this
# machine's pip configuration adds on every install (an extra index that
# points at folders which do not exist); everything else pip says is kept.
pip_install() {
    "$VENV/bin/pip" install -q "$@" \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating $VENV"
    "$PY" -m venv "$VENV"
    pip_install -U pip setuptools wheel
fi
