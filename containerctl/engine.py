"""The only module that talks to Docker: through the docker SDK's low-level APIClient, except
for the calls a stage makes (inspect, list, exec, copy in) on a local unix socket, which go
through _LocalClient (the standard library: the SDK's import alone costs more than a trivial
stage; CONTAINERCTL_ENGINE_SDK=1 sends those through the SDK too).

Everything above speaks in containerctl's own types: plain dicts for inspect data, `ContainerSpec`
from runspec.py for creation, and ContainerctlError subclasses for every failure, each with a
one-line cause and a fix. `docker` is imported lazily so that `containerctl --help` stays fast.
"""
from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import EngineError, ImageError, NotFound

from .labels import MANAGED, PROBE, PREFIX as LABEL_PREFIX  # noqa: E402,F401  (the one place names live)

START_HINT = (
    "start the engine (`dockerd &`, or `systemctl start docker`), or point DOCKER_HOST at one "
    "(unix:///var/run/docker.sock, ssh://user@host)"
)


@dataclass
class ContainerInfo:
    id: str
    name: str
    status: str  # created, running, exited, ...
    image: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.status == "running"


def _docker(ssh: bool = False):
    """The docker SDK, imported on first use. Its ssh transport imports paramiko (~0.2 s, more
    than the rest of a no-op command) even though only ssh:// endpoints use it, so it is kept
    out until an ssh:// engine is actually made."""
    import sys
    if "docker" not in sys.modules and not ssh and "paramiko" not in sys.modules:
        sys.modules["paramiko"] = None      # the SDK treats this as "paramiko not installed"
        try:
            import docker as _sdk  # noqa: F401  (imported here with paramiko held back)
        finally:
            del sys.modules["paramiko"]
    import docker
    if ssh:
        import docker.api.client as client
        if not hasattr(client, "SSHHTTPAdapter"):
            import importlib
            try:
                sshconn = importlib.import_module("docker.transport.sshconn")
                client.SSHHTTPAdapter = sshconn.SSHHTTPAdapter
            except ImportError:
                pass   # paramiko really is missing: APIClient says so, _unreachable explains
        _bound_ssh_client()
    return docker


SSH_CONNECT_TIMEOUT = 10   # seconds: TCP connect plus the SSH handshake
_SSH_STDERR: list = []     # the ssh clients' stderr files (their last line explains a failure)


def _ssh_said() -> str:
    for f in reversed(_SSH_STDERR):
        try:
            f.seek(0)
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines()
                     if ln.strip()]
        except (OSError, ValueError):
            continue
        if lines:
            return lines[-1]
    return ""


