"""Images: a spec (images/*.yaml) is a base plus ordered building blocks; each block is one small
Jinja2 template (Dockerfile.templates/<block>.j2) whose header declares its options with
defaults. Rendering gives a Dockerfile; building tags the result by a content hash of the
Dockerfile, the files it copies and the base image id, so unchanged inputs never rebuild.

    spec (yaml, pydantic)  ->  plan (blocks + resolved options)  ->  Dockerfile text
        -> build context dir (Dockerfile + copied files)  ->  sha256  ->  containerctl/<name>:<hash12>

A base is either an image reference (`base.image`, used as is: local, or pulled by the build) or
a bootstrap recipe (`base.bootstrap`: mmdebstrap/debootstrap into a tarball that is imported
under `base.tag`), for hosts that cannot reach a registry.

Nothing here imports `docker` (engine.py does) and jinja2 is imported only when rendering.
"""
from __future__ import annotations

import contextlib
import difflib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import yaml
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, field_validator, \
    model_validator

from . import paths
from .errors import ImageError

# BASE_LABEL: the bootstrap recipe key of an imported base
from .labels import BASE as BASE_LABEL, HASH as HASH_LABEL, IMAGE as IMAGE_LABEL  # noqa: E402
REPO_PREFIX = "containerctl/"
TOP_TEMPLATE = "image.Dockerfile.j2"
# Part of every bootstrap key: bump it when the bootstrap command line below changes meaning.
BOOTSTRAP_RECIPE = "containerctl-bootstrap-2"

_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # the classic builder colours stderr lines
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_HEADER_RE = re.compile(r"\A\{#---\n(.*?)\n---#\}", re.S)
_RESERVED = {"pkg", "image", "base_ref", "ctx", "block_id", "fail"}

OnLine = Callable[[str], None]


# ---------------------------------------------------------------------------------------------
# where things are

def image_dirs() -> list[Path]:
    """Image specs: the user's (config dir) first, then the built-ins."""
    return [paths.config_dir() / "images", paths.data_dir("images")]


def template_dirs() -> list[Path]:
    """Block templates: the user's first (a site can add or replace blocks), then the built-ins."""
    return [paths.config_dir() / "Dockerfile.templates", paths.data_dir("Dockerfile.templates")]


def _display(path: Path) -> str:
    """A file's name as errors and rendered Dockerfiles show it: `images/x.yaml` for built-ins."""
    path = Path(path)
    for kind in ("images", "Dockerfile.templates"):
        root = paths.data_dir(kind)
        try:
            return f"{kind}/{path.resolve().relative_to(root.resolve())}"
        except ValueError:
            pass
    return str(path)


# ---------------------------------------------------------------------------------------------
# YAML with line numbers

def _line_map(text: str) -> dict[tuple, int]:
    """Map each key path (('blocks', 2, 'version')) of a YAML document to its 1-based line."""
    out: dict[tuple, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return out

    def walk(node, path: tuple) -> None:
        out.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = path + (key.value,)
                out[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, path + (i,))

    if root is not None:
        walk(root, ())
    return out


def _line_of(lines: dict[tuple, int], loc: tuple) -> int | None:
    loc = tuple(loc)
    while loc and loc not in lines:
        loc = loc[:-1]
    return lines.get(loc)


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _suggest(word: str, choices) -> str:
    choices = sorted({str(c) for c in choices})
    near = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.5)
    if near:
        return f"did you mean '{near[0]}'? (valid: {', '.join(choices)})"
    return f"valid: {', '.join(choices)}" if choices else ""


# ---------------------------------------------------------------------------------------------
# the spec

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Bootstrap(_Strict):
    """A Debian-family root filesystem made with mmdebstrap (or debootstrap) and imported."""
    tool: Literal["mmdebstrap", "debootstrap"] = "mmdebstrap"
    suite: str
    mirror: str = "http://deb.debian.org/debian"
    variant: str = "minbase"
    components: list[str] = ["main"]
    include: list[str] = []
    architecture: str | None = None
    slim: bool = True  # leave out man pages, docs and translations (also for later installs)


class BaseSpec(_Strict):
    image: str | None = None
    bootstrap: Bootstrap | None = None
    tag: str | None = None
    pkg: Literal["apt", "dnf", "yum"] = "apt"

    @model_validator(mode="after")
    def _one_source(self):
        if bool(self.image) == bool(self.bootstrap):
            raise ValueError("give exactly one of `image` (a reference) or `bootstrap` (a recipe)")
        if self.bootstrap and not self.tag:
            raise ValueError("a bootstrapped base needs `tag`, the name it is imported under")
        if self.image and self.tag:
            raise ValueError("`tag` names an imported bootstrap; with `image` leave it out")
        return self

    @property
    def ref(self) -> str:
        return self.image or self.tag or ""


class BlockSpec(BaseModel):
    """`use` names the template; every other key is an option declared in that template."""
    model_config = ConfigDict(extra="allow")
    use: str
    id: str | None = None

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def key(self) -> str:
        return self.id or self.use


