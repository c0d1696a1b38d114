"""The one module that knows FlagCX: what a checkout offers (probed from its files), how its perf
tests are named and called (colls.py: the collectives, one spelling), how its torch plugin takes
the adaptor, what an offline checkout needs."""
from .colls import COLLS, DEFAULT_COLLS, KNOWN_COLLS, Coll
from .interface import PROBE_PREFIX, PROBE_SCRIPT, FlagCXInterface, assumed_oldest, parse_probe, probe_local

__all__ = ["COLLS", "Coll", "DEFAULT_COLLS", "KNOWN_COLLS", "PROBE_PREFIX", "PROBE_SCRIPT",
           "FlagCXInterface", "assumed_oldest", "parse_probe", "probe_local"]
