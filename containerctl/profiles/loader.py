"""Reading profiles: the search path, YAML with line numbers, `extends:`, the site overlay and
`--set a.b=c`, then validation by the model (model.py). Every error names the file, the line and
the key, and suggests the nearest key.

Search order for a profile name: ./profiles, $CONTAINERCTL_PROFILE_PATH (colon separated),
~/.config/containerctl/profiles, then the built-in profiles. A path to a .yaml file works too.
"""
from __future__ import annotations

import copy
import difflib
import os
import re
from pathlib import Path
from typing import Any, Callable

import yaml
from pydantic import BaseModel, ValidationError

from .. import paths, yamlio
from ..errors import NotFound, ProfileError, UsageError
from .model import Profile, flagcx_dir_problem

# ---------------------------------------------------------------------------------------------
# YAML with line numbers

_NON_TEXT_TAGS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool"}


class _Located:
    """Maps a key path (tuple) to the line where it appears in a YAML file."""

    MAX_NODES = 100_000

    def __init__(self, node, file: str):
        self.file = file
        self.lines: dict[tuple, int] = {}
        self.literal_names: dict[tuple, str] = {}   # `name:` scalars YAML would not read as text
        self._count = 0
        self._active: set[int] = set()
        if node is not None:
            self._walk(node, ())

    def _walk(self, node, path):
        self._count += 1
        # a plain scalar's style: None from the pure-Python parser, '' from libyaml's
        if isinstance(node, yaml.ScalarNode) and not node.style and node.tag in _NON_TEXT_TAGS \
                and ((path and path[-1] == "name") or
                     (":" in node.value and node.tag != "tag:yaml.org,2002:bool")):
            # YAML 1.1 reads `name: 010` as octal 8, `name: 1e3` as a float and `9:8` as the
            # base-60 number 548: a name, and anything written with a colon, is the text as
            # written
            self.literal_names[path] = node.value
        if id(node) in self._active:
            raise ProfileError(f"{self.file}:{node.start_mark.line + 1}: a YAML alias refers to "
                               "itself", "replace the recursive alias (&x … *x) with plain values")
        if len(path) > 64:
            raise ProfileError(f"{self.file}:{node.start_mark.line + 1}: nesting deeper than 64 "
                               "levels", "a profile is a few levels deep: flatten it")
        if self._count > self.MAX_NODES:
            raise ProfileError(f"{self.file}: more than {self.MAX_NODES} YAML nodes (aliases "
                               "expanding without bound?)", "a profile is a small file: remove "
                               "the nested aliases")
        self.lines.setdefault(path, node.start_mark.line + 1)
        self._active.add(id(node))
        try:
            self._walk_children(node, path)
        finally:
            self._active.discard(id(node))

    def _walk_children(self, node, path):
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in node.value:
                if not isinstance(k, yaml.ScalarNode):
                    raise ProfileError(f"{self.file}:{k.start_mark.line + 1}: a key must be a "
                                       "name, not a list or mapping", "write `key: value`")
                key = k.value
                if key != "<<":
                    if key in seen:
                        where = ".".join(str(p) for p in path + (key,))
                        raise ProfileError(
                            f"{self.file}:{k.start_mark.line + 1}: duplicate key `{where}` "
                            f"(first given on line {seen[key]}); YAML would silently keep only "
                            "the last one", "keep one of them (merge their values into it)")
                    seen[key] = k.start_mark.line + 1
                self.lines[path + (key,)] = k.start_mark.line + 1
                self._walk(v, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self.lines[path + (i,)] = v.start_mark.line + 1
                self._walk(v, path + (i,))

    def line(self, path: tuple) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def read_yaml(path: Path) -> tuple[dict, _Located]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file", "check the path") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read ({exc.__class__.__name__})",
                           "give a readable UTF-8 YAML file") from None
    try:
        node = yamlio.compose(text)
        loc = _Located(node, str(path))   # before loading: rejects recursive/explosive aliases
        data = yamlio.construct(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ProfileError(f"{where}: YAML syntax error: {problem}",
                           "fix the indentation/quoting on that line") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProfileError(f"{path}:1: a profile must be a mapping of keys, got "
                           f"{type(data).__name__}", "start the file with `name: ...`")
    _check_keys(data, loc, ())
    for key_path, text in loc.literal_names.items():
        _set_literal(data, key_path, text)
    return data, loc


def _set_literal(data, key_path: tuple, text: str) -> None:
    """Put the literal text of a `name:` scalar back where YAML put a number/bool/null."""
    cur = data
    for k in key_path[:-1]:
        if isinstance(cur, dict) and k in cur:
            cur = cur[k]
        elif isinstance(cur, list) and isinstance(k, int) and k < len(cur):
            cur = cur[k]
        else:
            return
    if isinstance(cur, dict) and key_path[-1] in cur and not isinstance(cur[key_path[-1]], str) \
            and not isinstance(cur[key_path[-1]], (dict, list)):
        cur[key_path[-1]] = text


def _check_keys(data, loc: "_Located", path: tuple) -> None:
    """Keys must be strings (YAML allows `1: 2`; a profile does not)."""
    if isinstance(data, dict):
        for k, v in data.items():
            if not isinstance(k, str):
                line = loc.line(path)
                raise ProfileError(f"{loc.file}:{line or 1}: key {k!r} under "
                                   f"`{'.'.join(map(str, path)) or '(top)'}` is not a name",
                                   "keys are names like shm_size; quote it if you meant text")
            _check_keys(v, loc, path + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            _check_keys(v, loc, path + (i,))


def _model_for(path: tuple, root: type[BaseModel] | None = None):
    """The pydantic model that owns the last key of `path` (for key suggestions); list and
    optional fields of models are followed too."""
    model = root or Profile
    for key in path[:-1]:
        if isinstance(key, int):
            continue
        f = model.model_fields.get(key)
        if f is None:
            return None
        ann = f.annotation
        args = getattr(ann, "__args__", ())
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        elif args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            model = args[0]
        else:
            return None
    return model


def load_located(model: type[BaseModel], path: Path, hint: str,
                 check: "Callable[[dict], None] | None" = None) -> Any:
    """A YAML file other than a profile (a hosts inventory, a Slurm inventory) read with its
    lines and validated into `model`; errors name file:line like a profile's, with `hint` (what
    such a file looks like) as the fix. `check(data)` may refuse the raw data first."""
    data, loc = read_yaml(path)
    if check:
        check(data)
    data = {k: v for k, v in data.items() if k != "source_file"}
    try:
        obj = model.model_validate(data)
    except ValidationError as exc:
        raise format_validation(exc, loc, None, root=model, missing_hint=f"({hint})",
                                type_hint=hint) from None
    obj.source_file = str(path)
    return obj


def format_validation(exc: ValidationError, loc: _Located, origin: dict[tuple, _Located] | None,
                       root: type[BaseModel] | None = None,
                       missing_hint: str = "to the profile (or `extends:` one that has it)",
                       type_hint: str = "see `containerctl profile schema` for the expected type"
                       ) -> ProfileError:
    """The first validation error as `file:line: …` with a fix (nearest key for unknown ones).
    Shared by every YAML file containerctl reads (profiles, overlays, hosts inventories)."""
    err = exc.errors()[0]
    path = tuple(err["loc"])
    where_loc = (origin or {}).get(path[:1], loc) if origin else loc
    line = where_loc.line(path) if path else None
    where = f"{where_loc.file}:{line or 1}"
    key = ".".join(str(p) for p in path) or "(top)"
    if err["type"] == "extra_forbidden":
        model = _model_for(path, root)
        choices = [f for f in model.model_fields if f != "source_file"] if model else []
        near = difflib.get_close_matches(str(path[-1]), choices, n=1)
        hint = f"did you mean `{'.'.join(str(p) for p in path[:-1] + (near[0],))}`?" if near \
            else f"valid keys here: {', '.join(choices)}"
        return ProfileError(f"{where}: unknown key `{key}`", hint)
    if err["type"] == "missing":
        return ProfileError(f"{where}: missing required key `{key}`",
                            f"add `{path[-1]}:` {missing_hint}")
    msg = err["msg"].removeprefix("Value error, ")
    return ProfileError(f"{where}: `{key}`: {msg}", type_hint)


# ---------------------------------------------------------------------------------------------
# search, merge, overrides

def search_dirs() -> list[Path]:
    dirs = [Path.cwd() / "profiles"]
    for p in os.environ.get("CONTAINERCTL_PROFILE_PATH", "").split(":"):
        if p:
            dirs.append(Path(p))
    dirs.append(paths.config_dir() / "profiles")
    dirs.append(paths.data_dir("profiles"))
    return dirs


def find_profile_file(name: str) -> Path:
    p = Path(name)
    if yamlio.names_a_file(name):
        if p.is_file():
            return p
        raise NotFound(f"profile file {name} does not exist", "check the path, or give a "
                       "profile name from `containerctl profile list`")
    f = yamlio.find_named(search_dirs(), name)
    if f:
        return f
    names = sorted(all_profile_names())
    near = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean `{near[0]}`?" if near else "see `containerctl profile list`"
    raise NotFound(f"no profile named `{name}`", hint)


def all_profile_names() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for d in reversed(search_dirs()):   # earlier dirs win
        if d.is_dir():
            for f in sorted(list(d.glob("*.yaml")) + list(d.glob("*.yml"))):
                out[f.stem] = f
    return out


def deep_merge(base: dict, over: dict) -> dict:
    """Dicts merge recursively; lists and scalars replace, except a key written `key+` whose
    list is appended to the base's list (site overlays add volumes this way)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(k, str) and k.endswith("+"):
            real = k[:-1]
            cur = out.get(real) or []
            if not isinstance(cur, list) or not isinstance(v, list):
                raise UsageError(f"`{k}` appends to a list, but `{real}` is not a list",
                                 f"write `{real}:` to replace it instead")
            out[real] = cur + [x for x in v if x not in cur]
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_set(expr: str) -> tuple[list[str], Any]:
    if "=" not in expr:
        raise UsageError(f"--set {expr!r} is not KEY=VALUE",
                         "write e.g. --set container.shm_size=64G")
    key, _, raw = expr.partition("=")
    key = key.strip()
    if not key or not re.match(r"^[A-Za-z0-9_.+\-]+$", key):
        raise UsageError(f"--set {expr!r}: bad key", "write e.g. --set container.privileged=false")
    keys = key.split(".")
    if keys == ["extends"]:
        raise UsageError("--set extends=… cannot change what a profile extends",
                         "write a profile file with `extends:` and pass it with --profile FILE")
    if keys[-1] == "name":   # a name is the text as typed (`010` is not the number 8)
        return keys, raw.strip()
    try:
        value = yamlio.safe_load(raw) if raw.strip() else ""   # depth-bounded
    except yaml.YAMLError:
        value = raw
    if isinstance(value, (int, float)) and not isinstance(value, bool) and ":" in raw:
        value = raw.strip()   # YAML 1.1 base 60: `nofile=9:8` is not the number 548
    return keys, value


def apply_sets(data: dict, sets: list[str]) -> dict:
    out = copy.deepcopy(data)
    for expr in sets or []:
        keys, value = parse_set(expr)
        cur = out
        for k in keys[:-1]:
            nxt = cur.get(k)
            if nxt is None:
                nxt = cur[k] = {}
            if not isinstance(nxt, dict):
                raise UsageError(f"--set {expr}: `{k}` is not a mapping", "set a leaf key")
            cur = nxt
        cur[keys[-1]] = value
        if keys[-1].endswith("+"):
            # appends: allow `--set container.volumes+=[a:b]` and a single value
            if not isinstance(value, list):
                cur[keys[-1]] = [value]
            merged = deep_merge({k: v for k, v in cur.items() if k != keys[-1]},
                               {keys[-1]: cur[keys[-1]]})
            cur.clear()
            cur.update(merged)
    return out


def site_overlay_file() -> Path | None:
    env = os.environ.get("CONTAINERCTL_SITE")
    if env:
        p = Path(env)
        if not p.is_file():
            raise NotFound(f"site overlay {env} (from CONTAINERCTL_SITE) does not exist",
                           "create it or unset CONTAINERCTL_SITE")
        return p
    p = paths.config_dir() / "site.yaml"
    return p if p.is_file() else None


MAX_EXTENDS = 32


def _load_raw(name: str, seen: tuple[str, ...] = ()) -> tuple[dict, _Located, dict]:
    """`seen` holds the resolved files of the chain so far: a loop is found whether its links
    are written as names or as paths (./a.yaml → b → ../x/a.yaml)."""
    f = find_profile_file(name)
    data, loc = read_yaml(f)
    origin = {(k,): loc for k in data}
    parent = data.get("extends")
    here = str(f.resolve())
    if parent:
        if not isinstance(parent, str):
            raise ProfileError(f"{f}:{loc.line(('extends',))}: `extends` must be a profile name",
                               "write e.g. `extends: nvidia-a800`")
        try:
            pfile = str(find_profile_file(parent).resolve())
        except NotFound:
            pfile = None
        if parent == f.stem or pfile == here or (pfile is not None and pfile in seen):
            chain = " → ".join([Path(x).name for x in seen] + [f.name, parent])
            raise ProfileError(f"{f}:{loc.line(('extends',))}: `extends: {parent}` makes a loop "
                               f"({chain})", "break the cycle of extends")
        if len(seen) >= MAX_EXTENDS:
            raise ProfileError(f"{f}:{loc.line(('extends',))}: more than {MAX_EXTENDS} levels of "
                               "extends", "a profile extends a few others at most: shorten it")
        pdata, _ploc, porigin = _load_raw(parent, seen + (here,))
        pdata.pop("name", None)
        merged = deep_merge(pdata, data)
        porigin.update(origin)
        return merged, loc, porigin
    return data, loc, origin


def load_profile(name: str, sets: list[str] | None = None, site: bool = True) -> Profile:
    """Load, merge (extends → profile → site overlay → --set) and validate a profile."""
    data, loc, origin = _load_raw(name)
    file = find_profile_file(name)
    if site:
        sf = site_overlay_file()
        if sf:
            sdata, sloc = read_yaml(sf)
            for k in ("name", "extends"):
                if k in sdata:
                    raise ProfileError(
                        f"{sf}:{sloc.line((k,))}: a site overlay cannot set `{k}`: it is merged "
                        "into every profile (it would " + ("rename every profile's container"
                                                           if k == "name" else
                                                           "be ignored") + ")",
                        f"remove `{k}:` from {sf.name}; " + (
                            "use --name N or a profile of your own for another name"
                            if k == "name" else "write a profile with `extends:` instead"))
            # a site overlay may carry per-profile sections: profiles: {name: {...}}
            per = sdata.pop("profiles", {}) or {}
            if not isinstance(per, dict):
                raise ProfileError(f"{sf}:{sloc.line(('profiles',))}: `profiles` must be a mapping",
                                   "write profiles: {<name>: {...}}")
            mine = per.get(data.get("name", file.stem)) or {}
            if not isinstance(mine, dict):
                raise ProfileError(f"{sf}:{sloc.line(('profiles', data.get('name', file.stem)))}: "
                                   "a per-profile section must be a mapping",
                                   "write profiles: {<name>: {container: {...}}}")
            for k in ("name", "extends"):
                if k in mine:
                    pname = data.get("name", file.stem)
                    raise ProfileError(
                        f"{sf}:{sloc.line(('profiles', pname, k))}: a site overlay's section "
                        f"for {pname} cannot set `{k}`",
                        f"remove `{k}:` there; write a profile of your own that `extends: "
                        f"{pname}` instead")
            for part in (sdata, mine):
                for k in part:
                    origin[(k.rstrip("+"),)] = sloc
                data = deep_merge(data, part)
    if sets:
        data = apply_sets(data, sets)
    data.setdefault("name", file.stem)
    data.pop("extends", None)
    data = {k: v for k, v in data.items() if k != "source_file"}
    try:
        prof = Profile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        err_key = ".".join(str(p) for p in err["loc"])
        set_keys = [x.split("=")[0].rstrip("+").strip() for x in sets or []]
        if any(err_key.startswith(k) or k.startswith(err_key + ".") for k in set_keys):
            raise format_validation(exc, _Located(None, "--set"), None) from None
        raise format_validation(exc, loc, origin) from None
    _check_references(prof.references, loc, origin, sets)
    _check_flagcx_dir(prof, loc, origin, sets)
    prof.source_file = str(file)
    return prof



def _check_flagcx_dir(prof: "Profile", loc: _Located, origin: dict,
                      sets: list[str] | None) -> None:
    """flagcx.dir is where containerctl copies (and, when it filled it, empties) the FlagCX
    checkout: an absolute, normalised path below the workspace, never a system directory."""
    c = prof.container
    roots = [r for r in (c.workspace, c.workdir) if r]
    why = flagcx_dir_problem(prof.flagcx.dir, roots)
    if why is None:
        return
    if "dir" not in prof.flagcx.model_fields_set:
        # not given: the default follows the workspace (container.workspace: /data → /data/FlagCX)
        for r in roots:
            moved = r.rstrip("/") + "/FlagCX"
            if flagcx_dir_problem(moved, roots) is None:
                prof.flagcx.dir = moved
                return
    from_set = any(x.split("=")[0].strip() in ("flagcx.dir", "flagcx") for x in sets or [])
    src = _Located(None, "--set") if from_set else origin.get(("flagcx",), loc)
    where = src.file if from_set else f"{src.file}:{src.line(('flagcx', 'dir')) or 1}"
    base = next((r.rstrip("/") for r in roots if r.startswith("/") and r != "/"), "/workspace")
    raise ProfileError(f"{where}: `flagcx.dir`: {why}: containerctl copies FlagCX there and may "
                       "empty it", f"give a directory below the workspace, e.g. --set "
                       f"flagcx.dir={base}/FlagCX (or `flagcx: {{dir: {base}/FlagCX}}` in the "
                       "profile)")


def _check_references(refs: dict, loc: _Located, origin: dict, sets: list[str] | None) -> None:
    """A bad `references:` entry is exit 2 naming file:line (or --set) and the entry."""
    if not refs:
        return
    from ..results.references import validate_references
    from_set = any(x.split("=")[0].strip().startswith("references") for x in sets or [])
    src = _Located(None, "--set") if from_set else origin.get(("references",), loc)
    for coll, table in refs.items():
        line = src.line(("references", coll)) or 1
        validate_references({coll: table}, f"{src.file}:{line}: references")


def input_files(name: str) -> list[str]:
    """Every path whose content or existence decides what `load_profile(name)` returns: the
    extends chain, every search-path candidate that could shadow a file of it, the site overlay
    (for the no-op `up` fast path)."""
    out: list[str] = []
    seen: set[str] = set()
    cur: str | None = name
    while cur and cur not in seen:
        seen.add(cur)
        if not yamlio.names_a_file(cur):
            out += [str(d / f"{cur}{ext}") for d in search_dirs() for ext in (".yaml", ".yml")]
        f = find_profile_file(cur)
        out.append(str(f))
        try:
            cur = (yamlio.safe_load(f.read_text()) or {}).get("extends")
        except (yaml.YAMLError, AttributeError):
            cur = None
    env = os.environ.get("CONTAINERCTL_SITE")
    out.append(env if env else str(paths.config_dir() / "site.yaml"))
    return out


def validate_file(path: str) -> Profile:
    """Validate one file on its own terms (extends resolved through the search path)."""
    p = Path(path)
    if not p.is_file():
        raise NotFound(f"{path}: no such file", "check the path")
    return load_profile(str(p), site=False)


def list_profiles() -> list[tuple[str, Path, Profile | None, str | None]]:
    rows = []
    for name, f in sorted(all_profile_names().items()):
        try:
            rows.append((name, f, load_profile(name, site=False), None))
        except Exception as exc:  # report, don't crash the listing
            rows.append((name, f, None, getattr(exc, "message", str(exc))))
    return rows


def profile_yaml(p: Profile) -> str:
    data = p.model_dump(exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