class ImageSpec(_Strict):
    name: str
    description: str = ""
    base: BaseSpec
    env: dict[str, str] = {}
    blocks: list[BlockSpec]
    workdir: str | None = None

    _path: Path | None = PrivateAttr(default=None)
    _lines: dict = PrivateAttr(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError("use lower-case letters, digits, '.', '_' and '-' (a Docker repo name)")
        return v

    @field_validator("env", mode="before")
    @classmethod
    def _env_strings(cls, v):
        if isinstance(v, dict):
            return {str(k): ("" if val is None else str(val).lower() if isinstance(val, bool)
                             else str(val)) for k, val in v.items()}
        return v

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def source(self) -> str:
        return _display(self._path) if self._path else f"<{self.name}>"

    def line(self, *loc) -> int | None:
        return _line_of(self._lines, loc)

    def where(self, *loc) -> str:
        line = self.line(*loc)
        return f"{self.source}:{line}" if line else self.source


_MODELS: dict[str, type[BaseModel]] = {"": ImageSpec, "base": BaseSpec, "bootstrap": Bootstrap,
                                       "blocks": BlockSpec}


def _fields_at(loc: tuple) -> list[str]:
    model: type[BaseModel] = ImageSpec
    for part in loc:
        if isinstance(part, int):
            continue
        nxt = _MODELS.get(part)
        if nxt is None:
            return []
        model = nxt
    return list(model.model_fields)


def _spec_error(exc: ValidationError, source: str, lines: dict) -> ImageError:
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if isinstance(p, (str, int)))
    line = _line_of(lines, loc)
    where = f"{source}:{line}" if line else source
    kind = err["type"]
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    hint = "see the built-in images in images/ for the expected shape"
    if kind == "extra_forbidden":
        msg = f"unknown key '{loc[-1]}'"
        hint = _suggest(loc[-1], _fields_at(loc[:-1])) or hint
    elif kind == "missing":
        msg = f"missing required key '{loc[-1]}'"
    elif kind == "literal_error":
        hint = msg
        msg = f"bad value {err.get('input')!r}"
    return ImageError(f"{where}: {_dotted(loc)}: {msg}", hint)


def _load_spec_file(path: Path) -> ImageSpec:
    source = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ImageError(f"cannot read image spec {source}: {exc.strerror}",
                         "check the path") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ImageError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}",
                         "fix the indentation or quoting there") from None
    if not isinstance(data, dict):
        raise ImageError(f"{source}: an image spec is a mapping (name, base, blocks)",
                         "see images/cpu-selftest.yaml")
    lines = _line_map(text)
    try:
        spec = ImageSpec.model_validate(data)
    except ValidationError as exc:
        raise _spec_error(exc, source, lines) from None
    spec._path = path
    spec._lines = lines
    _check_blocks(spec)
    return spec


def list_images() -> list[ImageSpec]:
    """Every image spec found (the user's config dir first; a name there hides a built-in)."""
    seen: dict[str, ImageSpec] = {}
    for d in image_dirs():
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.yaml")):
            spec = _load_spec_file(f)
            seen.setdefault(spec.name, spec)
    return sorted(seen.values(), key=lambda s: s.name)


def load_image(name_or_path: str | os.PathLike | ImageSpec) -> ImageSpec:
    """An image spec by name (searched in image_dirs()) or by the path of a YAML file."""
    if isinstance(name_or_path, ImageSpec):
        return name_or_path
    text = str(name_or_path)
    p = Path(text).expanduser()
    if p.suffix in (".yaml", ".yml") or os.sep in text:
        if p.is_file():
            return _load_spec_file(p)
        raise ImageError(f"no image spec at {text}", "check the path, or give a name from "
                         "`containerctl image list`")
    for d in image_dirs():
        for suffix in (".yaml", ".yml"):
            f = d / f"{text}{suffix}"
            if f.is_file():
                spec = _load_spec_file(f)
                if spec.name != text:
                    raise ImageError(f"{spec.where('name')}: name: '{spec.name}' differs from the "
                                     f"file name '{f.name}'", "make them equal")
                return spec
    known = sorted({f.stem for d in image_dirs() if d.is_dir() for f in d.glob("*.y*ml")})
    raise ImageError(f"unknown image '{text}'",
                     (_suggest(text, known) or "no image specs found") +
                     "; `containerctl image list` shows them")


# ---------------------------------------------------------------------------------------------
# blocks: templates with declared options

_TYPES = {"str": str, "int": int, "bool": bool, "list": list, "dict": dict}


@dataclass
class Option:
    name: str
    default: Any
    type: str  # str int bool list dict any
    choices: list | None
    required: bool
    doc: str
    line: int  # in the template file

    def check(self, value: Any) -> Any:
        """The value if it fits this option, else ValueError with a one-line reason."""
        if self.type == "any":
            pass
        elif self.type == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"expects true or false, got {value!r}")
        elif self.type == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"expects an integer, got {value!r}")
        elif self.type == "str":
            if not isinstance(value, str):
                raise ValueError(f"expects a string, got {type(value).__name__} {value!r} "
                                 "(quote it in YAML)")
        elif not isinstance(value, _TYPES[self.type]):
            raise ValueError(f"expects a {self.type}, got {type(value).__name__} {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"must be one of {', '.join(map(str, self.choices))}; "
                             f"got {value!r}")
        return value


