"""Stage variants (FlagCX's CI runs each test under several environments and options) and the
device count a run's `nranks: auto` comes from.

A variant is data in the profile (`stages.perf.variants` / `stages.unittest.variants`): an
environment, extra options, its own collectives or suites, and what the checkout must offer for
it to mean anything (`needs`). Before a variant runs it is probed against the checkout: `-R`
only where the perf binaries' getopt has it, `COMPILE_KERNEL` only where the Makefiles read it, a
perf binary only where its source exists. A variant the checkout cannot run is recorded as
skipped with the reason, never run with the option silently dropped. This module decides;
the Pipeline (stages/runner.py, Pipeline.run_variants) runs each variant as a stage of its own."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Union


if TYPE_CHECKING:
    from .interface import FlagCXInterface
    from .variant_model import Variant

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def __getattr__(name: str):
    """The pydantic models live in variant_model.py (imported by profiles/model.py): the runner's fast
    path (exec-stage without pydantic) imports this module, not them."""
    if name in ("Variant", "VariantNeeds"):
        from . import variant_model
        return getattr(variant_model, name)
    raise AttributeError(name)


def check_variant_names(names) -> None:
    for n in names:
        if not _NAME.match(n):
            raise ValueError(f"variant name {n!r}: lowercase letters, digits, '-' and '_'")


@dataclass
class Resolved:
    """A variant checked against one checkout and one device count."""
    name: str
    variant: Variant
    skip: Optional[str] = None                 # why it cannot run here (None: it runs)
    colls: list[str] = field(default_factory=list)
    nranks: int = 0
    notes: list[str] = field(default_factory=list)


def select(stage: str, table: dict[str, Variant], asked: list[str]) -> list[tuple[str, Variant]]:
    """The variants `--variant` names (`all`: every one, in the profile's order). An unknown
    name is a UsageError naming the ones there are."""
    from ..errors import UsageError
    if not asked:
        return []
    if not table:
        raise UsageError(f"--variant: the profile declares no variants for stage {stage}",
                         f"add stages.{stage}.variants to the profile, or drop --variant")
    out: list[tuple[str, Variant]] = []
    for a in asked:
        for n in (table if a == "all" else [a]):
            if n not in table:
                import difflib
                near = difflib.get_close_matches(n, list(table), n=1)
                raise UsageError(f"--variant {n}: stage {stage} has no such variant",
                                 (f"did you mean {near[0]}? " if near else "") +
                                 "variants: " + ", ".join(table) + ", or all")
            if all(n != x for x, _ in out):
                out.append((n, table[n]))
    return out


def resolve(stage: str, name: str, v: Variant, fxi: "FlagCXInterface | None",
            stage_colls: list[str], nranks: int) -> Resolved:
    """Can this variant run on this checkout with this many ranks? (what runs, or why not)."""
    r = Resolved(name, v, nranks=min(nranks, v.nranks) if v.nranks else nranks)
    if v.hosts and r.nranks < v.hosts:
        r.skip = (f"splits the ranks into {v.hosts} logical nodes (FLAGCX_HOSTID), this run has "
                  f"{r.nranks} rank{'s' if r.nranks != 1 else ''}")
        return r
    if r.nranks < v.needs.min_ranks:
        r.skip = (f"needs {v.needs.min_ranks} ranks, this run has {r.nranks} (one per device "
                  "seen)")
        return r
    if fxi is None:
        return r
    for letter in v.needs.options:
        ok = fxi.accepts(letter)
        if ok is False:
            r.skip = (f"this checkout's perf tests have no -{letter} (getopt "
                      f"\"{fxi.perf_getopt}\")")
            return r
        if ok is None:
            r.skip = f"this checkout's perf getopt string was not found: -{letter} unknown"
            return r
    if v.needs.make_var and v.needs.make_var not in (fxi.make_vars_read or []):
        r.skip = f"no Makefile of this checkout reads {v.needs.make_var}"
        return r
    if stage == "perf":
        want = list(v.colls or stage_colls)
        have = set(fxi.perf_colls or [])
        r.colls = [c for c in want if not have or c in have]
        gone = [c for c in want if have and c not in have]
        if gone:
            r.notes.append("not in this checkout: " + ", ".join(
                f"{fxi.perf_bin_prefix or ''}{c}" for c in gone))
        if not r.colls:
            r.skip = "none of its perf tests exist in this checkout (" + ", ".join(gone) + ")"
            return r
    if stage == "unittest":
        comps = v.components or []
        have = set(fxi.unittest_components or []) | set(fxi.unittest_components_optional or [])
        missing = [c for c in (v.needs.components or comps) if have and c not in have]
        if missing:
            r.skip = "this checkout has no unit-test suite " + ", ".join(missing)
            return r
    return r


# ---------------------------------------------------------------------------------------------
# devices

def _in_container(device: str) -> str:
    """The path a device has in the container: /dev/x, or the second part of SRC:DST[:rwm]."""
    parts = device.split(":")
    return parts[1] if len(parts) > 1 and parts[1].startswith("/") else parts[0]


def count_script(profile) -> str:
    """A bash snippet that prints `DEVICES <n> <how>` for what the container sees: the device
    nodes the profile passes (patterns with a number, e.g. /dev/nvidia[0-9]*), /dev/dri's render
    nodes, or the vendor tool's list; `DEVICES - none` when nothing says."""
    pats = [_in_container(d) for d in profile.container.devices]
    numbered = [p for p in pats if re.search(r"\[0-9\]|\d$", p)]
    lines = ["set +e"]
    if numbered:
        globs = " ".join(numbered)
        lines.append(f"n=0; for f in {globs}; do [ -e \"$f\" ] && [[ \"${{f##*/}}\" =~ [0-9]$ ]] "
                     "&& n=$((n+1)); done")
        lines.append(f"[ $n -gt 0 ] && {{ echo \"DEVICES $n device nodes {globs}\"; exit 0; }}")
    if "/dev/dri" in pats:
        lines.append("n=$(ls /dev/dri/renderD* 2>/dev/null | wc -l); [ $n -gt 0 ] && "
                     "{ echo \"DEVICES $n render nodes /dev/dri/renderD*\"; exit 0; }")
    tool = profile.vendor_tool
    if tool == "nvidia-smi":
        lines.append("n=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU '); [ \"$n\" -gt 0 ] 2>/dev/null "
                     "&& { echo \"DEVICES $n nvidia-smi -L\"; exit 0; }")
    lines.append("echo 'DEVICES - none'")
    return "\n".join(lines)


def parse_count(out: str) -> tuple[Optional[int], str]:
    m = re.search(r"^DEVICES (\d+|-) (.*)$", out, re.M)
    if not m or m.group(1) == "-":
        return None, "no device nodes or vendor tool counted"
    return int(m.group(1)), m.group(2).strip()


def device_plan(profile, count: Optional[int], how: str,
                option_nranks: Union[int, str, None] = None) -> dict:
    """nranks and visible devices for this run: `auto` from the count; an explicit value larger
    than the devices present is refused (UsageError naming both numbers and the fix)."""
    from ..errors import UsageError
    fx = profile.flagcx
    want = option_nranks if option_nranks not in (None, "") else fx.nranks
    plan = {"devices": count, "counted_by": how, "nranks_setting": str(want)}
    if want == "auto":
        if count is None:
            raise UsageError(f"flagcx.nranks is auto, but the container shows no devices to count "
                             f"({how})", "set the rank count: --set flagcx.nranks=N")
        n = count
    else:
        n = int(want)
        if count is not None and n > count and profile.platform != "cpu":
            raise UsageError(f"flagcx.nranks is {n}, but the container sees {count} device"
                             f"{'s' if count != 1 else ''} ({how}): FlagCX would put several "
                             "ranks on one device",
                             f"--set flagcx.nranks={count}, or nranks: auto in the profile")
    plan["nranks"] = n
    vis = fx.visible_devices
    if vis == "auto":
        vis = ",".join(str(i) for i in range(n))
    elif vis and count is not None and profile.platform != "cpu":
        ids = [x for x in vis.split(",") if x.strip()]
        if len(ids) < n:
            raise UsageError(f"flagcx.visible_devices {vis!r} names {len(ids)} device(s) for "
                             f"{n} ranks", "visible_devices: auto (0..nranks-1), or name one "
                             "device per rank")
    plan["visible_devices"] = vis
    return plan


def count_devices(engine, container: str, profile, options: dict, status=None) -> Optional[dict]:
    """Count the devices the container sees (only where a number is needed: `auto`, or a GPU
    profile whose explicit nranks must not exceed them) and plan nranks; printed where the run
    starts (status) and recorded in run.json's `devices`."""
    fx = profile.flagcx
    pats = [_in_container(d) for d in profile.container.devices]
    numbered = any(re.search(r"\[0-9\]|\d$", p) for p in pats) or "/dev/dri" in pats
    auto = fx.nranks == "auto" or fx.visible_devices == "auto"
    if not auto and (profile.platform == "cpu" or not (numbered or profile.vendor_tool)):
        return None
    code, out = engine.exec_capture(container, ["bash", "-c", count_script(profile)])
    count, how = parse_count(out if code == 0 else "")
    plan = device_plan(profile, count, how, options.get("nranks"))
    if status is not None:
        status(f"devices: {count if count is not None else 'not counted'} ({how}); "
               f"nranks {plan['nranks']} (setting {plan['nranks_setting']})"
               + (f", {fx.visible_devices_env or 'visible devices'}={plan['visible_devices']}"
                  if plan.get("visible_devices") else ""))
    return plan


def variant_table(profile, stage: str) -> dict:
    """The variants the profile declares for a stage (perf, unittest; others have none)."""
    if stage == "perf":
        return dict(profile.stages.perf.variants)
    if stage == "unittest":
        return dict(profile.stages.unittest.variants)
    return {}


def check_asked(profile, stage_names: list[str], asked: list[str]) -> None:
    """--variant names a variant of at least one stage this run includes (refused before
    anything runs otherwise)."""
    from ..errors import UsageError
    if not asked:
        return
    tables = {s: variant_table(profile, s) for s in stage_names if variant_table(profile, s)}
    if not tables:
        raise UsageError("--variant: none of the stages of this run (" + ", ".join(stage_names)
                         + ") has variants in profile " + profile.name,
                         "variants are declared under stages.perf.variants and "
                         "stages.unittest.variants")
    for a in asked:
        if a != "all" and not any(a in t for t in tables.values()):
            import difflib
            every = sorted({n for t in tables.values() for n in t})
            near = difflib.get_close_matches(a, every, n=1)
            raise UsageError(f"--variant {a}: no stage of this run has such a variant",
                             (f"did you mean {near[0]}? " if near else "") +
                             "variants: " + ", ".join(every) + ", or all")
