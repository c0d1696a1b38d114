"""Validated profiles and stage definitions, remembered between commands.

`exec-stage` and `status` need the profile and the stage list, both validated by pydantic models;
importing pydantic and building those models costs ~0.1 s of CPU, more than a trivial stage's
whole exec. So what a validation produced is written down (in $CONTAINERCTL_HOME/cache) with
everything it came from: the content hash of every file whose content or existence decides the
result (for a profile: profiles.input_files — the extends chain, every search-path candidate
that could shadow one of its files, the site overlay; for the stages: every stage file of every
stage directory), the arguments, the environment that moves the search paths, the working
directory, and the code that validated it (containerctl's version, the stat of its validating
modules and of pydantic). A later command whose inputs are all the same reads the result back
without pydantic, as read-only `Frozen` stand-ins that answer attribute reads, model_dump() and
model_dump_json() as the models do. Anything different, a damaged cache, or a result that could
not be written down faithfully, and the models validate as always. Errors are never remembered:
a bad file is reported by the models every time. Imports nothing heavy (no pydantic, yaml).
"""
from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any, Union

from . import __version__, paths
from .upcache import load_checked

SCHEMA = 2     # 2: dict[str, Model] fields ({'*': submodels})
MAX_ENTRIES = 50
ENV_KEYS = ("CONTAINERCTL_PROFILE_PATH", "CONTAINERCTL_SITE", "XDG_CONFIG_HOME", "HOME")
_PKG = Path(__file__).resolve().parent
# the code whose behaviour a remembered result stands for
_CODE = ("profiles/__init__.py", "profiles/model.py", "profiles/loader.py", "yamlio.py",
         "names.py", "paths.py", "errors.py", "validated.py",
         "results/references.py", "stages/catalog.py", "stages/stagedef.py")


class Frozen:
    """The data of a validated pydantic model, read-only: `obj.field` as the model answers it
    (nested models are Frozen too, dict and list fields are the values themselves),
    model_dump() (a deep copy, as pydantic returns a new structure) and model_dump_json()
    (pydantic's own text, recorded when the model was validated)."""

    __slots__ = ("_data", "_subs", "_json", "_extra", "_kids")

    def __init__(self, data: dict, subs: dict, json_text: str | None = None,
                 extra: dict | None = None):
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_subs", subs)
        object.__setattr__(self, "_json", json_text)
        object.__setattr__(self, "_extra", extra or {})
        object.__setattr__(self, "_kids", {})

    def __getattr__(self, key: str):
        extra = self._extra
        if key in extra:
            return extra[key]
        try:
            value = self._data[key]
        except KeyError:
            raise AttributeError(key) from None
        sub = self._subs.get(key)
        if sub is not None and isinstance(value, dict):
            kid = self._kids.get(key)
            if kid is None:
                if set(sub) == {"*"}:      # dict[str, Model]: a dict of stand-ins
                    kid = {k: Frozen(v, sub["*"]) if isinstance(v, dict) else v
                           for k, v in value.items()}
                else:
                    kid = Frozen(value, sub)
                self._kids[key] = kid
            return kid
        return value

    def __setattr__(self, key: str, value) -> None:
        raise AttributeError(f"{key}: a remembered validated model is read-only")

    def model_dump(self) -> dict:
        return copy.deepcopy(self._data)

    def model_dump_json(self) -> str:
        if self._json is None:
            raise AttributeError("model_dump_json: not recorded for this part of the model")
        return self._json

    def __repr__(self) -> str:
        return f"Frozen({self._data!r})"


def submodels(cls) -> dict | None:
    """{field: its submodels} for the fields of pydantic model `cls` that hold a model (or
    Optional of one), {field: {"*": submodels}} for a dict[str, Model]; None when a model sits
    elsewhere in an annotation (a list of models…), which Frozen does not stand in for."""
    from pydantic import BaseModel   # start-up: only when a model is validated (the point of this file)

    def is_model(t) -> bool:
        return isinstance(t, type) and issubclass(t, BaseModel)

    def nested(t) -> bool:
        return is_model(t) or any(nested(a) for a in getattr(t, "__args__", ()) or ())
    out: dict = {}
    for name, f in cls.model_fields.items():
        ann = f.annotation
        args = [a for a in getattr(ann, "__args__", ()) or () if a is not type(None)]
        optional = getattr(ann, "__origin__", None) is Union or type(ann).__name__ == "UnionType"
        target = ann if is_model(ann) else (args[0] if optional and len(args) == 1 and
                                            is_model(args[0]) else None)
        if target is not None:
            sub = submodels(target)
            if sub is None:
                return None
            out[name] = sub
        elif getattr(ann, "__origin__", None) is dict and len(args) == 2 and \
                is_model(args[1]) and not nested(args[0]):
            sub = submodels(args[1])     # dict[str, Model]: each value stands in for a Model
            if sub is None:
                return None
            out[name] = {"*": sub}
        elif nested(ann):
            return None
    return out