@dataclass
class BlockDef:
    name: str
    path: Path
    doc: str
    options: dict[str, Option]
    aliases: dict[str, str]
    header_lines: tuple[int, int]

    @property
    def source(self) -> str:
        return _display(self.path)

    def where(self, option: str | None = None) -> str:
        if option and option in self.options:
            return f"{self.source}:{self.options[option].line}"
        return f"{self.source}:{self.header_lines[0]}-{self.header_lines[1]}"


def block_names() -> list[str]:
    names = set()
    for d in template_dirs():
        if d.is_dir():
            names.update(f.stem for f in d.glob("*.j2")
                         if not f.name.startswith("_") and f.name != TOP_TEMPLATE)
    return sorted(names)


def block_def(name: str) -> BlockDef:
    for d in template_dirs():
        f = d / f"{name}.j2"
        if f.is_file() and not name.startswith("_") and f.name != TOP_TEMPLATE:
            return _parse_block(f, f.stat().st_mtime_ns)
    raise KeyError(name)


@lru_cache(maxsize=64)
def _parse_block(path: Path, _mtime: int) -> BlockDef:
    source = _display(path)
    text = path.read_text(encoding="utf-8")
    m = _HEADER_RE.match(text)
    if not m:
        raise ImageError(f"{source}:1: a block template starts with a `{{#--- ... ---#}}` header "
                         "declaring its options", "copy the header of Dockerfile.templates/sshd.j2")
    body = m.group(1)
    end_line = text[:m.end()].count("\n") + 1
    try:
        head = yaml.safe_load(body) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark else 1
        raise ImageError(f"{source}:{line}: the header is not valid YAML: "
                         f"{getattr(exc, 'problem', exc)}", "fix the header") from None
    lines = {k: v + 1 for k, v in _line_map(body).items()}  # body starts on file line 2
    unknown = set(head) - {"doc", "options", "aliases"}
    if unknown:
        k = sorted(unknown)[0]
        raise ImageError(f"{source}:{lines.get((k,), 1)}: header key '{k}' is not known",
                         _suggest(k, ["doc", "options", "aliases"]))
    options: dict[str, Option] = {}
    for oname, decl in (head.get("options") or {}).items():
        line = lines.get(("options", oname), 1)
        if oname in _RESERVED or not re.match(r"^[a-z_][a-z0-9_]*$", str(oname)):
            raise ImageError(f"{source}:{line}: option name '{oname}' is reserved or not an "
                             "identifier", f"reserved: {', '.join(sorted(_RESERVED))}")
        if not isinstance(decl, dict):
            decl = {"default": decl}
        bad = set(decl) - {"default", "type", "choices", "required", "doc"}
        if bad:
            k = sorted(bad)[0]
            raise ImageError(f"{source}:{line}: option '{oname}': unknown declaration key '{k}'",
                             _suggest(k, ["default", "type", "choices", "required", "doc"]))
        default = decl.get("default")
        otype = decl.get("type")
        if otype is None:
            otype = next((n for n, t in (("bool", bool), ("int", int), ("str", str),
                                         ("list", list), ("dict", dict))
                          if isinstance(default, t)), None)
            if otype is None:
                raise ImageError(f"{source}:{line}: option '{oname}' needs a `type` "
                                 "(its default does not say)", "type: str|int|bool|list|dict|any")
        if otype not in (*_TYPES, "any"):
            raise ImageError(f"{source}:{line}: option '{oname}': unknown type '{otype}'",
                             _suggest(otype, [*_TYPES, "any"]))
        options[oname] = Option(name=oname, default=default, type=otype,
                                choices=decl.get("choices"), required=bool(decl.get("required")),
                                doc=str(decl.get("doc", "")), line=line)
    aliases = {str(k): str(v) for k, v in (head.get("aliases") or {}).items()}
    for alias, target in aliases.items():
        if target not in options:
            raise ImageError(f"{source}:{lines.get(('aliases', alias), 1)}: alias '{alias}' "
                             f"points at undeclared option '{target}'", "declare it in options")
    return BlockDef(name=path.stem, path=path, doc=str(head.get("doc", "")).strip(),
                    options=options, aliases=aliases, header_lines=(1, end_line))


