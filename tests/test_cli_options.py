"""One CLI definition: the typer commands that have a fast path (up, exec-stage, status) and the
fast parser (cli.fast.parse) both come from cli.options. Every option the real typer command
accepts, in every spelling, is parsed by the fast path to the same keyword arguments the typer
command hands its body — and an option that only one of them knows fails the comparison."""
from __future__ import annotations

import pytest
import typer
from typer.main import get_command

from containerctl.cli import app as cli_app
from containerctl.cli import fast
from containerctl.cli import lifecycle as cli_lifecycle
from containerctl.cli import stages as cli_stages
from containerctl.cli.options import COMMANDS, EXEC_STAGE, Opt, typer_command

BODIES = {"up": (cli_lifecycle, "up_cmd"), "exec-stage": (cli_stages, "exec_stage_cmd"),
          "status": (cli_stages, "status_cmd")}


def _samples(click_cmd, stage_arg: bool) -> list[list[str]]:
    """argv tails that use each of the command's options in each spelling, and all at once."""
    pos = ["perf"] if stage_arg else []
    out, together = [], list(pos)
    for p in click_cmd.params:
        if p.param_type_name != "option":
            continue
        if p.is_flag:
            for spelling in list(p.opts) + list(p.secondary_opts):
                out.append(pos + [spelling])
            together.append(p.opts[0])
            continue
        v = "7" if p.type_descriptor.annotation is int else "v1"
        for spelling in p.opts:
            out.append(pos + [spelling, v])
            if spelling.startswith("--"):
                out.append(pos + [f"{spelling}={v}"])
            if p.multiple:
                out.append(pos + [spelling, v, spelling, "v2"])
        together += [p.opts[0], v]
    return out + [pos, together]


def _differences(typer_app, name: str, recorder) -> list[str]:
    """Where the typer command and fast.parse disagree on `name`'s options."""
    click_cmd = get_command(typer_app).commands[name]
    bad = []
    for tail in _samples(click_cmd, name == "exec-stage"):
        argv = [name] + tail
        seen = recorder(typer_app, argv)
        parsed = fast.parse(argv)
        if parsed is None or parsed != (name, seen):
            bad.append(f"{argv}: typer {seen} fast {parsed}")
    return bad


@pytest.fixture
def record(monkeypatch):
    """Run argv through the real typer app; the bodies record the keyword arguments they get."""
    got: dict = {}

    def body(**kw):
        got.clear()
        got.update(kw)
        return 0

    for mod, attr in BODIES.values():
        monkeypatch.setattr(mod, attr, body)

    def run(typer_app, argv):
        got.clear()
        try:
            typer_app(args=argv, standalone_mode=False)
        except typer.Exit:
            pass
        return dict(got)
    return run


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_typer_option_means_the_same_on_the_fast_path(name, record):
    assert not _differences(cli_app.app, name, record)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_typer_command_has_exactly_the_tables_options(name):
    click_cmd = get_command(cli_app.app).commands[name]
    table = COMMANDS[name]
    assert [p.name for p in click_cmd.params] == [o.dest for o in table]
    for p, o in zip(click_cmd.params, table):
        spellings = set(p.opts) | set(getattr(p, "secondary_opts", []))
        if o.kind == "arg":
            assert p.param_type_name == "argument" and p.required
        elif o.kind == "flag":
            assert p.is_flag and spellings == set(o.switches()) and p.default == o.default
        else:
            assert spellings == set(o.decls) and p.multiple == (o.kind == "list")
            assert p.default == o.default and (p.min, p.max) == (o.min, o.max)
            assert (p.type_descriptor.annotation is int) == (o.kind == "int")


def test_an_option_only_typer_knows_is_caught(record):
    """The comparison fails when the typer command has an option the fast table lacks (someone
    adding a typer.Option by hand), so the test above could fail."""
    extra = typer.Typer()

    @extra.callback()
    def _root():
        pass

    typer_command(extra, "exec-stage", EXEC_STAGE + (Opt("bogus", "--bogus"),),
                  lambda **kw: cli_stages.exec_stage_cmd(**kw), "x")
    bad = _differences(extra, "exec-stage", record)
    assert any(b.startswith("['exec-stage', 'perf', '--bogus', 'v1']") and "fast None" in b
               for b in bad)             # the fast path does not know it
    assert all("'bogus': None" in b for b in bad if "--bogus" not in b)   # nor its default


def test_fast_path_declines_what_typer_would_refuse():
    """Values the typer command would refuse (its bounds) or words differently are left to it."""
    for argv in (["exec-stage", "perf", "--timeout", "0"],
                 ["exec-stage", "perf", "--timeout", str(10 ** 12)],
                 ["exec-stage", "perf", "--timeout", "x"], ["status", "--json=yes"],
                 ["exec-stage", "perf", "--force=1"], ["status", "-h"], ["exec-stage"]):
        assert fast.parse(argv) is None, argv


# ---------------------------------------------------------------------------------------------
# one error printer (cli.failure) for the typer app and the fast path

def _cli(*args, **env):
    import os
    import subprocess
    import sys
    from pathlib import Path
    exe = Path(sys.executable).parent / "containerctl"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **env))


@pytest.mark.parametrize("argv", [["status", "--name", "bad name!"],
                                  ["exec-stage", "no-such-stage", "--name", "x"]])
def test_fast_path_and_typer_print_errors_alike(argv, tmp_path):
    fast_r = _cli(*argv, CONTAINERCTL_HOME=str(tmp_path))
    full_r = _cli(*argv, CONTAINERCTL_HOME=str(tmp_path), CONTAINERCTL_NO_FASTPATH="1")
    assert (fast_r.returncode, fast_r.stderr) == (full_r.returncode, full_r.stderr)
    lines = fast_r.stderr.splitlines()
    assert fast_r.returncode == 2 and len(lines) == 2, fast_r.stderr
    assert lines[0].startswith("error: ") and lines[1].startswith("  fix: ")


def test_a_usage_error_is_two_clean_lines(tmp_path):
    r = _cli("up", "--bogus\x1b]0;pwned\x07\x1b[2J", CONTAINERCTL_HOME=str(tmp_path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr
    assert r.stderr.splitlines() == ["error: No such option: --bogus\\x1b]0;pwned\\x07\\x1b[2J",
                                     "  fix: see `containerctl up --help`"]
