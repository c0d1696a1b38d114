"""Quoting by construction: every profile field and --set path that reaches a stage script
arrives as an exported, shlex-quoted variable; the script text itself never contains a user
value. Hostile values (quotes, `$()`, backticks, `;`, newlines) must run nothing."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from containerctl.flagcx import probe_local
from containerctl.profiles import load_profile
from containerctl.stages.catalog import load_defs
from containerctl.stages.render import VALUES_END, render
from containerctl.stages.context import make_context

from test_flagcx_probe import make_tree

MARK = "/tmp/cctl-pwned-"
PAYLOADS = [
    '"; touch {m}1; "',
    "'; touch {m}2; '",
    "$(touch {m}3)",
    "`touch {m}4`",
    "x; touch {m}5",
    "a b\ttouch {m}6",
    "${{IFS}}$(touch${{IFS}}{m}7)",
]
# every field a stage script reads, as `--set` paths (string-valued)
FIELDS = ["flagcx.dir", "flagcx.mpi_home", "flagcx.ccl_home", "flagcx.device_home",
          "flagcx.mpi_link", "flagcx.visible_devices", "flagcx.env.MY_VAR",
          "flagcx.torch_adaptor", "stages.torch.index_url", "stages.train.flagscale",
          "stages.train.data_path", "stages.train.tokenizer_path", "stages.train.exp_dir",
          "stages.train.conda_env"]
LIST_FIELDS = ["stages.perf.extra_args", "stages.perf.mpirun_args", "stages.torch.example_args"]


def _scripts(profile, fxi):
    ctx = make_context(profile, {}, fxi)
    for sd in load_defs():
        if sd.scope != "host":
            continue
        yield sd.name, render(sd, ctx), ctx


def _split(script: str) -> tuple[str, str]:
    head, sep, body = script.partition("\n" + VALUES_END + "\n")
    assert sep, "the rendered script has no value prologue"
    return head, body


def _body(script: str) -> str:
    return _split(script)[1]


@pytest.fixture(scope="module")
def fxi(tmp_path_factory):
    return probe_local(make_tree(tmp_path_factory.mktemp("fx") / "t", "v0.13"))


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("profile_name", ["cpu-selftest", "nvidia-h200", "kunlunxin-p800"])
def test_hostile_values_never_reach_script_text(profile_name, payload, fxi, tmp_path):
    p = payload.format(m=MARK)
    # flagcx.dir must be an absolute path below the workspace: the payload rides inside one
    sets = [f"{f}=/workspace/x{p}" if f == "flagcx.dir" else f"{f}={p}" for f in FIELDS]
    prof = load_profile(profile_name, sets=sets, site=False)
    prof.stages.perf.extra_args = [p]
    prof.stages.perf.mpirun_args = [p]
    prof.stages.torch.example_args = [p]
    for name, script, ctx in _scripts(prof, fxi):
        assert p not in _body(script), f"{name}: the value reached the script text"
        # the prologue, run for real, creates nothing and carries each value intact
        prologue = _split(script)[0]
        names = [k for k in ctx["env"] if f"export {k}=" in prologue]
        check = prologue + "\n" + "".join(f'printf "%s\\0" "${k}"\n' for k in names)
        out = subprocess.run(["bash", "-c", check], capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split("\0")[:-1] == [ctx["env"][k] for k in names], name
        assert not list(Path("/tmp").glob("cctl-pwned-*")), f"{name}: a payload ran"
        syn = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
        assert syn.returncode == 0, f"{name}: {syn.stderr}"


def test_newline_in_a_list_element_is_refused(fxi):
    from containerctl.errors import UsageError
    prof = load_profile("cpu-selftest", site=False)
    prof.stages.perf.extra_args = ["-x\n-y"]
    with pytest.raises(UsageError):
        make_context(prof, {}, fxi)


def test_list_values_arrive_as_separate_words(fxi, tmp_path):
    """A perf extra arg with spaces stays ONE argument (mapfile, not word splitting)."""
    prof = load_profile("cpu-selftest", site=False)
    prof.stages.perf.extra_args = ["two words", "$HOME"]
    ctx = make_context(prof, {}, fxi)
    env = ctx["env"]
    script = ("lines_to() { local -n _a=$1; _a=(); [ -n \"$2\" ] && mapfile -t _a <<< \"$2\"; }\n"
              'lines_to a "$CCTL_PERF_ARGS"; printf "<%s>" "${a[@]}"')
    out = subprocess.run(["bash", "-c", script], env={"CCTL_PERF_ARGS": env["CCTL_PERF_ARGS"],
                                                      "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True)
    assert out.stdout.endswith("<two words><$HOME>")
    assert "<-d><float>" not in out.stdout   # v0.13's getopt has no -d


def test_make_flag_with_command_substitution_is_inert(fxi):
    prof = load_profile("cpu-selftest", site=False)
    prof.flagcx.make_flags = ["USE_X=$(touch${IFS}/tmp/cctl-pwned-mf)"]
    for name, script, _ in _scripts(prof, fxi):
        assert "touch" not in _body(script)
    out = subprocess.run(["bash", "-c", _split(script)[0] + "\necho ok"],
        capture_output=True, text=True)
    assert out.stdout.strip() == "ok" and not Path("/tmp/cctl-pwned-mf").exists()


def test_hostile_mpi_home_runs_nothing_in_the_container(run_cli, unique_name, selftest_image,
                                                         engine):
    """End to end: a hostile flagcx.mpi_home through `run --set` reaches deps as data only."""
    payload = '/x"; touch /tmp/pwned; echo "'
    r = run_cli("run", "--profile", "cpu-selftest", "--name", unique_name, "--only", "deps",
                "--set", f"flagcx.mpi_home={payload}", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    code, out = engine.exec_capture(unique_name, ["bash", "-c", "ls /tmp/pwned 2>&1 || true"])
    assert "No such file" in out