def _check_blocks(spec: ImageSpec) -> None:
    """Every block names a known template; ids are unique; flagcx (the volatile source) is last."""
    known = block_names()
    seen: dict[str, int] = {}
    for i, b in enumerate(spec.blocks):
        if b.use not in known:
            raise ImageError(f"{spec.where('blocks', i, 'use')}: blocks[{i}].use: no block "
                             f"'{b.use}' in Dockerfile.templates/", _suggest(b.use, known))
        if not _NAME_RE.match(b.key):
            raise ImageError(f"{spec.where('blocks', i, 'id')}: blocks[{i}].id: '{b.key}' is not "
                             "a valid id", "lower-case letters, digits, '.', '_' and '-'")
        if b.key in seen or b.key == "base":
            raise ImageError(f"{spec.where('blocks', i)}: blocks[{i}]: a second block with id "
                             f"'{b.key}'", "give one of them an `id:` of its own")
        seen[b.key] = i
    for i, b in enumerate(spec.blocks[:-1]):
        if b.use == "flagcx":
            raise ImageError(f"{spec.where('blocks', i, 'use')}: blocks[{i}]: flagcx must be the "
                             "last block", "move it last: its ref changes often and every layer "
                             "after it would rebuild too")


# ---------------------------------------------------------------------------------------------
# plan: resolved base, blocks and options (spec + overrides)

@dataclass
class PlannedBlock:
    index: int
    use: str
    id: str
    definition: BlockDef
    options: dict[str, Any]


@dataclass
class ContextItem:
    """A file tree that goes into the build context under `dest` (relative)."""
    block: str
    dest: str
    kind: str  # "tree" (copy a directory) | "git" (export a git ref)
    src: Path
    ref: str = ""
    submodules: bool = False


@dataclass
class Plan:
    spec: ImageSpec
    base: BaseSpec
    blocks: list[PlannedBlock]
    context: list[ContextItem] = field(default_factory=list)
    dockerfile: str = ""

    @property
    def base_ref(self) -> str:
        return self.base.ref


def _parse_cli_value(opt: Option | None, value: Any) -> Any:
    """`--set k=v` gives strings: read them as YAML unless the option is a string."""
    if not isinstance(value, str) or (opt is not None and opt.type == "str"):
        return value
    try:
        return yaml.safe_load(value) if value.strip() else value
    except yaml.YAMLError:
        return value


def override_keys(spec: ImageSpec) -> list[str]:
    """The image arguments a profile (`image_args`) or `--set` may give, dotted."""
    keys = ["base.image", "base.pkg"]
    for b in spec.blocks:
        keys += [f"{b.key}.{o}" for o in block_def(b.use).options]
    return keys


def _split_override(spec: ImageSpec, key: str) -> tuple[str, str]:
    targets = ["base"] + [b.key for b in spec.blocks]
    if "." in key:
        target, _, opt = key.partition(".")
        if target in targets:
            return target, opt
    else:  # flagcx_ref, base_image: <target>_<option>
        for target in sorted(targets, key=len, reverse=True):
            if key.startswith(target + "_") and len(key) > len(target) + 1:
                return target, key[len(target) + 1:]
    raise ImageError(f"image {spec.name}: unknown image argument '{key}'",
                     _suggest(key, override_keys(spec)))


def plan(spec: ImageSpec | str, overrides: dict | None = None) -> Plan:
    spec = load_image(spec)
    base = spec.base.model_copy(deep=True)
    per_block: dict[str, dict[str, Any]] = {b.key: {} for b in spec.blocks}
    for key, value in (overrides or {}).items():
        target, opt = _split_override(spec, str(key))
        if target == "base":
            if opt == "image":
                if not isinstance(value, str) or not value:
                    raise ImageError(f"image {spec.name}: base.image: expects an image reference, "
                                     f"got {value!r}", "e.g. base_image=ubuntu:22.04")
                base = BaseSpec(image=value, pkg=base.pkg)
            elif opt == "pkg":
                if value not in ("apt", "dnf", "yum"):
                    raise ImageError(f"image {spec.name}: base.pkg: must be apt, dnf or yum; "
                                     f"got {value!r}", "the base's package manager")
                base = base.model_copy(update={"pkg": value})
            else:
                raise ImageError(f"image {spec.name}: unknown image argument '{key}'",
                                 _suggest(f"base.{opt}", ["base.image", "base.pkg"]))
        else:
            per_block[target][opt] = value

    blocks = []
    for i, b in enumerate(spec.blocks):
        d = block_def(b.use)
        opts: dict[str, Any] = {}
        given = [(k, v, ("blocks", i, k), False) for k, v in b.options.items()]
        given += [(k, v, None, True) for k, v in per_block[b.key].items()]
        for name, value, loc, from_override in given:
            real = d.aliases.get(name, name)
            where = (f"{spec.where(*loc)}: blocks[{i}].{name}" if loc else
                     f"image {spec.name}: image argument {b.key}.{name}")
            opt = d.options.get(real)
            if opt is None:
                raise ImageError(f"{where}: block '{b.use}' has no option '{name}' (its options "
                                 f"are declared at {d.where()})",
                                 _suggest(name, list(d.options) + list(d.aliases)))
            if from_override:
                value = _parse_cli_value(opt, value)
            try:
                opts[real] = opt.check(value)
            except ValueError as exc:
                raise ImageError(f"{where}: {exc} (option declared at {d.where(real)})",
                                 opt.doc or f"see {d.source}") from None
        for name, opt in d.options.items():
            if name not in opts:
                if opt.required:
                    raise ImageError(f"{spec.where('blocks', i)}: blocks[{i}] ({b.use}): "
                                     f"option '{name}' is required (declared at "
                                     f"{d.where(name)})", opt.doc or f"see {d.source}")
                opts[name] = opt.default
        blocks.append(PlannedBlock(index=i, use=b.use, id=b.key, definition=d, options=opts))

    p = Plan(spec=spec, base=base, blocks=blocks)
    p.context = _context_items(p)
    p.dockerfile = _render_plan(p)
    return p


