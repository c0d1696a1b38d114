"""One engine error mapping (Engine._engine_error) for both transports: the docker SDK (_call)
and the standard-library local client (_lcall) turn the same engine answer into the same
ContainerctlError — class, message, fix and exit code — against the real engine."""
from __future__ import annotations

import subprocess
import uuid

import pytest

from containerctl.engine import Engine
from containerctl.errors import EngineError, NotFound


def _engines(monkeypatch, url: str | None = None):
    local = Engine(url)
    monkeypatch.setenv("CONTAINERCTL_ENGINE_SDK", "1")
    sdk = Engine(url)
    monkeypatch.delenv("CONTAINERCTL_ENGINE_SDK")
    assert local._local is not None and sdk._local is None
    return local, sdk


def _err(fn):
    try:
        fn()
    except (EngineError, NotFound) as exc:
        return type(exc).__name__, exc.message, exc.hint, exc.exit_code
    raise AssertionError("no error raised")


@pytest.fixture(scope="module")
def stopped(engine, selftest_image):
    name = f"cctl-ee-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "create", "--name", name, "--label", "io.containerctl.managed=1",
                    selftest_image, "sleep", "infinity"], check=True, capture_output=True)
    yield name
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def test_refusals_are_worded_the_same_by_both_transports(engine, stopped, monkeypatch):
    local, sdk = _engines(monkeypatch)
    missing = f"cctl-ee-none-{uuid.uuid4().hex[:6]}"
    for call in (lambda e: e.inspect(missing),                  # 404
                 lambda e: e.exec(missing, ["true"]),           # 404 on exec create
                 lambda e: e.exec(stopped, ["true"])):          # 409: not running
        a, b = _err(lambda: call(local)), _err(lambda: call(sdk))
        assert a == b
        assert a[3] == 2 and a[2]
    assert _err(lambda: local.inspect(missing))[0] == "NotFound"
    kind, message, hint, _ = _err(lambda: local.exec(stopped, ["true"]))
    assert kind == "EngineError" and "is not running" in message and message.startswith("exec")


def test_an_unreachable_engine_is_worded_the_same(tmp_path, monkeypatch):
    local, sdk = _engines(monkeypatch, f"unix://{tmp_path}/no.sock")
    a, b = _err(lambda: local.inspect("x")), _err(lambda: sdk.inspect("x"))
    assert a == b and a[0] == "EngineError" and "cannot reach a Docker engine" in a[1]


def test_one_mapping_for_both_exception_families():
    """The SDK's exception classes (real ones, built as the SDK builds them from a response)
    and the local client's _EngineAnswer map to the same errors."""
    import docker.errors
    import requests
    from containerctl.engine import _EngineAnswer
    e = Engine("unix:///nonexistent/docker.sock")

    def sdk_error(status: int, text: str):
        resp = requests.models.Response()
        resp.status_code, resp._content = status, b'{"message": "%s"}' % text.encode()
        try:
            resp.raise_for_status()
        except requests.exceptions.HTTPError as exc:
            return docker.errors.create_api_error_from_http_exception(exc) or exc
        raise AssertionError(status)

    for status, text in ((404, "No such container: c1"), (409, "container c1 is not running"),
                         (500, "invalid mount config for type bind: bind source path does not "
                               "exist: /x")):
        try:
            sdk_error(status, text)
        except (docker.errors.APIError) as exc:
            sdk_exc = exc
        mine = e._engine_error(_EngineAnswer(status, text), "inspect c1")
        theirs = e._engine_error(sdk_exc, "inspect c1")
        assert (type(mine), mine.message, mine.hint) == (type(theirs), theirs.message, theirs.hint)
        assert isinstance(mine, NotFound) == (status == 404)
    assert "volume source does not exist" in mine.message
    down = e._engine_error(ConnectionRefusedError(111, "refused"), "")
    assert isinstance(down, EngineError) and "cannot reach a Docker engine" in down.message
