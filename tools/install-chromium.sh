#!/usr/bin/env bash
# Headless Chromium + chromedriver from the distribution for the HTML report
# test (tests/functional/test_html_chromium.py); nothing downloads a browser.
# A no-op when both are already installed.  Needs root (apt-get).
set -euo pipefail
# Graphviz (dot) comes along for the `os-trace show --dot --render` path.
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && command -v dot >/dev/null; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium chromium-driver graphviz
