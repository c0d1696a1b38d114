"""The names of every label containerctl puts on the objects it makes (containers, volumes,
images), in one place — like docker compose's labels.go. The labels are the truth about who
made an object: one Docker engine serves several people and several CONTAINERCTL_HOMEs, so
ownership is read from the object itself, never from a home directory.

Imports nothing (the fast paths read these names)."""
from __future__ import annotations

PREFIX = "io.containerctl."

# every object containerctl makes
MANAGED = PREFIX + "managed"              # "1": containerctl made it (the only test of ownership)
CREATION_ID = PREFIX + "creation-id"      # a uuid per creation: cleanup removes only its own
VERSION = PREFIX + "version"              # containerctl's version that made it

# containers
NAME = PREFIX + "name"
PROFILE = PREFIX + "profile"              # the profile's name
PROFILE_FILE = PREFIX + "profile-file"    # the file it was loaded from
CONFIG_HASH = PREFIX + "config-hash"      # what `up` compares to decide no-op / recreate
WORKSPACE_VOLUME = PREFIX + "workspace-volume"
SETS = PREFIX + "sets"                    # JSON list: the --set overrides it was brought up with
CLUSTER = PREFIX + "cluster"
CLUSTER_HOST = PREFIX + "cluster-host"
PROBE = PREFIX + "probe"                  # a throwaway probe container (doctor / hostcheck)

# volumes
VOLUME_OF = PREFIX + "volume-of"          # the container name a volume was made for

# images
IMAGE = PREFIX + "image"
HASH = PREFIX + "hash"
BASE = PREFIX + "base"


def is_managed(labels: dict | None) -> bool:
    return bool(labels) and MANAGED in labels
