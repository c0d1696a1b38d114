"""Stage definitions: built-in defs/*.yaml plus ./stages/*.yaml and ~/.config/containerctl/stages
(a new stage is a new YAML file, not a new command). Rendering uses Jinja2 with StrictUndefined;
errors name the file and line."""
from __future__ import annotations

import difflib
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


class Opts(dict):
    """A dict whose missing keys read as None in templates (optional stage options)."""

    def __getattr__(self, key: str) -> Any:
        try:
            v = self[key]
        except KeyError:
            return None
        return Opts(v) if isinstance(v, dict) else v


def _env(search: list[Path]):
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(p) for p in search]),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["shq"] = lambda v: shlex.quote(str(v))
    return env


SHELL_NAME = __import__("re").compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # an exportable variable name
VALUES_END = "# end of values"
_USED = __import__("re").compile(r"\b(CCTL_[A-Z0-9_]+)\b")


def env_prologue(values: dict[str, str]) -> str:
    """`export NAME='value'` lines: the ONE place where a value meets bash text, quoted by
    shlex.quote (values may hold spaces, quotes, `$`, backticks or newlines; all arrive intact)."""
    lines = ["# values for this stage (containerctl quotes every one; scripts read \"$NAME\")"]
    for k, v in values.items():
        if not SHELL_NAME.match(k):
            raise UsageError(f"environment variable name {k!r} is not a shell identifier",
                             "use letters, digits and _ only")
        v = "" if v is None else str(v)
        if "\0" in v:
            raise UsageError(f"the value of {k} contains a NUL byte", "remove it")
        lines.append(f"export {k}={shlex.quote(v)}")
    lines.append(VALUES_END)
    return "\n".join(lines) + "\n"


def render(sd: StageDef, ctx: dict) -> str:
    """The stage's bash script: the quoted value prologue, then the template. Templates branch on
    structure (platform, layout) but never interpolate a user value: those are in the prologue."""
    if "{" not in sd.script and "\r" not in sd.script:
        # no Jinja2 syntax at all (every tag starts with `{`; Jinja would only turn \r\n into
        # \n): the template renders to itself, without importing Jinja2
        return _with_values(sd.script, ctx)
    import jinja2
    env = _env([Path(sd.file).parent if sd.file else DEFS_DIR, DEFS_DIR])
    try:
        body = env.from_string(sd.script).render(**ctx)
        return _with_values(body, ctx)
    except jinja2.TemplateError as exc:
        line = getattr(exc, "lineno", None)
        raise ProfileError(f"{sd.file}: stage {sd.name} script"
                           f"{' line ' + str(line) if line else ''}: {exc}",
                           "fix the template or give the missing profile value") from None


def _with_values(body: str, ctx: dict) -> str:
    """The rendered body with the value prologue after its #! line (if any)."""
    # only the CCTL_* values this script reads (so a perf option does not change the
    # build's inputs); the profile's own variables are the stage's environment: all of them
    used = set(_USED.findall(body)) | set(ctx.get("env_keep") or ())
    values = {k: v for k, v in (ctx.get("env") or {}).items()
              if not k.startswith("CCTL_") or k in used}
    if body.startswith("#!"):
        first, _, rest = body.partition("\n")
        return first + "\n" + env_prologue(values) + rest
    return env_prologue(values) + body


def applies(sd: StageDef, ctx: dict) -> bool:
    if not sd.applies:
        return True
    import jinja2
    env = _env([DEFS_DIR])
    env.undefined = jinja2.ChainableUndefined
    try:
        return bool(env.compile_expression(sd.applies)(**ctx))
    except jinja2.TemplateError as exc:
        raise ProfileError(f"{sd.file}: `applies` expression: {exc}", "fix the stage file") from None