def _context_items(p: Plan) -> list[ContextItem]:
    """Files a block copies from the build host (they go into the build context and the hash)."""
    items = []
    for b in p.blocks:
        o = b.options
        where = f"{p.spec.where('blocks', b.index)}: blocks[{b.index}] ({b.use})"
        if b.use == "flagcx" and o.get("source") == "local" and o.get("path"):
            src = Path(os.path.expanduser(o["path"]))
            if not src.is_dir():
                raise ImageError(f"{where}: path {src} is not a directory on this host",
                                 "point flagcx.path at a FlagCX checkout")
            is_git = (src / ".git").exists()
            if o.get("ref") and not is_git:
                raise ImageError(f"{where}: ref '{o['ref']}' given but {src} is not a git "
                                 "checkout", "leave ref empty to copy the directory as it is")
            items.append(ContextItem(block=b.id, dest=b.id, kind="git" if is_git and o.get("ref")
                                     else "tree", src=src, ref=o.get("ref") or "",
                                     submodules=bool(o.get("submodules"))))
        elif b.use == "nccl" and o.get("source") == "host" and o.get("path"):
            src = Path(os.path.expanduser(o["path"]))
            if not (src / "include").is_dir() or not (src / "lib").is_dir():
                raise ImageError(f"{where}: path {src} has no include/ and lib/",
                                 "point nccl.path at an NCCL build (…/nccl/build)")
            items.append(ContextItem(block=b.id, dest=b.id, kind="tree", src=src))
    return items


# ---------------------------------------------------------------------------------------------
# rendering

class _TemplateFail(Exception):
    """Raised by `fail(msg)` in a template; turned into ImageError with the template's line."""


def _fail(msg: str):
    raise _TemplateFail(str(msg))


def _jinja_env():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in template_dirs() if d.is_dir()]),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False)
    env.globals["fail"] = _fail
    env.filters["env_value"] = _env_value
    return env


