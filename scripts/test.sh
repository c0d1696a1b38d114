#!/usr/bin/env bash
# Set up a fresh Debian machine and run every test (unit + integration on a real Docker engine).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONTAINERCTL_SETUP_TEST_DEPS=1 bash "$top/scripts/setup-host.sh"
cd "$top"
exec .venv/bin/python -m pytest -q -ra "$@"
