"""Images: golden renders of every built-in image, spec/option/template errors that name their
file and line, the content-hash tag, and (marked docker) a real offline build of cpu-selftest
whose second ensure_image is a cache hit without any build call.

UPDATE_GOLDEN=1 pytest tests/test_images.py rewrites tests/golden/images/*.Dockerfile.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from containerctl import images, paths
from containerctl.errors import ContainerctlError, ImageError

GOLDEN = Path(__file__).parent / "golden" / "images"
BUILTIN = sorted(p.stem for p in paths.data_dir("images").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path, monkeypatch):
    """User image specs and block templates (~/.config/containerctl) must not leak into tests."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def _line_of(path: Path, needle: str) -> int:
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in {path}")


# ---------------------------------------------------------------------------------------------
# the package's layout (issue 22)

LAYERS = ["where", "blocks", "spec", "render", "bootstrap", "build"]


def test_each_module_imports_only_the_ones_before_it():
    """where <- blocks <- spec <- render / bootstrap <- build, at module level; no cycles."""
    import ast

    pkg = Path(images.__file__).parent
    assert sorted(p.stem for p in pkg.glob("*.py")) == sorted(LAYERS + ["__init__"])
    for i, name in enumerate(LAYERS):
        tree = ast.parse((pkg / f"{name}.py").read_text())
        inside = {n.module for n in ast.walk(tree)
                  if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module}
        assert inside <= set(LAYERS[:i]), f"{name}.py imports {sorted(inside - set(LAYERS[:i]))}"
        nested = [n for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                  for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert all(isinstance(n, ast.Import) and n.names[0].name == "jinja2" for n in nested), \
            f"{name}.py imports inside a function (only jinja2 may wait until rendering)"


def test_importing_images_loads_neither_docker_nor_jinja2():
    """The commands that only find or load specs (up with its tag cache) pay for neither."""
    code = ("import sys, containerctl.images as i; i.load_image('cpu-selftest'); "
            "print(sorted(m for m in ('docker', 'jinja2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    code = "import sys, containerctl.images as i; i.render('cpu-selftest'); print('jinja2' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "True"


def test_the_package_is_not_the_data_folder():
    """containerctl/images/ (code) and the specs folder (images/, packaged as _data/images)
    are two things: the specs are found whichever way containerctl is installed."""
    assert paths.data_dir("images") != Path(images.__file__).parent
    assert (paths.data_dir("images") / "cpu-selftest.yaml").is_file()
    assert not list(Path(images.__file__).parent.glob("*.yaml"))


# ---------------------------------------------------------------------------------------------
# golden renders

def test_builtin_images_are_listed():
    names = [s.name for s in images.list_images()]
    assert names == BUILTIN
    assert {"cpu-selftest", "nvidia-cuda", "vendor-generic", "hetero-mpich"} <= set(names)


@pytest.mark.parametrize("name", BUILTIN)
def test_golden_render(name):
    text = images.render(name)
    golden = GOLDEN / f"{name}.Dockerfile"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.is_file(), f"no golden file {golden}: run with UPDATE_GOLDEN=1"
    assert text == golden.read_text(), f"{name} renders differently from {golden}"
    lines = text.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.endswith("\\"):
            assert lines[i + 1].strip(), f"{name}: empty continuation line after line {i + 1}"


def test_render_is_deterministic():
    assert images.render("nvidia-cuda") == images.render("nvidia-cuda")


def test_nvidia_render_has_openmpi_nccl_gtest_sshd_and_flagcx_last():
    text = images.render("nvidia-cuda")
    assert text.startswith("# nvidia-cuda: rendered by containerctl")
    assert "FROM nvidia/cuda:12.4.1-devel-ubuntu22.04" in text
    assert "openmpi-4.1.6.tar.bz2" in text and "--prefix=/usr/local/mpi" in text
    assert "mpirun.real --allow-run-as-root" in text
    assert "libnccl2=2.21.5-1+cuda12.4" in text and "/usr/local/nccl/build/lib" in text
    assert "googletest/archive/refs/tags/v1.14.0.tar.gz" in text
    assert "'Port 8010'" in text and "EXPOSE 8010" in text
    order = [text.index(f"block {i}/7: {b} ") for i, b in enumerate(
        ["base-packages", "python", "openmpi", "gtest", "nccl", "sshd", "flagcx"], 1)]
    assert order == sorted(order)
    assert "git fetch -q --depth 1 origin v0.13.0" in text


def test_cpu_selftest_is_offline_distro_openmpi_without_mpich():
    spec = images.load_image("cpu-selftest")
    assert spec.base.bootstrap is not None and spec.base.bootstrap.tool == "mmdebstrap"
    text = images.render(spec)
    assert "FROM containerctl/base:debian-bookworm" in text
    assert "openmpi-bin" in text and "libopenmpi-dev" in text
    assert "mpich" not in text.lower()
    assert "wget" not in text  # nothing downloaded outside the Debian mirror
    assert "'Port 8010'" in text
    assert "containerctl-sshd" in text  # sshd is installed but not started


def test_hetero_mpich_adds_mpich_423_from_source():
    text = images.render("hetero-mpich")
    assert "mpich-4.2.3.tar.gz" in text and "--prefix=/usr/local/mpich" in text
    assert "7a019180c51d1738ad9c5d8d452314de65e828ee240bcb2d1f80de9a65be88a8" in text
    distro = images.render("hetero-mpich", {"mpich.source": "distro"})
    assert "libmpich-dev" in distro and "mpich-4.2.3.tar.gz" not in distro


# ---------------------------------------------------------------------------------------------
# overrides (profile image_args, --set)

def test_flagcx_ref_override_changes_only_the_last_block():
    a = images.render("nvidia-cuda").splitlines()
    b = images.render("nvidia-cuda", {"flagcx_ref": "v0.12.0"}).splitlines()
    assert len(a) == len(b)
    changed = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    assert changed, "the ref must appear in the Dockerfile"
    last_block = next(i for i, line in enumerate(a) if "block 7/7: flagcx" in line)
    assert min(changed) > last_block


def test_override_forms_and_typing():
    dotted = images.render("vendor-generic", {"base.image": "vendor/sdk:1", "flagcx.ref": "abc"})
    under = images.render("vendor-generic", {"base_image": "vendor/sdk:1", "flagcx_ref": "abc"})
    assert dotted == under
    assert "FROM vendor/sdk:1" in dotted
    # --set values arrive as strings; non-string options read them as YAML
    port = images.render("cpu-selftest", {"sshd.port": "2222"})
    assert "'Port 2222'" in port and "EXPOSE 2222" in port
    # ...but a string option keeps the text as given (a numeric-looking commit stays a string)
    assert "origin 0123456" in images.render("nvidia-cuda", {"flagcx.ref": "0123456"})


def test_base_image_override_replaces_a_bootstrap():
    text = images.render("cpu-selftest", {"base_image": "debian:bookworm"})
    assert "FROM debian:bookworm" in text
    p = images.plan("cpu-selftest", {"base_image": "debian:bookworm"})
    assert p.base.bootstrap is None and p.base_ref == "debian:bookworm"


def test_dnf_base_switches_package_manager():
    text = images.render("vendor-generic", {"base_image": "openeuler/openeuler:22.03",
                                            "base_pkg": "dnf"})
    assert "apt-get" not in text and "dnf install -y" in text and "numactl-devel" in text


def test_unknown_override_suggests_the_nearest_key():
    with pytest.raises(ImageError) as exc:
        images.render("nvidia-cuda", {"flagcx.rev": "x"})
    assert "flagcx" in exc.value.message and "'rev'" in exc.value.message
    assert "ref" in exc.value.hint
    with pytest.raises(ImageError) as exc:
        images.render("nvidia-cuda", {"flagxc_ref": "x"})
    assert "flagcx.ref" in exc.value.hint


def test_override_bad_value_names_the_argument_and_declaration():
    with pytest.raises(ImageError) as exc:
        images.render("nvidia-cuda", {"openmpi.source": "conda"})
    msg = exc.value.message
    assert "openmpi.source" in msg and "conda" in msg
    line = _line_of(paths.data_dir("Dockerfile.templates") / "openmpi.j2", "  source:")
    assert f"Dockerfile.templates/openmpi.j2:{line}" in msg


# ---------------------------------------------------------------------------------------------
# errors name their file and line

SPEC_OK = """
    name: tiny
    base:
      image: debian:bookworm
    blocks:
      - use: base-packages
        packages: [make]
      - use: openmpi
        source: distro
"""


def test_bad_block_option_names_yaml_file_line_and_template(tmp_path):
    spec = _write(tmp_path / "tiny.yaml", SPEC_OK + "        verison: 4.1.6\n")
    with pytest.raises(ImageError) as exc:
        images.render(images.load_image(spec))
    msg = exc.value.message
    assert f"tiny.yaml:{_line_of(spec, 'verison')}" in msg
    assert "blocks[1].verison" in msg
    assert "Dockerfile.templates/openmpi.j2:" in msg
    assert "did you mean 'version'" in exc.value.hint


def test_bad_option_value_names_yaml_line_and_declaration(tmp_path):
    spec = _write(tmp_path / "tiny.yaml", SPEC_OK.replace("source: distro", "source: conda"))
    with pytest.raises(ImageError) as exc:
        images.render(images.load_image(spec))
    msg = exc.value.message
    assert f"tiny.yaml:{_line_of(spec, 'conda')}" in msg and "must be one of source, distro" in msg
    line = _line_of(paths.data_dir("Dockerfile.templates") / "openmpi.j2", "  source:")
    assert f"openmpi.j2:{line}" in msg


def test_unquoted_number_for_a_string_option_is_refused(tmp_path):
    spec = _write(tmp_path / "tiny.yaml", SPEC_OK.replace("source: distro", "version: 4.1"))
    with pytest.raises(ImageError) as exc:
        images.render(images.load_image(spec))
    assert "blocks[1].version" in exc.value.message and "quote it" in exc.value.message


def test_unknown_spec_key_names_line_and_suggests(tmp_path):
    spec = _write(tmp_path / "tiny.yaml", SPEC_OK.replace("    image: debian:bookworm",
                                                          "    imgae: debian:bookworm"))
    with pytest.raises(ImageError) as exc:
        images.load_image(spec)
    assert f"tiny.yaml:{_line_of(spec, 'imgae')}: base.imgae: unknown key" in exc.value.message
    assert "did you mean 'image'" in exc.value.hint


def test_unknown_block_names_line_and_suggests(tmp_path):
    spec = _write(tmp_path / "tiny.yaml", SPEC_OK.replace("use: openmpi", "use: openmp"))
    with pytest.raises(ImageError) as exc:
        images.load_image(spec)
    assert f"tiny.yaml:{_line_of(spec, 'openmp')}: blocks[1].use" in exc.value.message
    assert "did you mean 'openmpi'" in exc.value.hint


def test_base_needs_exactly_one_source(tmp_path):
    spec = _write(tmp_path / "tiny.yaml", SPEC_OK.replace(
        "      image: debian:bookworm",
        "      image: debian:bookworm\n      bootstrap: {suite: bookworm}"))
    with pytest.raises(ImageError) as exc:
        images.load_image(spec)
    assert "tiny.yaml:2: base:" in exc.value.message and "exactly one" in exc.value.message


def test_flagcx_must_be_the_last_block(tmp_path):
    spec = _write(tmp_path / "tiny.yaml", SPEC_OK.replace(
        "      - use: base-packages", "      - use: flagcx\n      - use: base-packages"))
    with pytest.raises(ImageError) as exc:
        images.load_image(spec)
    assert "flagcx must be the last block" in exc.value.message
    assert f"tiny.yaml:{_line_of(spec, 'use: flagcx')}" in exc.value.message


def test_unknown_image_suggests():
    with pytest.raises(ImageError) as exc:
        images.load_image("cpu-selftst")
    assert "did you mean 'cpu-selftest'" in exc.value.hint


def _user_block(tmp_path, name: str, body: str) -> Path:
    header = ("{#---\ndoc: a test block\noptions:\n  version: {default: \"1.0\"}\n---#}\n")
    return _write(tmp_path / "config" / "containerctl" / "Dockerfile.templates" / f"{name}.j2",
                  header + textwrap.dedent(body).lstrip("\n"))


def _spec_using(tmp_path, block: str) -> Path:
    return _write(tmp_path / "uses.yaml", f"""
        name: uses
        base: {{image: debian:bookworm}}
        blocks:
          - use: {block}
    """)


def test_undefined_template_variable_names_template_file_and_line(tmp_path):
    tmpl = _user_block(tmp_path, "broken", """
        RUN echo {{ version }}
        RUN echo {{ verison }}
    """)
    with pytest.raises(ImageError) as exc:
        images.render(images.load_image(_spec_using(tmp_path, "broken")))
    msg = exc.value.message
    assert msg.startswith(f"{tmpl}:{_line_of(tmpl, 'verison')}: undefined variable")
    assert "'verison' is undefined" in msg and "blocks[0]" in msg
    assert "version" in exc.value.hint


def test_template_syntax_error_names_template_file_and_line(tmp_path):
    tmpl = _user_block(tmp_path, "badsyntax", """
        RUN echo ok
        {% if version %}
        RUN echo {{ version }
        {% endif %}
    """)
    with pytest.raises(ImageError) as exc:
        images.render(images.load_image(_spec_using(tmp_path, "badsyntax")))
    assert exc.value.message.startswith(f"{tmpl}:{_line_of(tmpl, 'version }')}: template syntax")


def test_template_fail_names_template_line():
    with pytest.raises(ImageError) as exc:
        images.render("nvidia-cuda", {"nccl.source": "host"})
    tmpl = paths.data_dir("Dockerfile.templates") / "nccl.j2"
    line = _line_of(tmpl, 'fail("nccl source: host needs')
    assert exc.value.message.startswith(f"Dockerfile.templates/nccl.j2:{line}: nccl source: host")


def test_nccl_from_alias(tmp_path):
    spec = _write(tmp_path / "n.yaml", """
        name: n
        base: {image: ubuntu:22.04}
        blocks:
          - use: nccl
            from: none
    """)
    assert "(no NCCL" in images.render(images.load_image(spec))


def test_every_block_declares_documented_options():
    for name in images.block_names():
        d = images.block_def(name)
        assert d.doc, f"{name}.j2 has no doc"
        for opt in d.options.values():
            assert opt.type in ("str", "int", "bool", "list", "dict", "any")


# ---------------------------------------------------------------------------------------------
# content hash and build context (no engine needed)

def _git(repo: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def fake_flagcx(tmp_path) -> tuple[Path, str, str]:
    repo = tmp_path / "FlagCX"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "Makefile").write_text("all:\n\t@echo one\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "one")
    first = _git(repo, "rev-parse", "HEAD")
    (repo / "Makefile").write_text("all:\n\t@echo two\n")
    _git(repo, "commit", "-qam", "two")
    return repo, first, _git(repo, "rev-parse", "HEAD")


def _local_spec(tmp_path, repo: Path) -> Path:
    return _write(tmp_path / "local.yaml", f"""
        name: local
        base: {{image: debian:bookworm}}
        blocks:
          - use: base-packages
            packages: [make]
          - use: flagcx
            source: local
            path: {repo}
            submodules: false
    """)


def test_local_flagcx_source_is_exported_at_the_ref_and_hashed(tmp_path, fake_flagcx):
    repo, first, second = fake_flagcx
    spec = images.load_image(_local_spec(tmp_path, repo))
    digests = {}
    for ref in (first, second, first):
        p = images.plan(spec, {"flagcx.ref": ref})
        ctx = tmp_path / f"ctx-{ref[:7]}-{len(digests)}"
        images.materialize(p, ctx)
        assert (ctx / "flagcx" / "Makefile").read_text().endswith(
            "one\n" if ref == first else "two\n")
        assert not (ctx / "flagcx" / ".git").exists()
        digests.setdefault(ref, set()).add(images.digest_dir(ctx, "sha256:base"))
    assert len(digests[first]) == 1, "same inputs, same hash"
    assert digests[first] != digests[second]
    text = images.render(spec, {"flagcx.ref": first})
    assert "COPY flagcx/ /opt/FlagCX/" in text


def test_hash_covers_the_base_image_id(tmp_path):
    p = images.plan("nvidia-cuda")
    images.materialize(p, tmp_path / "ctx")
    assert images.digest_dir(tmp_path / "ctx", "sha256:a") != \
        images.digest_dir(tmp_path / "ctx", "sha256:b")


def test_missing_submodule_checkout_is_explained(tmp_path, fake_flagcx):
    repo, first, second = fake_flagcx
    sub = tmp_path / "json"
    sub.mkdir()
    _git(sub, "init", "-q")
    (sub / "json.hpp").write_text("//\n")
    _git(sub, "add", ".")
    _git(sub, "commit", "-qm", "j")
    _git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub),
         "third-party/json")
    _git(repo, "commit", "-qm", "sub")
    head = _git(repo, "rev-parse", "HEAD")
    spec_path = _local_spec(tmp_path, repo)
    spec = images.load_image(spec_path)
    ctx = tmp_path / "ctx"
    images.materialize(images.plan(spec, {"flagcx.ref": head, "flagcx.submodules": "true"}), ctx)
    assert (ctx / "flagcx" / "third-party" / "json" / "json.hpp").is_file()
    subprocess.run(["rm", "-rf", str(repo / "third-party" / "json")], check=True)
    with pytest.raises(ImageError) as exc:
        images.materialize(images.plan(spec, {"flagcx.ref": head, "flagcx.submodules": "true"}),
                           tmp_path / "ctx2")
    assert "submodule third-party/json" in exc.value.message


# ---------------------------------------------------------------------------------------------
# ensure_image's decisions, against a fake engine (no Docker needed)

class FakeEngine:
    def __init__(self, present: dict[str, str], pull: dict[str, str] | None = None):
        self.present = dict(present)
        self.pull = dict(pull or {})  # what a build's FROM can pull
        self.builds: list[dict] = []

    def image_id(self, ref):
        return self.present.get(ref)

    def image_exists(self, ref):
        return ref in self.present

    def image_inspect(self, ref):
        return {"Id": self.present[ref], "Config": {"Labels": {}}}

    def build_image(self, ctx, tag, *, labels=None, nocache=False, on_line=None, **kw):
        dockerfile = (Path(ctx) / "Dockerfile").read_text()
        base = re.search(r"^FROM (\S+)", dockerfile, re.M).group(1)
        if base not in self.present:
            if base not in self.pull:
                raise ImageError(f"image build {tag} failed at Step 1/9 : FROM {base}: no such "
                                 "host", "see the build output above")
            self.present[base] = self.pull[base]
        self.builds.append({"tag": tag, "labels": labels, "nocache": nocache})
        on_line("Step 1/9 : FROM " + base)
        on_line("\x1b[91m+ apt-get update\x1b[0m")
        on_line("")
        self.present[tag] = f"sha256:{len(self.builds)}"
        return self.present[tag]

    def tag(self, image, repo, tag):
        self.present[f"{repo}:{tag}"] = image

    def remove_image(self, ref, force=False):
        self.present.pop(ref, None)


def test_ensure_image_builds_once_then_hits():
    eng = FakeEngine({"nvidia/cuda:12.4.1-devel-ubuntu22.04": "sha256:cuda"})
    lines: list[str] = []
    tag = images.ensure_image(eng, "nvidia-cuda", on_line=lines.append)
    assert re.fullmatch(r"containerctl/nvidia-cuda:[0-9a-f]{12}", tag)
    assert tag == images.image_tag("nvidia-cuda", None, eng)
    (build,) = eng.builds
    assert build["labels"][images.IMAGE_LABEL] == "nvidia-cuda"
    assert build["labels"][images.HASH_LABEL].startswith(tag.rpartition(":")[2])
    assert "+ apt-get update" in lines and "" not in lines  # colours and blank lines dropped
    assert images.ensure_image(eng, "nvidia-cuda") == tag and len(eng.builds) == 1
    images.ensure_image(eng, "nvidia-cuda", force=True)
    images.ensure_image(eng, "nvidia-cuda", nocache=True)
    assert [b["nocache"] for b in eng.builds] == [False, False, True]
    # another base image id gives another tag
    eng.present["nvidia/cuda:12.4.1-devel-ubuntu22.04"] = "sha256:cuda-updated"
    assert images.ensure_image(eng, "nvidia-cuda") != tag


def test_overrides_give_their_own_tag():
    eng = FakeEngine({"ubuntu:22.04": "sha256:u"})
    a = images.ensure_image(eng, "vendor-generic")
    b = images.ensure_image(eng, "vendor-generic", {"flagcx_ref": "v0.12.0"})
    assert a != b and len(eng.builds) == 2
    assert images.ensure_image(eng, "vendor-generic", {"flagcx.ref": "v0.12.0"}) == b


def test_a_pulled_base_is_named_by_its_id_after_the_build():
    eng = FakeEngine({}, pull={"ubuntu:22.04": "sha256:pulled"})
    with pytest.raises(ImageError):
        images.image_tag("vendor-generic", None, eng)  # base unknown: no tag yet
    tag = images.ensure_image(eng, "vendor-generic")
    assert tag == images.image_tag("vendor-generic", None, eng)
    assert [t for t in eng.present if t.startswith("containerctl/")] == [tag]
    assert images.ensure_image(eng, "vendor-generic") == tag and len(eng.builds) == 1


def test_an_unpullable_base_says_how_to_load_it():
    eng = FakeEngine({})
    with pytest.raises(ImageError) as exc:
        images.ensure_image(eng, "nvidia-cuda")
    assert "nvidia/cuda:12.4.1-devel-ubuntu22.04 is not on this host" in exc.value.message
    assert "docker load" in exc.value.hint


def test_a_present_bootstrap_base_is_reused_without_bootstrapping():
    spec = images.load_image("cpu-selftest")
    key = images.bootstrap_key(spec.base.bootstrap)
    eng = FakeEngine({spec.base.tag: "sha256:base"})
    eng.image_inspect = lambda ref: {"Config": {"Labels": {images.BASE_LABEL: key}}}
    eng.import_image = lambda *a, **k: pytest.fail("must not import")
    assert images.ensure_base(eng, spec.base) == "sha256:base"


# ---------------------------------------------------------------------------------------------
# CLI (register() on a throwaway app; containerctl/cli/app.py calls the same function)

def _cli():
    import typer
    from typer.testing import CliRunner

    from containerctl.cli import image as cli_image

    app = typer.Typer()

    @app.callback()
    def _main() -> None:
        """test app"""

    cli_image.register(app)
    return app, CliRunner()


def test_cli_render_prints_the_dockerfile():
    app, runner = _cli()
    result = runner.invoke(app, ["image", "render", "nvidia-cuda", "--set", "flagcx.ref=v0.12.0"])
    assert result.exit_code == 0, result.output
    assert result.output == images.render("nvidia-cuda", {"flagcx.ref": "v0.12.0"})


def test_cli_list_and_blocks():
    app, runner = _cli()
    result = runner.invoke(app, ["image", "list", "--no-status"])
    assert result.exit_code == 0, result.output
    for name in BUILTIN:
        assert name in result.output
    result = runner.invoke(app, ["image", "blocks", "openmpi"])
    assert result.exit_code == 0 and "allow-run-as-root" in result.output


def test_cli_profile_supplies_image_and_args(monkeypatch):
    import types

    import containerctl.profiles as profiles

    fake = {"gpu": types.SimpleNamespace(image="nvidia-cuda", image_args={"flagcx_ref": "v0.9.0"}),
            "literal": types.SimpleNamespace(image="vendor/sdk:1", image_args={})}
    monkeypatch.setattr(profiles, "load_profile", lambda name, *a, **k: fake[name])
    app, runner = _cli()
    result = runner.invoke(app, ["image", "render", "--profile", "gpu", "--set", "sshd.port=22"])
    assert result.exit_code == 0, result.output
    assert result.output == images.render("nvidia-cuda", {"flagcx_ref": "v0.9.0",
                                                          "sshd.port": "22"})
    result = runner.invoke(app, ["image", "render", "--profile", "literal"])
    assert isinstance(result.exception, ContainerctlError)
    assert "literal reference" in result.exception.message


def test_spec_env_values_are_quoted_when_needed(tmp_path):
    spec = _write(tmp_path / "e.yaml", """
        name: e
        base: {image: debian:bookworm}
        env: {PLAIN: /opt/x, SPACED: a b, QUOTED: 'say "hi"', NUM: 3}
        blocks:
          - use: base-packages
    """)
    text = images.render(images.load_image(spec))
    assert "ENV PLAIN=/opt/x\n" in text and 'ENV SPACED="a b"\n' in text
    assert 'ENV QUOTED="say \\"hi\\""\n' in text and "ENV NUM=3\n" in text


def test_cli_errors_are_containerctl_errors():
    app, runner = _cli()
    result = runner.invoke(app, ["image", "render", "nvidia-cuda", "--set", "noequals"])
    assert isinstance(result.exception, ContainerctlError)
    result = runner.invoke(app, ["image", "render", "no-such-image"])
    assert isinstance(result.exception, ImageError)


# ---------------------------------------------------------------------------------------------
# real builds (the CI script starts an engine; skipped only when none answers)

@pytest.fixture(scope="session")
def engine():
    from containerctl.engine import Engine

    e = Engine()
    if not e.ping():
        pytest.skip("no Docker engine answers")
    return e


@pytest.fixture(scope="session")
def cpu_selftest(engine) -> str:
    """Build (or find) cpu-selftest once per session; other modules get the same tag from
    ensure_image because the tag is a content hash."""
    return images.ensure_image(engine, "cpu-selftest")


class _NoBuildEngine:
    """The real engine, except that building or importing fails the test."""

    def __init__(self, engine):
        self._engine = engine
        self.lines: list[str] = []

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def build_image(self, *args, **kwargs):
        raise AssertionError("build_image was called on a cache hit")

    def import_image(self, *args, **kwargs):
        raise AssertionError("import_image was called on a cache hit")


@pytest.mark.docker
@pytest.mark.slow
def test_cpu_selftest_builds_offline_and_is_labelled(engine, cpu_selftest):
    assert re.fullmatch(r"containerctl/cpu-selftest:[0-9a-f]{12}", cpu_selftest)
    labels = engine.image_inspect(cpu_selftest)["Config"]["Labels"]
    assert labels[images.IMAGE_LABEL] == "cpu-selftest"
    assert labels[images.HASH_LABEL].startswith(cpu_selftest.rpartition(":")[2])
    assert images.image_tag("cpu-selftest", None, engine) == cpu_selftest
    assert cpu_selftest in images.built_tags(engine, "cpu-selftest")


@pytest.mark.docker
@pytest.mark.slow
def test_second_ensure_image_is_a_cache_hit_without_build(engine, cpu_selftest):
    wrapped = _NoBuildEngine(engine)
    lines: list[str] = []
    tag = images.ensure_image(wrapped, "cpu-selftest", on_line=lines.append)
    assert tag == cpu_selftest
    assert lines == [f"image {tag} is up to date"]
    assert not any(line.startswith("Step ") for line in lines)


@pytest.mark.docker
@pytest.mark.slow
def test_cpu_selftest_has_working_mpi_sshd_and_python(engine, cpu_selftest, tmp_path):
    """A throwaway image FROM cpu-selftest whose RUN steps check what the blocks promise."""
    (tmp_path / "Dockerfile").write_text(f"""FROM {cpu_selftest}
RUN set -eux; \\
    printf '%s\\n' '#include <mpi.h>' '#include <stdio.h>' \\
      'int main(int c, char **v) {{ int r, n; MPI_Init(&c, &v);' \\
      'MPI_Comm_rank(MPI_COMM_WORLD, &r); MPI_Comm_size(MPI_COMM_WORLD, &n);' \\
      'printf("rank %d of %d\\n", r, n); MPI_Finalize(); return 0; }}' > /tmp/hello.c; \\
    gcc -I/usr/local/mpi/include /tmp/hello.c -L/usr/local/mpi/lib -lmpi -o /tmp/hello; \\
    mpirun -np 2 --oversubscribe /tmp/hello | sort | tee /tmp/out; \\
    grep -qx 'rank 1 of 2' /tmp/out; \\
    grep -q allow-run-as-root /usr/local/mpi/bin/mpirun; \\
    test -e /usr/local/mpi/lib/libmpi_cxx.so; \\
    ! ls /etc/ssh/ssh_host_* 2>/dev/null; \\
    containerctl-sshd -T | grep -qx 'port 8010'; \\
    python3 --version; \\
    command -v ssh make g++
""")
    tag = "containerctl-test/cpu-selftest-check:latest"
    out: list[str] = []
    try:
        engine.build_image(tmp_path, tag, nocache=True, on_line=out.append)
        assert "rank 1 of 2" in "\n".join(out)
    finally:
        engine.remove_image(tag, force=True)


def test_an_image_spec_nested_too_deep_is_an_image_error(tmp_path):
    """Image specs go through the one bounded YAML reader: a spec nested 5000 deep was a
    RecursionError (exit 70); now it is an ImageError naming the file and line."""
    from containerctl.errors import ImageError
    p = tmp_path / "deep.yaml"
    p.write_text("name: deep\nbase:\n  image: x\nblocks: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ImageError, match=r"deep\.yaml:\d+: not valid YAML: nested more than"):
        images.load_image(p)
