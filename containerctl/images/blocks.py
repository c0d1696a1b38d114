"""Blocks: each is one Jinja2 template (Dockerfile.templates/<block>.j2) whose `{#--- ... ---#}`
header declares its options (default, type, choices, required, doc) and aliases. A template is
parsed once per modification time."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .. import yamlio
from ..errors import ImageError
from .where import display_name, line_map, suggest, template_dirs

TOP_TEMPLATE = "image.Dockerfile.j2"
_HEADER_RE = re.compile(r"\A\{#---\n(.*?)\n---#\}", re.S)
_RESERVED = {"pkg", "image", "base_ref", "ctx", "block_id", "fail"}


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
        return display_name(self.path)

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
    source = display_name(path)
    text = path.read_text(encoding="utf-8")
    m = _HEADER_RE.match(text)
    if not m:
        raise ImageError(f"{source}:1: a block template starts with a `{{#--- ... ---#}}` header "
                         "declaring its options", "copy the header of Dockerfile.templates/sshd.j2")
    body = m.group(1)
    end_line = text[:m.end()].count("\n") + 1
    try:
        head = yamlio.safe_load(body) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark else 1
        raise ImageError(f"{source}:{line}: the header is not valid YAML: "
                         f"{getattr(exc, 'problem', exc)}", "fix the header") from None
    lines = {k: v + 1 for k, v in line_map(body).items()}  # body starts on file line 2
    unknown = set(head) - {"doc", "options", "aliases"}
    if unknown:
        k = sorted(unknown)[0]
        raise ImageError(f"{source}:{lines.get((k,), 1)}: header key '{k}' is not known",
                         suggest(k, ["doc", "options", "aliases"]))
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
                             suggest(k, ["default", "type", "choices", "required", "doc"]))
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
                             suggest(otype, [*_TYPES, "any"]))
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
