"""`python -m containerctl` (for hosts where the entry point is not installed)."""
import sys

from .cli.entry import main

sys.exit(main())
