"""The no-op `up` fast path, like compose's config hash but without re-resolving anything:
after a successful `up`, remember which files (and which paths that could shadow them) the
resolved config came from, with their stat fingerprints, and the config hash it produced. A
later `up` with the same arguments whose files are all unchanged only has to confirm that the
container still runs with that hash. Imports nothing heavy (no pydantic, yaml, jinja2, docker)."""
from __future__ import annotations

import glob
import hashlib
import json
import os
import sys
from pathlib import Path

from . import __version__, paths

ENV_KEYS = ("CONTAINERCTL_PROFILE_PATH", "CONTAINERCTL_SITE", "XDG_CONFIG_HOME", "DOCKER_HOST",
            "CONTAINERCTL_HOME")


def _key(profile_arg: str, name: str | None, sets: list[str] | None) -> str:
    payload = [__version__, profile_arg, name or "", list(sets or []), os.getcwd(),
               [os.environ.get(k, "") for k in ENV_KEYS]]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:24]


def _stat(path: str) -> list:
    try:
        st = os.stat(path)
        return [path, st.st_mtime_ns, st.st_size]
    except OSError:
        return [path, None, None]


def _fingerprint(files: list[str], globs: list[str]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(json.dumps(_stat(f)).encode())
    for g in globs:
        h.update(json.dumps([g, sorted(glob.glob(g))]).encode())
    return h.hexdigest()


def _file() -> Path:
    return paths.home() / "cache" / "up.json"


def _warn(msg: str) -> None:
    sys.stderr.write(f"warning: {msg}\n")


def _is_str_list(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _up_entry_ok(e) -> bool:
    return (isinstance(e, dict) and isinstance(e.get("name"), str)
            and isinstance(e.get("config_hash"), str) and isinstance(e.get("fingerprint"), str)
            and _is_str_list(e.get("files")) and _is_str_list(e.get("globs"))
            and isinstance(e.get("warnings", []), list))


def _tag_entry_ok(e) -> bool:
    return isinstance(e, dict) and isinstance(e.get("tag"), str) and \
        isinstance(e.get("fingerprint"), str)


def load_checked(path: Path, entry_ok, warn: bool) -> dict:
    """A memo file as {key: entry}, every entry of the expected shape. A file that is not (bad
    JSON, `[]`, a string, an entry missing a key) is dropped — with a warning when `warn` — and
    rebuilt by the next record: a cache never stops a command."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        if warn:
            _warn(f"cannot read the cache {path} ({exc.strerror or exc}); going without it")
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and all(isinstance(k, str) and entry_ok(v) for k, v in data.items()):
        return data
    if warn:
        _warn(f"the cache {path} is damaged (not the shape containerctl writes); it is dropped "
              "and rebuilt")
    return {}


def _load(warn: bool = False) -> dict:
    return load_checked(_file(), _up_entry_ok, warn)


def lookup(profile_arg: str, name: str | None, sets: list[str] | None) -> dict | None:
    """{name, config_hash} when nothing the config came from has changed since it was recorded."""
    entry = _load().get(_key(profile_arg, name, sets))
    if not entry:
        return None
    if _fingerprint(entry["files"], entry["globs"]) != entry["fingerprint"]:
        return None
    return entry


def record(profile_arg: str, name: str | None, sets: list[str] | None, files: list[str],
           globs: list[str], container: str, config_hash: str,
           warnings: list[str] | None = None) -> None:
    data = _load(warn=True)
    data[_key(profile_arg, name, sets)] = {
        "name": container, "config_hash": config_hash, "files": sorted(set(files)),
        "globs": sorted(set(globs)), "fingerprint": _fingerprint(sorted(set(files)),
                                                                 sorted(set(globs))),
        "warnings": [str(w) for w in warnings or []]}
    if len(data) > 200:   # keep it small: drop the oldest entries
        data = dict(list(data.items())[-200:])
    try:
        paths.atomic_write(_file(), json.dumps(data))
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# image tags: rendering a spec to learn its content-hash tag costs ~0.3 s; the tag only changes
# when a spec/template file, the overrides or the base image change

def _tag_key(image: str, overrides: dict, base_id: str) -> str:
    return hashlib.sha256(json.dumps([__version__, image, overrides, base_id],
                                     sort_keys=True, default=str).encode()).hexdigest()[:24]


def image_tag_lookup(image: str, overrides: dict, base_id: str, files: list[str]) -> str | None:
    entry = _load_tags().get(_tag_key(image, overrides, base_id))
    if entry and entry["fingerprint"] == _fingerprint(files, []):
        return entry["tag"]
    return None


def image_tag_record(image: str, overrides: dict, base_id: str, files: list[str], tag: str):
    data = _load_tags(warn=True)
    data[_tag_key(image, overrides, base_id)] = {"tag": tag, "fingerprint": _fingerprint(files, [])}
    if len(data) > 100:
        data = dict(list(data.items())[-100:])
    try:
        paths.atomic_write(_tags_file(), json.dumps(data))
    except OSError:
        pass


def _tags_file() -> Path:
    return paths.home() / "cache" / "image-tags.json"


def _load_tags(warn: bool = False) -> dict:
    return load_checked(_tags_file(), _tag_entry_ok, warn)
