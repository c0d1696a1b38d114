#!/usr/bin/env bash
# Write the FlagCX stand-in (selftest) as the source tree of one FlagCX interface generation:
#     export-generation.sh GEN DEST [FAULT]
# GEN: runbook | v0.11 | v0.13 | main; DEST: a new (or empty) directory; FAULT: written to
# DEST/.selftest-fault.  See ../README.md ("Interface generations", "Fault injection").
set -euo pipefail
exec python3 "$(dirname "${BASH_SOURCE[0]}")/export_generation.py" "$@"
