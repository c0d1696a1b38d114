"""Where image specs and block templates are, and where in a file a key is: the directories
(the user's config dir first, then the built-ins), the names errors show (`images/x.yaml` for a
built-in), YAML key paths → line numbers, and "did you mean" suggestions."""
from __future__ import annotations

import difflib
from pathlib import Path

import yaml

from .. import paths


# ---------------------------------------------------------------------------------------------
# where things are

def image_dirs() -> list[Path]:
    """Image specs: the user's (config dir) first, then the built-ins."""
    return [paths.config_dir() / "images", paths.data_dir("images")]


def template_dirs() -> list[Path]:
    """Block templates: the user's first (a site can add or replace blocks), then the built-ins."""
    return [paths.config_dir() / "Dockerfile.templates", paths.data_dir("Dockerfile.templates")]


def display_name(path: Path) -> str:
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

def line_map(text: str) -> dict[tuple, int]:
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


def line_of(lines: dict[tuple, int], loc: tuple) -> int | None:
    loc = tuple(loc)
    while loc and loc not in lines:
        loc = loc[:-1]
    return lines.get(loc)


def dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def suggest(word: str, choices) -> str:
    choices = sorted({str(c) for c in choices})
    near = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.5)
    if near:
        return f"did you mean '{near[0]}'? (valid: {', '.join(choices)})"
    return f"valid: {', '.join(choices)}" if choices else ""