def _bound_ssh_client() -> None:
    """The SDK runs `ssh HOST docker system dial-stdio` without any timeout, so a host that
    accepts TCP but never speaks SSH hangs every call forever. Give its ssh client a
    ConnectTimeout (which OpenSSH applies to the banner exchange and key exchange too) and
    BatchMode (no password prompt nobody can see)."""
    try:
        import docker.transport.sshconn as sshconn
    except ImportError:
        return
    if getattr(sshconn.SSHSocket, "_containerctl_bounded", False):
        return
    base = sshconn.SSHSocket

    class BoundedSSHSocket(base):
        _containerctl_bounded = True

        def __init__(self, host):
            # the SDK splits "user@host:port" on ':' (an IPv6 host breaks it): parse it strictly
            from .engineurl import parse
            u = parse(f"ssh://{host}")
            base.__init__(self, "localhost")
            self.host, self.user = u.host, u.user
            self.port = str(u.port) if u.port else None

        def connect(self, **kwargs):
            # the SDK's connect, with the options above and ssh's own messages kept (they
            # become the error's cause instead of stray lines on the terminal)
            import signal
            import subprocess
            import tempfile
            args = ["ssh", "-o", f"ConnectTimeout={SSH_CONNECT_TIMEOUT}", "-o", "BatchMode=yes"]
            if self.user:
                args += ["-l", self.user]
            if self.port:
                args += ["-p", self.port]
            args += ["--", self.host, "docker system dial-stdio"]
            env = dict(os.environ)
            env.pop("LD_LIBRARY_PATH", None)
            env.pop("SSL_CERT_FILE", None)
            err = tempfile.TemporaryFile()
            _SSH_STDERR.append(err)
            self.proc = subprocess.Popen(
                args, env=env, stdout=subprocess.PIPE, stdin=subprocess.PIPE, stderr=err,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    sshconn.SSHSocket = BoundedSSHSocket


# Linux RLIMIT_* numbers, as runc reports them ("error setting rlimit type 7")
_RLIMITS = ["cpu", "fsize", "data", "stack", "core", "rss", "nproc", "nofile", "memlock", "as",
            "locks", "sigpending", "msgqueue", "nice", "rtprio", "rttime"]


def refused_ulimit(msg: str) -> str | None:
    """The ulimit an engine refusal is about (runc names it by number), or None."""
    import re
    m = re.search(r"rlimit (?:type )?(\d+)", msg, re.I)
    if m and int(m.group(1)) < len(_RLIMITS):
        return _RLIMITS[int(m.group(1))]
    m = re.search(r"(?:rlimit|ulimit)[^a-z]*\b(" + "|".join(_RLIMITS) + r")\b", msg, re.I)
    if m:
        return m.group(1).lower()
    m = re.search(r"RLIMIT_([A-Z]+)", msg)
    if m and m.group(1).lower() in _RLIMITS:
        return m.group(1).lower()
    return None


def special_files(root: Path, exclude: Callable[[str], bool] | None = None,
                  arcname: str | None = None) -> list[Path]:
    """Files under `root` that are neither regular files, directories nor symlinks (FIFOs,
    sockets, device nodes): reading one blocks or makes no sense in a copy."""
    import stat
    out: list[Path] = []
    base = arcname or root.name
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        keep = []
        for d in dirnames:
            name = base if rel_dir == "." else f"{base}/{rel_dir}"
            if exclude and exclude(f"{name}/{d}"):
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            p = Path(dirpath) / f
            name = (f"{base}/{f}" if rel_dir == "." else f"{base}/{rel_dir}/{f}")
            if exclude and exclude(name):
                continue
            try:
                mode = os.lstat(p).st_mode
            except OSError:
                continue
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                out.append(p)
    return out


def refuse_special_files(root: Path, exclude: Callable[[str], bool] | None = None,
                         arcname: str | None = None) -> None:
    """UsageError (exit 2) naming the first FIFO / socket / device file under `root`: call it
    before reading or copying a tree (a FIFO blocks the reader forever)."""
    import stat
    bad = special_files(root, exclude, arcname)
    if bad:
        mode = os.lstat(bad[0]).st_mode
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if
                stat.S_ISSOCK(mode) else "a device file")
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        from .errors import UsageError
        raise UsageError(f"{bad[0]} is {kind}{more}: a source tree to copy must hold only "
                         "regular files, directories and symlinks",
                         f"remove it (rm {bad[0]}) or copy the tree without it")


def explain_refusal(msg: str) -> tuple[str, str]:
    """Turn Docker's raw refusal text into (cause, fix)."""
    m = msg.lower()
    if "unable to apply caps" in m:
        return ("the engine refused the capabilities asked for (privileged or cap_add ALL): "
                "this host withholds a capability from containers",
                "set `--set container.privileged=false` and/or drop `ALL` from container.cap_add "
                "(list devices explicitly instead)")
    if "rlimit" in m or "ulimit" in m:
        name = refused_ulimit(msg)
        if name is None:
            return ("the engine refused a ulimit above dockerd's hard limit for it",
                    "raise that limit for dockerd (systemd Limit<NAME>=, or `ulimit` before "
                    "starting it) or lower the value in container.ulimits")
        unit = "LimitMEMLOCK" if name == "memlock" else f"Limit{name.upper()}"
        example = "8M" if name == "memlock" else "<dockerd's hard limit>"
        return (f"the engine refused ulimit {name}: it is above dockerd's hard {name} limit",
                f"raise dockerd's {unit} (systemd) or lower it: "
                f"`--set container.ulimits.{name}={example}`")
    if "could not select device driver" in m and "gpu" in m:
        return ("`--gpus` needs the NVIDIA container runtime, which this engine lacks",
                "use device nodes instead (profile nvidia-h200 does), or install "
                "nvidia-container-toolkit")
    if "no such file or directory" in m and "/dev/" in m:
        return ("a device node the profile maps does not exist on the host: " + msg.strip()[:200],
                "check the profile's container.devices against `ls /dev` on the host")
    if "bind source path does not exist" in m or "invalid mount config" in m:
        return ("a volume source does not exist on the host: " + msg.strip()[:200],
                "create the directory or fix container.volumes in the profile / site overlay")
    return (msg.strip().splitlines()[0][:300] if msg.strip() else "the engine refused",
            "see `containerctl doctor` for what this host allows")