def _content(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return "unreadable"     # never equal to a hash: such an input is validated every time


def _code_id() -> list:
    out: list = [__version__, SCHEMA]
    for rel in _CODE:
        try:
            st = os.stat(_PKG / rel)
            out.append([rel, st.st_mtime_ns, st.st_size])
        except OSError:
            out.append([rel, None])
    try:
        spec = importlib.util.find_spec("pydantic")
        origin = spec.origin if spec else None
        st = os.stat(Path(origin).parent / "version.py") if origin else None
        out.append(["pydantic", st.st_mtime_ns if st else None, st.st_size if st else None])
    except (ImportError, OSError, ValueError):
        out.append(["pydantic", None])
    return out


def _file() -> Path:
    return paths.home() / "cache" / "validated.json"


def _entry_ok(e) -> bool:
    return (isinstance(e, dict) and isinstance(e.get("files"), list)
            and all(isinstance(f, list) and len(f) == 2 and isinstance(f[0], str) and
                    (f[1] is None or isinstance(f[1], str)) for f in e["files"])
            and "result" in e)


def _load(warn: bool = False) -> dict:
    return load_checked(_file(), _entry_ok, warn)


def _lookup(key: str):
    entry = _load().get(key)
    if entry is None:
        return None
    for path, digest in entry["files"]:
        if _content(path) != digest:
            return None
    return entry["result"]


def _hashes(files: list[str]) -> list[list]:
    """[path, content hash] of each input, taken BEFORE validating: a file changed meanwhile
    then differs from what is recorded, and is validated again next time."""
    return [[f, _content(f)] for f in dict.fromkeys(files)]


def _record(key: str, hashes: list[list], result) -> None:
    try:
        data = _load(warn=True)
        data.pop(key, None)
        data[key] = {"files": hashes, "result": result}
        if len(data) > MAX_ENTRIES:
            data = dict(list(data.items())[-MAX_ENTRIES:])
        paths.atomic_write(_file(), json.dumps(data))
    except (OSError, TypeError, ValueError):
        pass     # a cache never stops a command


def _key(kind: str, args: Any) -> str:
    payload = [kind, args, _code_id(), os.getcwd(), [os.environ.get(k, "") for k in ENV_KEYS]]
    return kind + ":" + hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:32]


# ---------------------------------------------------------------------------------------------
# profiles

def _frozen_profile(r: dict) -> Frozen:
    return Frozen(r["dump"], r["subs"], r["json"], {"source_file": r["source_file"]})


def _profile_ok(r) -> bool:
    return (isinstance(r, dict) and isinstance(r.get("dump"), dict)
            and isinstance(r.get("subs"), dict) and isinstance(r.get("json"), str)
            and (r.get("source_file") is None or isinstance(r.get("source_file"), str)))


def load_profile(name: str, sets: list[str] | None = None):
    """profiles.load_profile(name, sets) — the same profile, or the same error — as a Frozen;
    without pydantic when nothing it depends on changed since it was last validated."""
    key = _key("profile", [name, list(sets or [])])
    r = _lookup(key)
    if _profile_ok(r):
        return _frozen_profile(r)
    from . import profiles   # start-up: pydantic, which a remembered profile does without
    try:
        hashes = _hashes([os.path.abspath(f) for f in profiles.input_files(name)])
    except Exception:
        hashes = None    # load_profile says what is wrong (or validates without memory)
    prof = profiles.load_profile(name, sets)
    subs = submodels(profiles.Profile)
    if subs is None:
        return prof
    r = {"dump": prof.model_dump(), "subs": subs, "json": prof.model_dump_json(),
         "source_file": prof.source_file}
    try:
        faithful = json.loads(json.dumps(r)) == r   # only JSON-plain data is written down
    except (TypeError, ValueError):
        faithful = False
    if not faithful:
        return prof
    if hashes is not None:
        _record(key, hashes, r)
    return _frozen_profile(r)


# ---------------------------------------------------------------------------------------------
# stage definitions

def _listing(dirs: list[Path]) -> list:
    """Which stage files exist (part of the key: a file appearing or going is another key)."""
    return [[str(d), sorted(f.name for f in d.glob("*.yaml")) if d.is_dir() else None]
            for d in dirs]


def load_stage_defs(dirs: list[Path], validate):
    """validate() — the stage definitions of `dirs`, or its error — as Frozen stand-ins; without
    pydantic when no stage file changed since they were last validated. `validate` returns the
    pydantic StageDef models (with .file set)."""
    dirs = [Path(os.path.abspath(d)) for d in dirs]
    listing = _listing(dirs)
    key = _key("stages", listing)
    r = _lookup(key)
    if isinstance(r, dict) and isinstance(r.get("defs"), list) and \
            isinstance(r.get("subs"), dict) and \
            all(isinstance(d, dict) and isinstance(d.get("dump"), dict) for d in r["defs"]):
        return [Frozen(d["dump"], r["subs"], None, {"file": d.get("file")}) for d in r["defs"]]
    hashes = _hashes([str(Path(d) / f) for d, names in listing for f in names or []])
    defs = validate()
    if not defs:
        return defs
    subs = submodels(type(defs[0]))
    if subs is None:
        return defs
    r = {"subs": subs, "defs": [{"dump": d.model_dump(), "file": d.file} for d in defs]}
    try:
        if json.loads(json.dumps(r)) != r:
            return defs
    except (TypeError, ValueError):
        return defs
    _record(key, hashes, r)
    return [Frozen(d["dump"], r["subs"], None, {"file": d.get("file")}) for d in r["defs"]]
