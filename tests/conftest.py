"""Shared fixtures. Integration tests use the real Docker engine that the test command starts;
in CI (CI=true) a missing engine is a failure, never a silent skip."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The CLIs the tests start must meet SIGINT as a user's terminal would. A shell starts a
# background job (`nohup pytest … &`, `… &` in a script) with SIGINT ignored, every child
# inherits that ignore across exec, and Python then installs no KeyboardInterrupt handler: the
# tests that interrupt a run with SIGINT waited for ever. Restore the default here, once, so the
# children exec with SIGINT at its default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# Likewise SIGHUP: under `nohup` every child starts with SIGHUP ignored, and containerctl rightly
# leaves an ignored SIGHUP alone (the user asked for it), so the SIGHUP tests would meet a CLI
# that the user told to survive a closed terminal; the first one's stage then ran on and held the
# container's lock through the next tests. The CLIs the tests start meet SIGHUP at its default.
if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Each test gets its own state/results home unless it asks for the shared one."""
    if "CONTAINERCTL_HOME" not in os.environ or os.environ.get("CONTAINERCTL_TEST_SHARED_HOME"):
        monkeypatch.setenv("CONTAINERCTL_HOME", str(tmp_path_factory.mktemp("cctl-home")))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))
    monkeypatch.delenv("CONTAINERCTL_SITE", raising=False)


@pytest.fixture(scope="session")
def engine():
    from containerctl.engine import get_engine
    e = get_engine()
    if not e.ping():
        if os.environ.get("CI"):
            pytest.fail("no Docker engine answers: the test command (scripts/test.sh) must start one")
        pytest.skip("no Docker engine answers (scripts/test.sh starts one)")
    return e


@pytest.fixture(scope="session")
def selftest_image(engine):
    """The cpu-selftest image, built once per session (a cache hit when unchanged)."""
    from containerctl import images
    return images.ensure_image(engine, "cpu-selftest", on_line=lambda line: None)


def cli(*args: str, env: dict | None = None, input: str | None = None, timeout: int = 900,
        cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run the installed CLI as a user types it."""
    e = dict(os.environ)
    if env:
        e.update(env)
    exe = Path(sys.executable).parent / "containerctl"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=e, input=input,
                          timeout=timeout, cwd=cwd)


@pytest.fixture
def run_cli():
    return cli


@pytest.fixture
def unique_name(request):
    import uuid
    name = f"cctl-test-{uuid.uuid4().hex[:8]}"
    yield name
    from containerctl.engine import get_engine
    e = get_engine()
    try:
        e.remove(name, force=True, volumes=True)
        e.remove_volume(f"{name}-workspace")
    except Exception:
        pass