def named_volumes(host_config: dict) -> list[str]:
    """The named volumes (not host paths) a host config's binds mount."""
    out = []
    for b in host_config.get("binds") or []:
        src = b.split(":")[0]
        if src and not src.startswith("/") and src not in out:
            out.append(src)
    return out


class _EngineAnswer(Exception):
    """An HTTP error status from the engine (the local client's counterpart of the SDK's
    APIError): `message` is the engine's own text, as the SDK's `explanation` is."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class _LocalClient:
    """The engine calls a stage needs (inspect, list, exec with its output streamed, copy in),
    over a local unix socket with the standard library only. Importing the docker SDK (requests,
    urllib3, …) and its `version="auto"` round trip cost more than a trivial stage's whole
    exec; everything else still goes through the SDK's APIClient (Engine.api).

    Paths carry no API version: the engine then speaks its own newest version, which is what the
    SDK's version="auto" settles on. One connection per request (a unix socket connects in
    microseconds), so the stage's exec thread and a kill from the main thread never share one."""

    def __init__(self, path: str, timeout: int):
        self.path = path
        self.timeout = timeout

    def _open(self, method: str, url: str, body: bytes | None = None,
              content_type: str = "application/json"):
        import http.client
        import socket
        path, timeout = self.path, self.timeout

        class _Conn(http.client.HTTPConnection):
            def connect(conn):
                conn.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                conn.sock.settimeout(timeout)
                conn.sock.connect(path)
                conn.unix_sock = conn.sock   # kept: a response read to the end drops conn.sock
        conn = _Conn("localhost")
        try:
            headers = {"Content-Type": content_type} if body is not None else {}
            conn.request(method, url, body=body, headers=headers)
            resp = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        if resp.status >= 400:
            try:
                raw = resp.read()
            finally:
                conn.close()
            raise _EngineAnswer(resp.status, _engine_message(raw, resp.reason))
        return conn, resp

    def call(self, method: str, url: str, payload=None, raw: bytes | None = None,
             content_type: str = "application/json"):
        import json
        body = raw if raw is not None else \
            (json.dumps(payload).encode() if payload is not None else None)
        conn, resp = self._open(method, url, body, content_type)
        try:
            data = resp.read()
        finally:
            conn.close()
        return json.loads(data) if data.strip() and \
            "json" in (resp.getheader("Content-Type") or "") else None

    # the APIClient methods of the same names, with the same arguments and results
    def inspect_container(self, name: str) -> dict:
        return self.call("GET", f"/containers/{_q(name)}/json")

    def containers(self, all: bool = False, filters: dict | None = None) -> list:
        import json
        from urllib.parse import urlencode
        params = {"limit": -1, "all": 1 if all else 0, "size": 0, "trunc_cmd": 0}
        if filters:     # docker.utils.convert_filters
            conv = {}
            for k, v in filters.items():
                if isinstance(v, bool):
                    v = "true" if v else "false"
                conv[k] = [x if isinstance(x, str) else str(x)
                           for x in (v if isinstance(v, list) else [v])]
            params["filters"] = json.dumps(conv)
        return self.call("GET", "/containers/json?" + urlencode(params))

    def exec_create(self, container: str, cmd, environment=None, workdir=None, tty=False,
                    user="") -> dict:
        import shlex
        if isinstance(cmd, str):
            cmd = shlex.split(cmd)
        if isinstance(environment, dict):
            environment = [k if v is None else
                           f"{k}={v.decode('utf-8') if isinstance(v, bytes) else v}"
                           for k, v in environment.items()]
        data = {"Container": container, "User": user, "Privileged": False, "Tty": tty,
                "AttachStdin": False, "AttachStdout": True, "AttachStderr": True, "Cmd": cmd,
                "Env": environment}
        if workdir is not None:
            data["WorkingDir"] = workdir
        return self.call("POST", f"/containers/{_q(container)}/exec", data)

    def exec_start(self, exec_id: str, tty: bool = False) -> Iterator[bytes]:
        """The exec's output as it comes (stdout and stderr merged in order)."""
        import json
        conn, resp = self._open("POST", f"/exec/{_q(exec_id)}/start",
                                json.dumps({"Detach": False, "Tty": tty}).encode())
        conn.unix_sock.settimeout(None)   # a stage may be silent for longer than any timeout
        return _exec_stream(conn, resp, tty)

    def exec_inspect(self, exec_id: str) -> dict:
        return self.call("GET", f"/exec/{_q(exec_id)}/json")

    def get_archive_bytes(self, container: str, path: str) -> bytes:
        """The tar stream `GET /containers/{id}/archive` answers for `path` (404 when absent)."""
        from urllib.parse import urlencode
        conn, resp = self._open("GET", f"/containers/{_q(container)}/archive?" +
                                urlencode({"path": path}))
        try:
            return resp.read()
        finally:
            conn.close()

    def put_archive(self, container: str, path: str, data: bytes) -> bool:
        from urllib.parse import urlencode
        self.call("PUT", f"/containers/{_q(container)}/archive?" + urlencode({"path": path}),
                  raw=data, content_type="application/x-tar")
        return True


