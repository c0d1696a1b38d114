"""Plan and render: a spec plus overrides (a profile's `image_args`, `--set`) resolve to a plan
(the base, each block with its checked options, the files copied from this host); the plan's
templates render to the Dockerfile text.

jinja2 is imported inside the functions that render, not at the top: `up` imports this package
to find and load specs whenever its image-tag cache answers, and never renders then (jinja2 is
about 40 ms of import on the 2-core CI host)."""
from __future__ import annotations

import os
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import yamlio
from ..errors import ImageError
from .blocks import TOP_TEMPLATE, BlockDef, Option, block_def
from .spec import BaseSpec, ImageSpec, load_image
from .where import display_name, suggest, template_dirs


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
        return yamlio.safe_load(value) if value.strip() else value
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
                     suggest(key, override_keys(spec)))


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
                                 suggest(f"base.{opt}", ["base.image", "base.pkg"]))
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
                                 suggest(name, list(d.options) + list(d.aliases)))
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
    import jinja2   # start-up: tens of ms, only when a Dockerfile is rendered

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
    import jinja2   # start-up: tens of ms, only when a Dockerfile is rendered

    where = None
    if isinstance(exc, jinja2.TemplateSyntaxError) and exc.filename:
        where = f"{display_name(Path(exc.filename))}:{exc.lineno}"
    else:
        for fs in reversed(traceback.extract_tb(exc.__traceback__)):
            if fs.filename.endswith(".j2"):
                where = f"{display_name(Path(fs.filename))}:{fs.lineno}"
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
    import jinja2   # start-up: tens of ms, only when a Dockerfile is rendered

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
        rendered.append({"id": b.id, "use": b.use, "template": display_name(b.definition.path),
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
