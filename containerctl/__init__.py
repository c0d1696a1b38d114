"""containerctl: platform profiles → containers → FlagCX test stages."""
__version__ = "0.1.0"
