"""Inputs bounded and parsed (issue 18, items 6 and 7): engine URLs through one strict parser,
numbers bounded where they enter, YAML depth bounded, a full or odd home explained, memory
bounded whatever a stage prints. Real parts: the real CLI, the real ssh client, a real tmpfs."""
from __future__ import annotations

import subprocess
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import cli
from containerctl.engineurl import EngineURL, parse
from containerctl.errors import UsageError


# --- engine URLs --------------------------------------------------------------------------------

def _accepts(url: str) -> EngineURL | None:
    try:
        return parse(url)
    except UsageError as exc:
        assert exc.message and exc.hint and "\n" not in exc.message
        return None


def _check_accepted(u: EngineURL) -> None:
    assert parse(str(u)) == u, "what is accepted prints as a URL that parses back to itself"
    assert not (u.user or "").startswith("-")
    assert not u.host.startswith("-")
    assert u.port is None or 1 <= u.port <= 65535
    if u.scheme == "ssh":
        argv = u.ssh_argv("-o", "BatchMode=yes")
        assert argv[-2:] == ["--", u.host]
        assert argv.count("--") == 1 and (not u.user or argv[argv.index("-l") + 1] == u.user)


PIECES = st.sampled_from(["", "-", "-o", "-oProxyCommand=touch${IFS}/tmp/x", "root", "u.s-er",
                          "@", ":", "::", "::1", "[", "]", "[::1]", "[fe80::1", "10.0.0.1",
                          "host", "h-1.example", "22", "0", "99999", "abc", "65535", "/", "//",
                          "/var/run/docker.sock", " ", "\t", "\x1b", "\r", "%2d", "?", "#",
                          "é", "\\", "-l", "--", "a b"])


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(scheme=st.sampled_from(["ssh://", "tcp://", "unix://", "npipe://", "SSH://", "http://",
                               "ssh:/", ""]),
       parts=st.lists(PIECES, max_size=6))
def test_engine_url_fuzz_structured(scheme, parts):
    u = _accepts(scheme + "".join(parts))
    if u is not None:
        _check_accepted(u)


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(max_size=60))
def test_engine_url_fuzz_any_text(text):
    for url in (text, "ssh://" + text, "tcp://" + text):
        u = _accepts(url)
        if u is not None:
            _check_accepted(u)


@pytest.mark.parametrize("url,part", [
    ("ssh://-oProxyCommand=touch${IFS}/tmp/x@127.0.0.1:22", "the user"),
    ("ssh://root@-oProxyCommand=x", "the host"),
    ("tcp://h:99999", "the port"), ("tcp://h:abc", "the port"), ("ssh://[::1", "the host"),
    ("ssh://h:0", "the port"), ("ssh://h: 22", "whitespace"), ("ssh://h\x1b]0;x\x07", "control"),
    ("unix://var/run/docker.sock", "socket path"), ("http://h", "the scheme"),
    ("tcp://u@h:2375", "the user"), ("ssh://::1", "brackets"),
])
def test_engine_url_refused_names_the_part(url, part):
    with pytest.raises(UsageError) as ei:
        parse(url)
    assert part in ei.value.message and ei.value.exit_code == 2
    assert "\x1b" not in ei.value.message and "\x07" not in ei.value.message


@pytest.mark.parametrize("url,argv", [
    ("ssh://root@10.1.15.233", ["ssh", "-l", "root", "--", "10.1.15.233"]),
    ("ssh://u@[::1]:2222", ["ssh", "-l", "u", "-p", "2222", "--", "::1"]),
    ("ssh://h", ["ssh", "--", "h"]),
])
def test_engine_url_ssh_argv(url, argv):
    assert parse(url).ssh_argv() == argv
    assert str(parse(url)) == url


def test_sdk_ssh_socket_parses_ipv6_and_puts_host_after_dashdash():
    """docker-py's own SSHSocket splits 'u@[::1]:22' on ':' and crashes; ours parses it."""
    from containerctl.engine import _bound_ssh_client
    _bound_ssh_client()
    import docker.transport.sshconn as sshconn
    s = sshconn.SSHSocket("u@[::1]:2222")
    try:
        assert (s.user, s.host, s.port) == ("u", "::1", "2222")
    finally:
        s.close()
    with pytest.raises(UsageError):
        sshconn.SSHSocket("-oProxyCommand=x@h")


def test_docker_host_env_is_parsed_strictly():
    r = cli("ps", env={"DOCKER_HOST": "tcp://127.0.0.1:99999"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "the port '99999'" in r.stderr and "fix:" in r.stderr


def test_mesh_and_preflight_put_the_host_after_dashdash():
    from containerctl.cluster import mesh
    assert 'ConnectTimeout=5 -- "$t" true' in mesh.VERIFY_SCRIPT


@pytest.mark.parametrize("docker", [
    "ssh://-oProxyCommand=touch${IFS}{marker}@127.0.0.1:22",
    "ssh://root@-oProxyCommand=touch${IFS}{marker}",
    "ssh://-oProxyCommand=touch$IFS{marker}@127.0.0.1",
])
def test_proxycommand_in_inventory_runs_nothing(tmp_path, docker):
    """The issue's case end to end: `cluster ps` on an inventory whose engine URL carries an ssh
    option. Before, the ssh preflight ran the ProxyCommand on this machine."""
    marker = tmp_path / f"pwned-{uuid.uuid4().hex[:6]}"
    inv = tmp_path / "h.yaml"
    inv.write_text("cluster: {name: px}\nhosts:\n  - name: a\n    profile: cpu-selftest\n"
                   f"    docker: '{docker.replace('{marker}', str(marker))}'\n")
    r = cli("cluster", "ps", "--hosts", str(inv), timeout=60)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "h.yaml" in r.stderr and "fix:" in r.stderr
    assert "starts with '-'" in r.stderr or "not a host name" in r.stderr or "path" in r.stderr
    assert not list(tmp_path.glob("pwned-*")), "the ProxyCommand ran"


def test_preflight_argv_real_ssh_takes_dash_host_as_a_host(tmp_path):
    """The second lock: even a host that starts with '-' (were it ever to get past the parser)
    reaches the real ssh client after `--`, as a host name, so no option it spells is obeyed."""
    marker = tmp_path / "m"
    u = EngineURL("ssh", host=f"-oProxyCommand=touch {marker}", port=1)
    argv = u.ssh_argv("-o", "ConnectTimeout=2", "-o", "BatchMode=yes") + ["true"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and not marker.exists()