def _first_tar_file(raw: bytes) -> bytes | None:
    """The data of the first regular file in a tar stream (pax/GNU long-name headers skipped);
    without importing tarfile."""
    off = 0
    while off + 512 <= len(raw):
        head = raw[off:off + 512]
        if not head.strip(b"\0"):
            return None
        size = int(head[124:136].strip(b"\0 ") or b"0", 8)
        kind = head[156:157]
        off += 512
        if kind in (b"0", b"\0"):
            return raw[off:off + size]
        off += (size + 511) // 512 * 512
    return None


def url_part(part: str) -> str:
    """One path segment of an engine API URL (a container name, an exec id), quoted."""
    from urllib.parse import quote
    return quote(str(part), safe="")


_q = url_part   # the short name engine.py's own URLs use


def _engine_message(raw: bytes, reason: str) -> str:
    import json
    try:
        msg = json.loads(raw).get("message")
    except (ValueError, AttributeError):
        msg = None
    return msg or raw.decode("utf-8", "replace").strip() or reason


def _exec_stream(conn, resp, tty: bool) -> Iterator[bytes]:
    """Docker's exec stream: raw bytes with a tty, else frames of an 8-byte header (stream,
    0, 0, 0, big-endian length) and the payload, yielded as it arrives."""
    import struct
    fp = resp.fp      # the engine hijacked the connection: the body is the stream, to EOF
    try:
        if tty:
            while True:
                chunk = fp.read1(65536)
                if not chunk:
                    return
                yield chunk
        while True:
            head = fp.read(8)
            if len(head) < 8:
                return
            n = struct.unpack(">BxxxL", head)[1]
            while n > 0:
                chunk = fp.read1(min(n, 65536))
                if not chunk:
                    return
                n -= len(chunk)
                yield chunk
    finally:
        resp.close()
        conn.close()


