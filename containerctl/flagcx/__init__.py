"""The one module that knows FlagCX: what a checkout offers (probed from its files), how its perf
tests are named and called, how its torch plugin takes the adaptor, what an offline checkout needs."""
from .interface import (DEFAULT_COLLS, KNOWN_COLLS, PROBE_PREFIX, PROBE_SCRIPT, FlagCXInterface,
                        assumed_oldest, parse_probe, probe_local)

__all__ = ["DEFAULT_COLLS", "KNOWN_COLLS", "PROBE_PREFIX", "PROBE_SCRIPT", "FlagCXInterface",
           "assumed_oldest", "parse_probe", "probe_local"]
