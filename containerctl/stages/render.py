"""A stage definition and a context (context.py) -> the stage's bash script: the quoted value
prologue (env_prologue: the ONE place where a user value meets bash text), then the template
rendered by Jinja2 with StrictUndefined (errors name the file and line); `applies` evaluates a
definition's condition over the same context. Jinja2 is imported only for a template that has
Jinja syntax."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ProfileError, UsageError
from .catalog import DEFS_DIR

if TYPE_CHECKING:
    from .stagedef import StageDef


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
