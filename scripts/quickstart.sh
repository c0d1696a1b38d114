#!/usr/bin/env bash
# Quick start on a fresh Debian machine: set up, then run the main job end to end on the
# embedded default profile (cpu-selftest: deps → build → unittest → perf against the FlagCX
# stand-in).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$top/scripts/setup-host.sh"
exec "$top/.venv/bin/containerctl" run --profile cpu-selftest "$@"
