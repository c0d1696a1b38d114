"""The spec: images/<name>.yaml validated by pydantic (a base, ordered blocks, env, workdir). Every
error names the file, the line and the key, and suggests the nearest key; the blocks are checked
against the templates (known, unique ids, flagcx last)."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, field_validator, \
    model_validator

from .. import yamlio
from ..errors import ImageError
from .blocks import block_names
from .where import display_name, dotted, image_dirs, line_map, line_of, suggest

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


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
        return display_name(self._path) if self._path else f"<{self.name}>"

    def line(self, *loc) -> int | None:
        return line_of(self._lines, loc)

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
    line = line_of(lines, loc)
    where = f"{source}:{line}" if line else source
    kind = err["type"]
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    hint = "see the built-in images in images/ for the expected shape"
    if kind == "extra_forbidden":
        msg = f"unknown key '{loc[-1]}'"
        hint = suggest(loc[-1], _fields_at(loc[:-1])) or hint
    elif kind == "missing":
        msg = f"missing required key '{loc[-1]}'"
    elif kind == "literal_error":
        hint = msg
        msg = f"bad value {err.get('input')!r}"
    return ImageError(f"{where}: {dotted(loc)}: {msg}", hint)


def _load_spec_file(path: Path) -> ImageSpec:
    source = display_name(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ImageError(f"cannot read image spec {source}: {exc.strerror}",
                         "check the path") from None
    try:
        data = yamlio.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ImageError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}",
                         "fix the indentation or quoting there") from None
    if not isinstance(data, dict):
        raise ImageError(f"{source}: an image spec is a mapping (name, base, blocks)",
                         "see images/cpu-selftest.yaml")
    lines = line_map(text)
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
    if yamlio.names_a_file(text):
        if p.is_file():
            return _load_spec_file(p)
        raise ImageError(f"no image spec at {text}", "check the path, or give a name from "
                         "`containerctl image list`")
    f = yamlio.find_named(image_dirs(), text)
    if f:
        spec = _load_spec_file(f)
        if spec.name != text:
            raise ImageError(f"{spec.where('name')}: name: '{spec.name}' differs from the "
                             f"file name '{f.name}'", "make them equal")
        return spec
    known = sorted({f.stem for d in image_dirs() if d.is_dir() for f in d.glob("*.y*ml")})
    raise ImageError(f"unknown image '{text}'",
                     (suggest(text, known) or "no image specs found") +
                     "; `containerctl image list` shows them")


def _check_blocks(spec: ImageSpec) -> None:
    """Every block names a known template; ids are unique; flagcx (the volatile source) is last."""
    known = block_names()
    seen: dict[str, int] = {}
    for i, b in enumerate(spec.blocks):
        if b.use not in known:
            raise ImageError(f"{spec.where('blocks', i, 'use')}: blocks[{i}].use: no block "
                             f"'{b.use}' in Dockerfile.templates/", suggest(b.use, known))
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