def _env_value(value: Any) -> str:
    """A value for `ENV KEY=value`: bare when safe, else double-quoted with escapes."""
    text = str(value)
    if text and re.fullmatch(r"[A-Za-z0-9_./:,+@%=${}-]+", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'



def _template_error(exc: BaseException, plan_: Plan, block: PlannedBlock | None) -> ImageError:
    import jinja2

    where = None
    if isinstance(exc, jinja2.TemplateSyntaxError) and exc.filename:
        where = f"{_display(Path(exc.filename))}:{exc.lineno}"
    else:
        for fs in reversed(traceback.extract_tb(exc.__traceback__)):
            if fs.filename.endswith(".j2"):
                where = f"{_display(Path(fs.filename))}:{fs.lineno}"
                break
    if where is None:
        where = block.definition.source if block else TOP_TEMPLATE
    inblock = (f" (rendering blocks[{block.index}] '{block.id}' of {plan_.spec.source})"
               if block else f" (rendering {plan_.spec.source})")
    if isinstance(exc, jinja2.UndefinedError):
        names = sorted(block.options) if block else []
        return ImageError(f"{where}: undefined variable: {exc.message}{inblock}",
                          "a block template may use its declared options" +
                          (f" ({', '.join(names)})" if names else "") +
                          " and pkg, image, base_ref, ctx, block_id; declare new options in its "
                          "header")
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return ImageError(f"{where}: template syntax error: {exc.message}{inblock}",
                          "fix the template there")
    if isinstance(exc, _TemplateFail):
        return ImageError(f"{where}: {exc}{inblock}", "fix the block's options in "
                          f"{plan_.spec.where('blocks', block.index) if block else 'the spec'}")
    return ImageError(f"{where}: {type(exc).__name__}: {exc}{inblock}", "fix the template there")


def _render_plan(p: Plan) -> str:
    import jinja2

    env = _jinja_env()
    common = {"pkg": p.base.pkg, "image": p.spec.name, "base_ref": p.base_ref}
    rendered = []
    for b in p.blocks:
        try:
            tmpl = env.get_template(f"{b.use}.j2")
            text = tmpl.render(**common, ctx=b.id, block_id=b.id, **b.options)
        except (jinja2.TemplateError, _TemplateFail, TypeError, AttributeError, KeyError,
                ValueError) as exc:
            raise _template_error(exc, p, b) from None
        rendered.append({"id": b.id, "use": b.use, "template": _display(b.definition.path),
                         "text": text.strip("\n")})
    try:
        top = env.get_template(TOP_TEMPLATE)
        out = top.render(name=p.spec.name, description=" ".join(p.spec.description.split()),
                         spec_file=p.spec.source, base_ref=p.base_ref, pkg=p.base.pkg,
                         env=p.spec.env, workdir=p.spec.workdir, blocks=rendered)
    except (jinja2.TemplateError, _TemplateFail, TypeError, AttributeError, KeyError,
            ValueError) as exc:
        raise _template_error(exc, p, None) from None
    # one blank line at most between instructions, exactly one newline at the end
    out = re.sub(r"\n{3,}", "\n\n", out).strip("\n") + "\n"
    return out


def render(spec: ImageSpec | str, overrides: dict | None = None) -> str:
    """The Dockerfile text of an image (with profile `image_args` / `--set` overrides)."""
    return plan(spec, overrides).dockerfile


# ---------------------------------------------------------------------------------------------
# build context and hash

def _git(args: list[str], cwd: Path) -> bytes:
    try:
        r = subprocess.run(["git", *args], cwd=str(cwd), capture_output=True, check=False)
    except FileNotFoundError:
        raise ImageError("git is not installed on this host", "install git, or use a plain "
                         "directory (ref empty)") from None
    if r.returncode != 0:
        raise ImageError(f"git {' '.join(args)} in {cwd} failed: "
                         f"{r.stderr.decode(errors='replace').strip().splitlines()[-1:] or ['?']}",
                         "check the checkout and the ref")
    return r.stdout


def _extract(data: bytes, dest: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        try:
            tar.extractall(dest, filter="tar")
        except TypeError:  # Python without extraction filters
            tar.extractall(dest)


def _export_git(repo: Path, ref: str, dest: Path, submodules: bool, label: str) -> str:
    """`git archive` the commit `ref` of `repo` (and, recursively, its submodules from their
    checkouts inside `repo`) into `dest`: offline, deterministic, without .git."""
    sha = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], repo).decode().strip()
    dest.mkdir(parents=True, exist_ok=True)
    _extract(_git(["archive", "--format=tar", sha], repo), dest)
    if submodules:
        for line in _git(["ls-tree", "-r", sha], repo).decode().splitlines():
            meta, _, subpath = line.partition("\t")
            mode, kind, subsha = meta.split()
            if kind != "commit":
                continue
            sub = repo / subpath
            ok = (sub / ".git").exists() and subprocess.run(
                ["git", "cat-file", "-e", f"{subsha}^{{commit}}"], cwd=str(sub),
                capture_output=True).returncode == 0
            if not ok:
                raise ImageError(f"{label}: submodule {subpath} at {subsha[:12]} is not checked "
                                 f"out in {repo}", "run `git submodule update --init "
                                 "--recursive` there (offline builds take submodules from the "
                                 "checkout), or set submodules: false")
            _export_git(sub, subsha, dest / subpath, True, label)
    return sha


