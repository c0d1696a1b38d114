"""The stage catalog: which stages exist, in which order. Built-in definitions are the YAML files
in the folder defs/ (with common.sh, the shell they share), plus ./stages/*.yaml and
~/.config/containerctl/stages (a new stage is a new YAML file, not a new command); each is
validated by the model in stagedef.py, once, and remembered (containerctl.validated) while no
stage file changes. render.py turns a definition and a context into its bash script."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING

from .. import paths
from ..errors import ProfileError, UsageError

if TYPE_CHECKING:
    from .stagedef import StageDef

DEFS_DIR = Path(__file__).parent / "defs"
ASSETS_DIR = Path(__file__).parent / "assets"


def __getattr__(name: str):
    """`StageDef` (the pydantic model, stagedef.py) is imported on first use: pydantic is not
    needed when containerctl.validated remembers the validated stage files."""
    if name == "StageDef":
        from .stagedef import StageDef
        return StageDef
    raise AttributeError(name)


def _dirs() -> list[Path]:
    return [DEFS_DIR, paths.config_dir() / "stages", Path.cwd() / "stages"]


def load_defs() -> list[StageDef]:
    """Every stage definition, in order (read once per process and search path)."""
    key = tuple((str(d), d.is_dir() and tuple(sorted((f.name, f.stat().st_mtime_ns)
                                                     for f in d.glob("*.yaml"))))
                for d in _dirs())
    if key not in _CACHE:
        _CACHE.clear()
        # validated once and remembered while no stage file changes (read-only stand-ins)
        from ..validated import load_stage_defs
        _CACHE[key] = load_stage_defs(_dirs(), _load_defs)
    return list(_CACHE[key])


_CACHE: dict = {}


def _load_defs() -> list[StageDef]:
    import yaml
    from pydantic import ValidationError

    from .. import yamlio
    from .stagedef import StageDef
    by_name: dict[str, StageDef] = {}
    for i, d in enumerate(_dirs()):
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.yaml")):
            try:
                data = yamlio.safe_load(f.read_text()) or {}   # libyaml when present
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                raise ProfileError(f"{f}:{mark.line + 1 if mark else 1}: YAML syntax error",
                                   "fix the stage file") from None
            prefix = f.name.split("-", 1)[0]
            data.setdefault("order", int(prefix) if prefix.isdigit() else 1000 + i)
            try:
                sd = StageDef.model_validate(data)
            except ValidationError as exc:
                e = exc.errors()[0]
                raise ProfileError(f"{f}: `{'.'.join(map(str, e['loc']))}`: {e['msg']}",
                                   "see containerctl/stages/defs/*.yaml for the shape") from None
            sd.file = str(f)
            by_name[sd.name] = sd
    return sorted(by_name.values(), key=lambda s: (s.order, s.name))


def stage_names() -> list[str]:
    return [s.name for s in load_defs()]


def get_def(name: str) -> StageDef:
    defs = {s.name: s for s in load_defs()}
    if name not in defs:
        near = difflib.get_close_matches(name, list(defs), n=1)
        raise UsageError(f"unknown stage `{name}`",
                         f"did you mean `{near[0]}`?" if near else
                         "stages: " + ", ".join(defs))
    return defs[name]
