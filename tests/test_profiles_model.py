"""The profile package (issue 22): profiles/model.py (models, validators, defaults) and
profiles/loader.py (files, YAML, extends, --set, file:line errors) behind one import path; the
typed stages.torch / stages.train options with their defaults in the model only."""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import ROOT, cli
from containerctl import profiles as P
from containerctl.errors import ProfileError
from containerctl.flagscale import TRAIN_KEYS
from containerctl.profiles.model import TorchOpts, TrainOpts
from containerctl.stages.context import make_context

DRIVER = ROOT / "containerctl" / "stages" / "assets" / "flagscale_train.py"


def _profile(tmp_path: Path, stages: str, name: str = "typed") -> Path:
    f = tmp_path / f"{name}.yaml"
    f.write_text("name: typed\nextends: cpu-selftest\nstages:\n" + textwrap.indent(
        textwrap.dedent(stages), "  "))
    return f


# ---------------------------------------------------------------------------------------------
# one import path

def test_every_name_resolves_and_the_package_alone_loads_no_pydantic():
    for name in P.__all__:
        assert getattr(P, name) is not None, name
    # private names that other modules and tests import from the package
    for name in ("_Located", "_load_raw", "_model_for", "_Strict"):
        assert callable(getattr(P, name)), name
    with pytest.raises(AttributeError):
        P.no_such_name   # noqa: B018
    code = ("import sys, containerctl.profiles as p; "
            "print(sorted(m for m in ('pydantic', 'yaml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_remembered_profile_cache_hashes_every_module_of_the_package():
    from containerctl import validated
    pkg = ROOT / "containerctl" / "profiles"
    # devices.py decides nothing a validation returns (the runner calls it at run time)
    mods = {f"profiles/{f.name}" for f in pkg.glob("*.py") if f.name != "devices.py"}
    assert {"profiles/model.py", "profiles/loader.py", "profiles/__init__.py"} <= mods
    assert mods and mods <= set(validated._CODE), mods - set(validated._CODE)


# ---------------------------------------------------------------------------------------------
# typed stages.torch / stages.train: unknown keys and bad values name file:line

@pytest.mark.parametrize("section, key, line, hint", [
    ("train", "iteratons", 5, "did you mean `stages.train.iterations`?"),
    ("torch", "master_prot", 5, "did you mean `stages.torch.master_port`?"),
    ("torch", "zzz", 5, "valid keys here: index_url, example_args, master_port, debug"),
])
def test_unknown_key_under_torch_or_train_names_file_line(tmp_path, section, key, line, hint):
    f = _profile(tmp_path, f"{section}:\n  {key}: 3\n")
    with pytest.raises(ProfileError) as e:
        P.load_profile(str(f), site=False)
    assert e.value.message == f"{f}:{line}: unknown key `stages.{section}.{key}`"
    assert e.value.hint == hint


@pytest.mark.parametrize("body, key, says", [
    ("train:\n  backend: gloo\n", "stages.train.backend", "'flagcx' or 'nccl'"),
    ("train:\n  devices: 0\n", "stages.train.devices", "auto or a positive whole number"),
    ("train:\n  iterations: true\n", "stages.train.iterations", "True is not a whole number"),
    ("train:\n  min_loss_drop: 1.5\n", "stages.train.min_loss_drop", "less than 1"),
    ("train:\n  env: {1X: a}\n", "stages.train.env", "'1X'"),
    ("train:\n  stall_seconds: 0\n", "stages.train.stall_seconds", "greater than 0"),
    ("torch:\n  master_port: 70000\n", "stages.torch.master_port", "TCP port"),
    ("torch:\n  debug: maybe\n", "stages.torch.debug", "boolean"),
])
def test_bad_torch_or_train_value_names_file_line(tmp_path, body, key, says):
    f = _profile(tmp_path, body)
    with pytest.raises(ProfileError) as e:
        P.load_profile(str(f), site=False)
    assert e.value.message.startswith(f"{f}:5: `{key}`: "), e.value.message
    assert says in e.value.message


def test_unknown_train_key_from_the_cli_is_exit_2_with_file_line(tmp_path):
    f = _profile(tmp_path, "train:\n  iteratons: 3\n")
    r = cli("profile", "show", str(f))
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{f}:5: unknown key `stages.train.iteratons`" in r.stderr
    assert "stages.train.iterations" in r.stderr and "Traceback" not in r.stderr


def test_unknown_set_key_names_set(tmp_path):
    with pytest.raises(ProfileError) as e:
        P.load_profile("cpu-selftest", ["stages.torch.port=1"], site=False)
    assert e.value.message.startswith("--set")


# ---------------------------------------------------------------------------------------------
# defaults: in the model only, shown by `profile show`, passed on by make_context

def test_defaults_appear_in_profile_show():
    text = P.profile_yaml(P.load_profile("cpu-selftest", site=False))
    for line in ("  torch:", "    master_port: 8281", "    - -o", "    - allreduce",
                 "  train:", "    iterations: 20", "    backend: flagcx", "    min_loss_drop: 0.0",
                 "    exp_dir: ./outputs_cctl_train"):
        assert line + "\n" in text, line
    r = cli("profile", "show", "cpu-selftest")
    assert r.returncode == 0, r.stderr
    assert "master_port: 8281" in r.stdout and "iterations: 20" in r.stdout


def test_make_context_reads_the_typed_defaults():
    env = make_context(P.load_profile("cpu-selftest", site=False), {})["env"]
    assert env["CCTL_TORCH_MASTER_PORT"] == "8281"
    assert env["CCTL_TORCH_EXAMPLE_ARGS"] == "-o\nallreduce"
    assert env["CCTL_TORCH_INDEX_URL"] == "" and env["CCTL_TORCH_DEBUG"] == ""
    args = env["CCTL_TRAIN_ARGS"].split("\n")
    assert args[args.index("--iterations") + 1] == "20"
    assert args[args.index("--backend") + 1] == "flagcx"
    assert args[args.index("--preset") + 1] == "small"      # auto, resolved without data
    assert "--flagscale" not in args and env["CCTL_TRAIN_CONDA_ENV"] == ""


def test_make_context_reads_what_the_profile_sets(tmp_path):
    f = _profile(tmp_path, """\
        torch: {example_args: "-o allgather -b 1M", master_port: 9000, debug: true,
                index_url: https://example.invalid/cu124}
        train: {flagscale: /fs, iterations: 5, unpatch: no, env: {A: 1}, conda_env: fs}
        """)
    p = P.load_profile(str(f), site=False)
    assert p.stages.train.unpatch == "no"          # YAML's `no` is a boolean: read as meant
    ctx = make_context(p, {})
    env = ctx["env"]
    assert env["CCTL_TORCH_EXAMPLE_ARGS"] == "-o\nallgather\n-b\n1M"
    assert env["CCTL_TORCH_MASTER_PORT"] == "9000" and env["CCTL_TORCH_DEBUG"] == "1"
    assert env["CCTL_TORCH_INDEX_URL"] == "https://example.invalid/cu124"
    args = env["CCTL_TRAIN_ARGS"].split("\n")
    for opt, val in (("--flagscale", "/fs"), ("--iterations", "5"), ("--unpatch", "no"),
                     ("--env", "A=1")):
        assert args[args.index(opt) + 1] == val, opt
    assert env["CCTL_TRAIN_CONDA_ENV"] == "fs"
    # the stage templates and the train verdict read these as before (attributes, None if unset)
    assert ctx["train"].flagscale == "/fs" and ctx["train"].iterations == 5
    assert ctx["train"].min_loss_drop == 0.0 and ctx["torch"].nothing is None


def test_an_empty_example_args_is_the_default_as_before():
    assert TorchOpts(example_args=[]).example_args == ["-o", "allreduce"]
    assert TorchOpts(example_args=None).example_args == ["-o", "allreduce"]


def test_train_model_and_the_driver_option_table_name_the_same_keys():
    assert set(TrainOpts.model_fields) == set(TRAIN_KEYS)


def _driver_defaults() -> dict[str, object]:
    tree = ast.parse(DRIVER.read_text())
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument" \
                and node.args and isinstance(node.args[0], ast.Constant):
            for kw in node.keywords:
                if kw.arg == "default":
                    try:
                        out[node.args[0].value] = ast.literal_eval(kw.value)
                    except ValueError:
                        pass   # computed (--python): not an option of the profile
    return out


def test_train_defaults_are_the_drivers_own():
    """The driver keeps argparse defaults for its own command line (tests drive it directly);
    they must say what the model says, or a profile without the key would mean two things."""
    drv = _driver_defaults()
    model = TrainOpts()
    checked = 0
    for key, opt in TRAIN_KEYS.items():
        if opt is None or opt == "--flagscale" or opt not in drv:
            continue
        want, got = getattr(model, key), drv[opt]
        if key == "preset":      # the model's auto is resolved before the driver sees it
            assert want == "auto" and got == "small"
            continue
        if isinstance(want, (int, float)) and not isinstance(want, bool):
            assert float(got) == float(want), key
        else:
            assert got == want, key
        checked += 1
    assert checked >= 18, checked


# ---------------------------------------------------------------------------------------------
# the visible-devices variable: one decision (profiles/devices.py) for the container and a stage

def test_visible_devices_one_decision():
    from types import SimpleNamespace as NS

    from containerctl.profiles.devices import visible_devices, visible_devices_env
    fx = NS(visible_devices_env="XPU_VISIBLE_DEVICES", visible_devices="auto")
    assert visible_devices(fx) is None and visible_devices_env(fx) == {}   # the container
    assert visible_devices_env(fx, 3) == {"XPU_VISIBLE_DEVICES": "0,1,2"}   # a stage of 3 ranks
    assert visible_devices(fx, 2, {"visible_devices": "4,5"}) == "4,5"     # a variant's plan
    fixed = NS(visible_devices_env="CUDA_VISIBLE_DEVICES", visible_devices="0,1")
    assert visible_devices_env(fixed) == visible_devices_env(fixed, 8) == {
        "CUDA_VISIBLE_DEVICES": "0,1"}
    nameless = NS(visible_devices_env=None, visible_devices="0,1")
    assert visible_devices(nameless, 2) == "0,1" and visible_devices_env(nameless, 2) == {}


@pytest.mark.parametrize("visible", ["0,1", "auto"])
def test_container_and_stage_see_the_same_devices(visible):
    from containerctl.runspec import build_spec
    p = P.load_profile("kunlunxin-p800", [f"flagcx.visible_devices={visible}", "flagcx.nranks=2"],
                       site=False)
    var = p.flagcx.visible_devices_env
    assert var == "XPU_VISIBLE_DEVICES"
    spec_env = build_spec(p, "img:tag", check_devices=False).env
    stage_env = make_context(p, {})["env"]
    assert stage_env[var] == "0,1"
    if visible == "auto":
        assert var not in spec_env          # counted when a stage runs, never the word "auto"
    else:
        assert spec_env[var] == "0,1"


def test_runspec_and_runner_do_not_decide_visible_devices_themselves():
    for rel in ("containerctl/runspec.py", "containerctl/stages/context.py"):
        text = (ROOT / rel).read_text()
        assert "visible_devices_env(" in text, rel
        assert "fx.visible_devices_env and" not in text, f"{rel} decides again"
        assert "fx.visible_devices not in" not in text, f"{rel} decides again"
    # nor anything else (the cluster's export and hetero environments ask devices.py too)
    for f in (ROOT / "containerctl").rglob("*.py"):
        if f.name != "devices.py":
            text = f.read_text()
            assert "fx.visible_devices not in" not in text \
                and "fx.visible_devices_env and" not in text, \
                f"{f.relative_to(ROOT)} decides the visible devices again"
