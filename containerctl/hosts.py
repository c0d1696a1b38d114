"""Kept for imports written before the cluster package: the inventory now lives in
containerctl/cluster/inventory.py."""
from .cluster.inventory import *  # noqa: F401,F403
from .cluster.inventory import (INVENTORY_HINT, ClusterOpts, HostEntry, Inventory,  # noqa: F401
                                known_hosts, load_inventory, mpich_hostfile, openmpi_hostfile,
                                single_device_warnings, ssh_client_config)