class Engine:
    def __init__(self, base_url: str | None = None, timeout: int = 600):
        from .engineurl import check    # one strict parser: a bad URL is exit 2, never ssh -o…
        self.base_url = check(base_url or os.environ.get("DOCKER_HOST")
                              or "unix:///var/run/docker.sock")
        self._timeout = timeout
        self._api = None
        # a local socket is spoken to with the standard library for the calls a stage makes
        self._local = _LocalClient(self.base_url[len("unix://"):], timeout) \
            if self.base_url.startswith("unix://") and \
            not os.environ.get("CONTAINERCTL_ENGINE_SDK") else None

    def _lcall(self, fn: Callable, *args, what: str = "", **kwargs):
        """_call for the local client: the same errors, worded the same way (_engine_error)."""
        import http.client
        try:
            return fn(*args, **kwargs)
        except (_EngineAnswer, OSError, http.client.HTTPException) as exc:
            raise self._engine_error(exc, what) from None

    def _calls(self):
        """(client, call): the local client where there is one, else the SDK's."""
        if self._local is not None:
            return self._local, self._lcall
        return self.api, self._call

    # -- connection ---------------------------------------------------------------------
    @property
    def api(self):
        if self._api is None:
            docker = _docker(ssh=self.base_url.startswith("ssh://"))
            try:
                use_ssh = self.base_url.startswith("ssh://")
                api = docker.APIClient(base_url=self.base_url, timeout=self._timeout,
                                       version="auto", use_ssh_client=use_ssh)
            except docker.errors.DockerException as exc:
                raise self._unreachable(exc) from None
            self._api = api
        return self._api

    def _unreachable(self, exc: Exception) -> EngineError:
        text = str(exc)
        if "paramiko" in text:
            return EngineError(f"ssh:// Docker endpoints ({self.base_url}) need the paramiko "
                               "package, which is not installed",
                               "pip install 'docker[ssh]' (containerctl's own install has it)")
        if "Permission denied" in text or "PermissionError" in text:
            return EngineError(f"permission denied on the Docker engine at {self.base_url}",
                               "run as root or add your user to the `docker` group")
        if self.base_url.startswith("ssh://"):
            said = _ssh_said()
            return EngineError(f"cannot reach a Docker engine at {self.base_url}"
                               + (f": ssh says: {said}" if said else ""),
                               "check that the host runs sshd and Docker and that "
                               f"`docker -H {self.base_url} version` works from here "
                               f"(containerctl gives up after {SSH_CONNECT_TIMEOUT} s)")
        return EngineError(f"cannot reach a Docker engine at {self.base_url}", START_HINT)

    def _call(self, fn: Callable, *args, what: str = "", **kwargs):
        docker = _docker()
        import requests

        try:
            return fn(*args, **kwargs)
        except (docker.errors.DockerException, requests.exceptions.ConnectionError,
                ConnectionError, FileNotFoundError) as exc:
            raise self._engine_error(exc, what) from None

    def _engine_error(self, exc: Exception, what: str) -> EngineError | NotFound:
        """The one mapping of a failed engine call, for both transports (_call: the docker SDK,
        _lcall: the local client): a refusal the engine answered (the SDK's NotFound/APIError,
        the local client's _EngineAnswer) is NotFound for a 404, else EngineError with
        explain_refusal's cause and fix; anything else each caller catches means the engine
        could not be reached (_unreachable)."""
        import sys
        errors = sys.modules.get("docker.errors")   # loaded when the SDK made the call
        if isinstance(exc, _EngineAnswer):
            missing, message = exc.status == 404, exc.message
        elif errors is not None and isinstance(exc, errors.NotFound):
            missing, message = True, exc.explanation or exc
        elif errors is not None and isinstance(exc, errors.APIError):
            missing, message = False, str(exc.explanation or exc)
        else:
            return self._unreachable(exc)
        if missing:
            return NotFound(f"{what or 'object'} not found: {message}",
                            "check the name with `containerctl ps`")
        cause, fix = explain_refusal(message)
        return EngineError(f"{what}: {cause}" if what else cause, fix)

    def ping(self) -> bool:
        try:
            return bool(self._call(self.api.ping))
        except EngineError:
            return False

    def info(self) -> dict:
        return self._call(self.api.info, what="docker info")

    def version(self) -> dict:
        return self._call(self.api.version, what="docker version")

    # -- containers ---------------------------------------------------------------------
    def find(self, name: str) -> ContainerInfo | None:
        client, call = self._calls()
        try:
            d = call(client.inspect_container, name, what=f"container {name}")
        except NotFound:
            return None
        return ContainerInfo(id=d["Id"], name=d["Name"].lstrip("/"), status=d["State"]["Status"],
                             image=d["Config"]["Image"], labels=d["Config"].get("Labels") or {})

    def quick_state(self, name: str) -> tuple[str, dict] | None:
        """(status, labels) of a container over the local socket with the standard library
        only — the no-op `up` path, which must not pay for importing the SDK. None when the
        container does not exist; raises LookupError when this engine is not a local socket."""
        if not self.base_url.startswith("unix://"):
            raise LookupError("not a local socket")
        import http.client
        import json
        import socket
        from urllib.parse import quote

        class _Conn(http.client.HTTPConnection):
            def connect(conn):
                conn.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                conn.sock.settimeout(10)
                conn.sock.connect(self.base_url[len("unix://"):])
        c = _Conn("localhost")
        try:
            c.request("GET", f"/containers/{quote(name)}/json")
            r = c.getresponse()
            body = r.read()
        except OSError as exc:
            raise self._unreachable(exc) from None
        finally:
            c.close()
        if r.status == 404:
            return None
        if r.status != 200:
            raise LookupError(f"engine answered {r.status}")
        d = json.loads(body)
        return d["State"]["Status"], d["Config"].get("Labels") or {}

    def inspect(self, name: str) -> dict:
        client, call = self._calls()
        return call(client.inspect_container, name, what=f"container {name}")

    def list(self, labels: dict[str, str] | None = None, all: bool = True) -> list[ContainerInfo]:
        filt = [MANAGED + "=1"] + [f"{k}={v}" for k, v in (labels or {}).items()]
        client, call = self._calls()
        rows = call(client.containers, all=all, filters={"label": filt}, what="list")
        out = []
        for r in rows:
            out.append(ContainerInfo(id=r["Id"], name=r["Names"][0].lstrip("/"), status=r["State"],
                                     image=r["Image"], labels=r.get("Labels") or {}))
        return sorted(out, key=lambda c: c.name)

    def create_and_start(self, spec) -> str:
        """Create and start a container from a runspec.ContainerSpec, labelled with a creation
        id of its own (a uuid per creation). The named volumes it mounts that do not exist yet
        (the workspace volume, `name:/path` volumes) are made first, explicitly, with
        containerctl's labels and the same creation id (the engine answers a create of an
        existing name with the existing volume: its creation id then says it is not ours).
        If the engine refuses the create or the start (or Ctrl-C comes in between), what THIS
        call made is removed again — the container by its id, the volumes whose creation id is
        this call's — never "whatever has that name now": another containerctl (another home)
        may have made it meanwhile. Volumes that existed before are never touched."""
        import uuid
        from . import labels as L
        api = self.api
        mine = spec.labels.setdefault(L.CREATION_ID, uuid.uuid4().hex)
        hc = self._call(api.create_host_config, **spec.host_config, what="host config")
        kwargs = dict(image=spec.image, command=spec.command, name=spec.name, labels=spec.labels,
                      environment=spec.env, working_dir=spec.workdir or None, host_config=hc,
                      detach=True, tty=True, stdin_open=True, hostname=spec.hostname or None)
        new_volumes: list[str] = []
        cid = None
        try:
            for v in named_volumes(spec.host_config):
                if self.volume_labels(v) is None:
                    self._call(api.create_volume, v, labels={
                        L.MANAGED: "1", L.CREATION_ID: mine, L.VOLUME_OF: spec.name},
                        what=f"create volume {v}")
                    if (self.volume_labels(v) or {}).get(L.CREATION_ID) == mine:
                        new_volumes.append(v)
            created = self._call(api.create_container, what=f"create {spec.name}", **kwargs)
            cid = created["Id"]
            self._call(api.start, cid, what=f"start {spec.name}")
        except BaseException as exc:
            # the name was taken by another creator of the same name (another home): it mounts
            # the same volumes, made by us or not, so none of them is ours to remove
            conflict = isinstance(exc, EngineError) and "already in use" in exc.message
            # a failed cleanup (engine gone) must not hide why the create/start failed
            try:
                if cid is None:   # interrupted before the engine answered: is it there?
                    c = self.find(spec.name)
                    if c is not None and c.labels.get(L.CREATION_ID) == mine:
                        cid = c.id
                if cid is not None:
                    self.remove(cid, force=True)
                for v in ([] if conflict else new_volumes):
                    self.remove_volume(v)
            except BaseException:
                pass
            raise
        return cid

    def start(self, name: str) -> None:
        self._call(self.api.start, name, what=f"start {name}")

    def stop(self, name: str, timeout: int = 10) -> None:
        self._call(self.api.stop, name, timeout=timeout, what=f"stop {name}")

    def restart(self, name: str, timeout: int = 10) -> None:
        self._call(self.api.restart, name, timeout=timeout, what=f"restart {name}")

    def remove(self, name: str, force: bool = True, volumes: bool = False) -> None:
        try:
            self.api.remove_container(name, force=force, v=volumes)
        except _docker().errors.NotFound:
            pass
        except _docker().errors.APIError as exc:
            if "removal of container" in str(exc) and "already in progress" in str(exc):
                return
            raise EngineError(f"could not remove {name}: {exc.explanation}",
                              "retry, or `docker rm -f` it") from None

    def logs(self, name: str, follow: bool = False, tail: str | int = "all") -> Iterator[bytes]:
        if follow:
            return self._call(self.api.logs, name, stream=True, follow=True, tail=tail,
                              what=f"logs {name}")
        return iter([self._call(self.api.logs, name, tail=tail, what=f"logs {name}")])

    # -- volumes ------------------------------------------------------------------------
    def volume_labels(self, name: str) -> dict[str, str] | None:
        """The labels of volume `name` ({} when it has none), None when it does not exist."""
        try:
            return self.api.inspect_volume(name).get("Labels") or {}
        except _docker().errors.NotFound:
            return None

    def read_file(self, container: str, path: str) -> bytes | None:
        """The content of one regular file in a container (the archive API: one round trip,
        no exec), or None when it does not exist."""
        if self._local is not None:
            try:
                raw = self._local.get_archive_bytes(container, path)
            except _EngineAnswer as exc:
                if exc.status == 404:
                    return None
                raise EngineError(f"read {path} in {container}: {exc.message}",
                                  "check the container with `containerctl ps`") from None
            except OSError as exc:
                raise self._unreachable(exc) from None
        else:
            try:
                stream, _ = self.api.get_archive(container, path)
            except _docker().errors.NotFound:
                return None
            raw = b"".join(stream)
        return _first_tar_file(raw)

    def volume_exists(self, name: str) -> bool:
        try:
            self.api.inspect_volume(name)
            return True
        except _docker().errors.NotFound:
            return False

    def remove_volume(self, name: str) -> None:
        try:
            self.api.remove_volume(name, force=True)
        except _docker().errors.NotFound:
            pass
        except _docker().errors.APIError as exc:
            raise EngineError(f"could not remove volume {name}: {exc.explanation}",
                              f"retry, or `docker volume rm {name}`") from None

    # -- exec ---------------------------------------------------------------------------
    def exec(self, container: str, cmd: list[str] | str, *, env: dict | None = None,
             workdir: str | None = None, on_output: Callable[[bytes], None] | None = None,
             tty: bool = False, user: str = "") -> int:
        """Run a command in a running container, streaming its output to `on_output`; return
        its exit code. stdout and stderr are merged (as a terminal shows them)."""
        api, call = self._calls()
        ex = call(api.exec_create, container, cmd, environment=env, workdir=workdir,
                  tty=tty, user=user, what=f"exec in {container}")
        if api is self._local:
            stream = call(api.exec_start, ex["Id"], tty=tty, what=f"exec in {container}")
        else:
            stream = call(api.exec_start, ex["Id"], stream=True, tty=tty, demux=False,
                          what=f"exec in {container}")
        for chunk in stream:
            if on_output and chunk:
                on_output(chunk)
        # exec_inspect can briefly report Running after the stream ends
        for _ in range(50):
            st = call(api.exec_inspect, ex["Id"], what="exec inspect")
            if not st.get("Running"):
                return int(st.get("ExitCode") or 0)
            time.sleep(0.05)
        return int(st.get("ExitCode") or 0)

    def exec_capture(self, container: str, cmd: list[str] | str, **kw) -> tuple[int, str]:
        buf = bytearray()
        code = self.exec(container, cmd, on_output=buf.extend, **kw)
        return code, buf.decode("utf-8", "replace")

    def exec_socket(self, container: str, cmd: list[str], tty: bool, env: dict | None = None,
                    workdir: str | None = None):
        """An interactive exec: returns (exec_id, raw socket) for `containerctl shell`."""
        ex = self._call(self.api.exec_create, container, cmd, stdin=True, tty=tty,
                        environment=env, workdir=workdir, what=f"exec in {container}")
        sock = self._call(self.api.exec_start, ex["Id"], tty=tty, socket=True, what="exec")
        return ex["Id"], sock

    def exec_exit_code(self, exec_id: str) -> int:
        return int(self._call(self.api.exec_inspect, exec_id)["ExitCode"] or 0)

    def put_dir(self, container: str, src: Path, dest: str, arcname: str | None = None,
                exclude: Callable[[str], bool] | None = None) -> None:
        """Copy a host directory into the container at dest/arcname (like `docker cp`).
        FIFOs, sockets and device files are refused up front, naming the file."""
        import tarfile
        import tempfile
        refuse_special_files(src, exclude, arcname)
        # the archive spills to a temporary file past 32 MiB and is streamed to the engine:
        # memory stays bounded whatever the tree holds
        with tempfile.SpooledTemporaryFile(max_size=32 << 20, prefix="cctl-put-") as buf:
            with tarfile.open(fileobj=buf, mode="w") as tar:
                tar.add(str(src), arcname=arcname or src.name,
                        filter=(lambda ti: None if exclude and exclude(ti.name) else ti))
            buf.seek(0)
            client, call = self._calls()
            call(client.put_archive, container, dest, buf, what=f"copy into {container}")

    def put_file(self, container: str, dest_dir: str, name: str, data: bytes, mode: int = 0o644):
        self.put_files(container, dest_dir, {name: (data, mode)})

    def put_files(self, container: str, dest_dir: str, files: dict[str, tuple[bytes, int]]):
        """Write several files in one round trip; names may contain subdirectories, which are
        created (dest_dir itself must exist: `/` always does)."""
        import tarfile
        buf = io.BytesIO()
        now = int(time.time())
        with tarfile.open(fileobj=buf, mode="w") as tar:
            dirs: set[str] = set()
            for name in files:
                parts = name.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    d = "/".join(parts[:i])
                    if d and d not in dirs:
                        dirs.add(d)
                        ti = tarfile.TarInfo(d)
                        ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, now
                        tar.addfile(ti)
            for name, (data, mode) in files.items():
                ti = tarfile.TarInfo(name)
                ti.size, ti.mode, ti.mtime = len(data), mode, now
                tar.addfile(ti, io.BytesIO(data))
        client, call = self._calls()
        call(client.put_archive, container, dest_dir, buf.getvalue(),
             what=f"copy into {container}")

    # -- images -------------------------------------------------------------------------
    def image_id(self, ref: str) -> str | None:
        try:
            return self.api.inspect_image(ref)["Id"]
        except _docker().errors.NotFound:
            return None
        except _docker().errors.APIError as exc:
            if exc.status_code == 404:
                return None
            raise

    def image_exists(self, ref: str) -> bool:
        return self.image_id(ref) is not None

    def image_inspect(self, ref: str) -> dict:
        return self._call(self.api.inspect_image, ref, what=f"image {ref}")

    def images(self, label: str | None = None) -> list[dict]:
        filters = {"label": [label]} if label else None
        return self._call(self.api.images, filters=filters, what="images")

    def tag(self, image: str, repo: str, tag: str) -> None:
        self._call(self.api.tag, image, repo, tag, force=True, what="tag")

    def remove_image(self, ref: str, force: bool = False) -> None:
        try:
            self.api.remove_image(ref, force=force)
        except _docker().errors.NotFound:
            pass

    def build_image(self, context_dir: Path, tag: str, *, labels: dict[str, str] | None = None,
                    nocache: bool = False, on_line: Callable[[str], None] | None = None,
                    dockerfile: str = "Dockerfile", network_mode: str | None = None,
                    buildargs: dict | None = None) -> str:
        """Build `context_dir/Dockerfile` and tag it; stream each output line to `on_line`.
        Returns the image id. A failed step raises ImageError naming the step."""
        api = self.api
        image_id = None
        last_step = ""
        tail: list[str] = []
        stream = self._call(api.build, path=str(context_dir), dockerfile=dockerfile, tag=tag,
                            labels=labels or {}, nocache=nocache, rm=True, forcerm=True,
                            decode=True, network_mode=network_mode, buildargs=buildargs or {},
                            what=f"build {tag}")
        try:
            for msg in stream:
                if "stream" in msg:
                    for line in msg["stream"].splitlines():
                        if line.startswith("Step "):
                            last_step = line
                        tail.append(line)
                        del tail[:-20]
                        if on_line:
                            on_line(line)
                if "aux" in msg and isinstance(msg["aux"], dict) and "ID" in msg["aux"]:
                    image_id = msg["aux"]["ID"]
                if "error" in msg:
                    err = msg.get("error", "").strip()
                    raise ImageError(f"image build {tag} failed at {last_step or 'start'}: "
                                     f"{err.splitlines()[-1] if err else 'unknown error'}",
                                     "see the build output above; fix the block's options or "
                                     "retry with --no-cache")
        except _docker().errors.APIError as exc:
            raise ImageError(f"image build {tag} failed: {exc.explanation}", "see the output") from None
        return image_id or self.image_id(tag) or ""

    def import_image(self, tar_path: Path, ref: str, changes: list[str] | None = None) -> str:
        """`docker import` a root filesystem tarball (offline base images)."""
        repo, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "latest")
        self._call(self.api.import_image_from_file, str(tar_path), repository=repo, tag=tag,
                   changes=changes, what=f"import {ref}")
        iid = self.image_id(ref)
        if not iid:
            raise ImageError(f"import of {ref} produced no image", "check the tarball")
        return iid

    # -- probes -------------------------------------------------------------------------
    def probe(self, image: str, host_config: dict[str, Any], command: list[str] | None = None,
              ) -> tuple[bool, str]:
        """Try to start a throwaway container with these host-config options. Returns (ok, raw
        engine message). Leaves nothing behind."""
        api = self.api
        try:
            hc = api.create_host_config(**host_config)
            c = api.create_container(image=image, command=command or ["true"], host_config=hc,
                                     labels={PROBE: "1"})
        except _docker().errors.APIError as exc:
            return False, str(exc.explanation or exc)
        except _docker().errors.DockerException as exc:
            return False, str(exc)
        try:
            api.start(c["Id"])
            api.wait(c["Id"], timeout=30)
            return True, ""
        except _docker().errors.APIError as exc:
            return False, str(exc.explanation or exc)
        finally:
            try:
                api.remove_container(c["Id"], force=True)
            except Exception:
                pass


_ENGINES: dict[str, Engine] = {}


def get_engine(base_url: str | None = None) -> Engine:
    key = base_url or os.environ.get("DOCKER_HOST") or ""
    if key not in _ENGINES:
        _ENGINES[key] = Engine(base_url)
    return _ENGINES[key]


def host_is_local(engine: Engine) -> bool:
    return engine.base_url.startswith("unix://") or engine.base_url.startswith("npipe://")
