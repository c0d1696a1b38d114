"""Names that reach the engine or the file system: one rule, checked where a name enters.

Container and volume names follow Docker's own rule, `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; we also cap
them at 128 characters. Anything derived from a name that becomes a file (lock files, state
files) goes through `safe_filename`, so no name — even one that slipped past `check_name` —
can write outside its directory. Imports nothing heavy.
"""
from __future__ import annotations

import hashlib
import re

from .errors import UsageError

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
MAX_LEN = 128


def check_name(value, what: str = "name") -> str:
    """`value` if it is a valid Docker container/volume name, else UsageError (exit 2)."""
    if not isinstance(value, str):
        raise UsageError(f"{what} {value!r} is not text",
                         "quote it in YAML (e.g. name: \"010\") or pass a plain name")
    if not value:
        raise UsageError(f"{what} is empty", "give a name like cctl-mytest "
                         "(letters, digits, '_', '.', '-')")
    if len(value) > MAX_LEN:
        raise UsageError(f"{what} {value[:40]!r}… is {len(value)} characters long "
                         f"(at most {MAX_LEN})", "use a shorter name")
    if not NAME_RE.match(value):
        bad = next((ch for ch in value if not re.match(r"[a-zA-Z0-9_.-]", ch)), None)
        why = (f"it contains {bad!r}" if bad is not None and value[0] not in "_.-"
               else "it must start with a letter or digit")
        raise UsageError(f"{what} {value!r} is not a valid container name: {why}",
                         "use letters, digits, '_', '.' and '-' only, starting with a letter or "
                         "digit (e.g. cctl-mytest)")
    return value


def safe_filename(name: str) -> str:
    """A file name derived from `name` that stays inside its directory: a valid name maps to
    itself; anything else (slashes, `..`, NUL, empty, over-long) to a readable, collision-free
    substitute."""
    name = str(name)
    if NAME_RE.match(name) and len(name) <= MAX_LEN and name not in (".", ".."):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    stem = re.sub(r"[^a-zA-Z0-9_.-]", "_", name)[:64].lstrip(".") or "x"
    return f"{stem}-{digest}"