def _copy_tree(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", "__pycache__"), dirs_exist_ok=True)


def materialize(p: Plan, ctx: Path) -> None:
    """Write the build context: Dockerfile plus each block's copied files."""
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text(p.dockerfile, encoding="utf-8")
    for item in p.context:
        dest = ctx / item.dest
        label = f"{p.spec.source}: block {item.block}"
        if item.kind == "git":
            sha = _export_git(item.src, item.ref, dest, item.submodules, label)
            (dest / ".containerctl-source").write_text(f"{item.src} {item.ref} {sha}\n")
        else:
            _copy_tree(item.src, dest)


def _digest_dir(ctx: Path, base_id: str) -> str:
    h = hashlib.sha256()
    h.update(f"base\0{base_id}\0".encode())
    for root, dirs, files in os.walk(ctx):
        dirs.sort()
        for name in sorted(files + [d for d in dirs if (Path(root) / d).is_symlink()]):
            f = Path(root) / name
            rel = f.relative_to(ctx).as_posix()
            st = f.lstat()
            if stat.S_ISLNK(st.st_mode):
                h.update(f"link\0{rel}\0{os.readlink(f)}\0".encode())
            else:
                h.update(f"file\0{rel}\0{stat.S_IMODE(st.st_mode) & 0o111:o}\0{st.st_size}\0"
                         .encode())
                with open(f, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# offline bases

@contextlib.contextmanager
def _lock(name: str) -> Iterator[None]:
    """A host-wide lock (one build of an image or base at a time, across processes)."""
    d = Path(tempfile.gettempdir()) / f"containerctl-locks-{os.getuid()}"
    d.mkdir(parents=True, exist_ok=True)
    with open(d / (re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def bootstrap_key(b: Bootstrap) -> str:
    blob = json.dumps([BOOTSTRAP_RECIPE, b.model_dump()], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# Like Debian's official images: dpkg skips fsync (a container layer is written once)
_CONTAINER_DPKG = ["force-unsafe-io"]
_SLIM_DPKG = ["path-exclude=/usr/share/man/*", "path-exclude=/usr/share/doc/*",
              "path-include=/usr/share/doc/*/copyright", "path-exclude=/usr/share/info/*",
              "path-exclude=/usr/share/locale/*", "path-include=/usr/share/locale/locale.alias"]


def _stream(cmd: list[str], say: OnLine, prefix: str) -> tuple[int, list[str]]:
    tail: list[str] = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-20:]
        say(f"{prefix}{line}")
    return proc.wait(), tail


def _remove_rootfs(root: Path) -> None:
    """Delete a debootstrap tree, unless something is still mounted inside it (rmtree would
    descend into a bind-mounted /dev or /sys)."""
    prefix = str(root.resolve()) + "/"
    with open("/proc/mounts", encoding="utf-8") as fh:
        busy = [ln.split()[1] for ln in fh if ln.split()[1].startswith(prefix)]
    if busy:
        raise ImageError(f"{busy[0]} is still mounted inside the bootstrap tree {root}",
                         f"umount it (and {len(busy) - 1} more), then delete {root}")
    shutil.rmtree(root, ignore_errors=True)


def _bootstrap_tarball(b: Bootstrap, out: Path, say: OnLine) -> None:
    tool = b.tool if shutil.which(b.tool) else next(
        (t for t in ("mmdebstrap", "debootstrap") if shutil.which(t)), None)
    if tool is None:
        raise ImageError("cannot bootstrap a base: neither mmdebstrap nor debootstrap is installed",
                         "apt-get install mmdebstrap (or debootstrap), or load a base image and "
                         "name it in base.image")
    out.parent.mkdir(parents=True, exist_ok=True)
    # mmdebstrap picks its output format from the file name: keep ".tar" last, and say it too
    partial = out.with_name(f".{out.stem}.{os.getpid()}.partial.tar")
    started = time.monotonic()
    if tool == "mmdebstrap":
        cmd = ["mmdebstrap", "--format=tar", f"--variant={b.variant}",
               f"--components={','.join(b.components)}",
               '--aptopt=Acquire::Languages "none"']
        if b.include:
            cmd.append(f"--include={','.join(b.include)}")
        if b.architecture:
            cmd.append(f"--architectures={b.architecture}")
        cmd += [f"--dpkgopt={o}" for o in _CONTAINER_DPKG + (_SLIM_DPKG if b.slim else [])]
        cmd += [b.suite, str(partial), b.mirror]
        say(f"[bootstrap] {' '.join(cmd)}")
        rc, tail = _stream(cmd, say, "[mmdebstrap] ")
    else:
        if os.geteuid() != 0:
            raise ImageError("debootstrap needs root", "run as root, or install mmdebstrap "
                             "(it works unprivileged)")
        root = Path(tempfile.mkdtemp(prefix="containerctl-rootfs-", dir=out.parent))
        try:
            cmd = ["debootstrap", f"--variant={b.variant}",
                   f"--components={','.join(b.components)}"]
            if b.include:
                cmd.append(f"--include={','.join(b.include)}")
            if b.architecture:
                cmd.append(f"--arch={b.architecture}")
            cmd += [b.suite, str(root), b.mirror]
            say(f"[bootstrap] {' '.join(cmd)}")
            rc, tail = _stream(cmd, say, "[debootstrap] ")
            if rc == 0:
                subprocess.run(["chroot", str(root), "apt-get", "clean"], check=False,
                               capture_output=True)
                cfg = root / "etc/dpkg/dpkg.cfg.d/containerctl"
                cfg.write_text("".join(o + "\n" for o in
                                       _CONTAINER_DPKG + (_SLIM_DPKG if b.slim else [])))
                for d in ("var/lib/apt/lists",):
                    shutil.rmtree(root / d, ignore_errors=True)
                    (root / d).mkdir(parents=True, exist_ok=True)
                rc, tail = _stream(["tar", "-C", str(root), "--numeric-owner", "-cf",
                                    str(partial), "."], say, "[tar] ")
        finally:
            _remove_rootfs(root)
    if rc != 0 or not partial.is_file():
        if partial.is_file():
            partial.unlink()
        last = next((t for t in reversed(tail) if t.strip()), "no output")
        raise ImageError(f"{tool} {b.suite} failed (exit {rc}): {last}",
                         f"check that {b.mirror} is reachable from this host (or set "
                         "base.bootstrap.mirror to a local mirror)")
    os.replace(partial, out)
    say(f"[bootstrap] {out.name}: {out.stat().st_size / 2**20:.0f} MiB in "
        f"{time.monotonic() - started:.0f}s")


def ensure_base(engine, base: BaseSpec, on_line: OnLine | None = None) -> str | None:
    """The base's image id. A bootstrapped base is made and imported when its tag is missing
    (or was made from another recipe); an image reference is only looked up (None if absent:
    the build's FROM pulls it)."""
    say = on_line or (lambda _line: None)
    if base.bootstrap is None:
        return engine.image_id(base.ref)
    key = bootstrap_key(base.bootstrap)
    tag = base.ref
    with _lock(f"base-{tag}"):
        iid = engine.image_id(tag)
        if iid:
            labels = (engine.image_inspect(tag).get("Config") or {}).get("Labels") or {}
            have = labels.get(BASE_LABEL)
            if have is None or have == key:
                return iid
            say(f"[bootstrap] {tag} was made from another recipe ({have}); making {key}")
        cache = paths.home() / "cache" / "base"
        tarball = cache / f"{re.sub(r'[^A-Za-z0-9._-]', '_', tag)}-{key}.tar"
        if tarball.is_file():
            say(f"[bootstrap] using cached {tarball}")
        else:
            _bootstrap_tarball(base.bootstrap, tarball, say)
        say(f"[bootstrap] importing {tarball.name} as {tag}")
        changes = [f"LABEL {BASE_LABEL}={key}",
                   "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                   "ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]']
        return engine.import_image(tarball, tag, changes=changes)


# ---------------------------------------------------------------------------------------------
# tags and builds

def _say_clean(say: OnLine, line: str) -> None:
    line = _ANSI_RE.sub("", line).rstrip()
    if line.strip():
        say(line)


def _tag_for(name: str, digest: str) -> str:
    return f"{REPO_PREFIX}{name}:{digest[:12]}"


def _digest(p: Plan, base_id: str) -> str:
    with tempfile.TemporaryDirectory(prefix="containerctl-ctx-") as tmp:
        materialize(p, Path(tmp))
        return _digest_dir(Path(tmp), base_id)


def image_tag(spec: ImageSpec | str, overrides: dict | None, engine) -> str:
    """The tag this image has (or will have) on `engine`: containerctl/<name>:<hash12>.
    The base must be present (its id is part of the hash); ensure_image makes it."""
    p = plan(spec, overrides)
    base_id = engine.image_id(p.base_ref) if engine is not None else None
    if not base_id:
        raise ImageError(f"image {p.spec.name}: base {p.base_ref} is not on this engine yet, so "
                         "the image's tag is not known", f"`containerctl image build "
                         f"{p.spec.name}` makes the base and the image")
    return _tag_for(p.spec.name, _digest(p, base_id))


def current_tag(spec: ImageSpec | str, overrides: dict | None, engine) -> str | None:
    """image_tag, or None when the base is not there yet."""
    try:
        return image_tag(spec, overrides, engine)
    except ImageError:
        return None


def ensure_image(engine, name: ImageSpec | str, overrides: dict | None = None,
                 nocache: bool = False, on_line: OnLine | None = None,
                 force: bool = False) -> str:
    """Make sure the image exists and return its tag. Cache hit (the tag exists): no build at
    all. Otherwise bootstrap/import the base if needed and build, streaming progress lines to
    `on_line`. `force` rebuilds (Docker's layer cache still applies); `nocache` also bypasses it."""
    say = on_line or (lambda _line: None)
    p = plan(name, overrides)
    spec = p.spec
    with _lock(f"image-{spec.name}"):
        base_id = ensure_base(engine, p.base, say)
        with tempfile.TemporaryDirectory(prefix="containerctl-build-") as tmp:
            ctx = Path(tmp)
            materialize(p, ctx)
            digest = _digest_dir(ctx, base_id or f"ref:{p.base_ref}")
            tag = _tag_for(spec.name, digest)
            if base_id and not (force or nocache) and engine.image_exists(tag):
                say(f"image {tag} is up to date")
                return tag
            say(f"building {tag} from {spec.source} on {p.base_ref}")
            started = time.monotonic()
            try:
                iid = engine.build_image(ctx, tag,
                                         labels={IMAGE_LABEL: spec.name, HASH_LABEL: digest},
                                         nocache=nocache,
                                         on_line=lambda line: _say_clean(say, line))
            except ImageError as exc:
                if base_id or engine.image_id(p.base_ref):
                    raise
                raise ImageError(f"image {spec.name}: base {p.base_ref} is not on this host and "
                                 f"the build could not pull it ({exc.message})",
                                 f"`docker load` {p.base_ref} here (docker save it where a "
                                 "registry is reachable), or pass base_image=<a local image>")\
                    from None
        if not base_id:  # the build pulled the base: name the image by the base it got
            base_id = engine.image_id(p.base_ref)
            if base_id:
                final = _tag_for(spec.name, _digest(p, base_id))
                if final != tag:
                    repo, _, t = final.rpartition(":")
                    engine.tag(iid or tag, repo, t)
                    engine.remove_image(tag)
                    tag = final
        say(f"built {tag} in {time.monotonic() - started:.0f}s")
        return tag


def built_tags(engine, name: str) -> list[str]:
    """Tags of this image's builds present on the engine (any hash)."""
    out = []
    for img in engine.images(label=f"{IMAGE_LABEL}={name}"):
        out += [t for t in (img.get("RepoTags") or []) if t.startswith(f"{REPO_PREFIX}{name}:")]
    return sorted(out)
