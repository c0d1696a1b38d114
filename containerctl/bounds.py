"""Bounds on numbers where they enter (issue 18): past these nothing real runs, and a typo (an
extra digit, a wrong unit) would hang a run for years or size a buffer past any device. One
place for the numbers: the profile model, the command line and the fast path all read them.
Imports nothing (the fast paths read it)."""

MAX_TIMEOUT_S = 7 * 24 * 3600      # a stage timeout: one week
MAX_PERF_BYTES = 1 << 40           # a perf message size: 1T, more than any device holds today
MAX_ITERS = 1_000_000              # perf -n / -w
MAX_FACTOR = 1024                  # perf -f
