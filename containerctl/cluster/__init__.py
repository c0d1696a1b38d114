"""Multi-host (heterogeneous) runs, runbook §4, from an inventory (hosts.py): one container per
host through that host's own Docker engine (a local socket or ssh://, which the Docker SDK speaks),
one ssh keypair per cluster, sshd on the mesh port in every container, passwordless ssh verified
both ways, the same MPICH at the same path everywhere, FlagCX and its perf tests built against it,
and MPICH's own launcher (Hydra, `mpirun -f hostfile` with per-host `-env` in `:`-separated MPMD
segments) started on the first host. Results go to the same store as single-host runs.

Nothing here talks to Docker except through engine.Engine; nothing launches ranks except mpirun.
"""
from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .. import __version__, paths
from ..engine import MANAGED, ContainerInfo, Engine
from ..errors import ContainerctlError, HostError, NotFound, StageError, UsageError
from .inventory import (HostEntry, Inventory, known_hosts, mpich_hostfile, single_device_warnings,
                    ssh_client_config)
from ..profiles import Profile, load_profile
from ..runspec import LABEL

CLUSTER_LABEL = LABEL + "cluster"
HOST_LABEL = LABEL + "cluster-host"
SSH_DIR = "/root/.ssh"
MESH_DIR = "/var/tmp/containerctl"

Say = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


@dataclass
class Host:
    """One inventory host, resolved: its profile (with the cluster's overrides), its engine and
    container name; the address and MPICH version once known."""
    entry: HostEntry
    profile: Profile
    engine: Engine
    container: str
    address: Optional[str] = None
    mpich: Optional[str] = None
    env: dict[str, str] = field(default_factory=dict)      # what its ranks get (-env)
    bins: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # coll → (layout, wdir, path)

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def slots(self) -> int:
        return int(self.entry.slots or self.profile.flagcx.nranks)


@dataclass
class HostRow:
    host: str
    container: str
    docker: str
    status: str
    image: str = ""
    address: str = ""
    profile: str = ""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "containerctl"


class Cluster:
    def __init__(self, inv: Inventory, say: Say | None = None, warn: Say | None = None,
                 on_line: Say | None = None):
        self.inv = inv
        self.name = inv.cluster.name
        self.say = say or _quiet
        self.warn = warn or _quiet
        self.on_line = on_line or _quiet
        self._engines: dict[str, Engine] = {}
        self._hosts: list[Host] | None = None

    # -- resolution -------------------------------------------------------------------------
    def engine_for(self, url: str) -> Engine:
        if url not in self._engines:
            self._engines[url] = Engine(url)
        return self._engines[url]

    def host_sets(self, entry: HostEntry) -> list[str]:
        c = self.inv.cluster
        sets = []
        if c.network:
            sets.append(f"container.network_mode={c.network}")
        if c.workspace:
            sets.append(f"container.workspace={c.workspace}")
        sets.append(f"flagcx.mpi_home={c.mpi_home}")
        return sets + list(entry.set)

    @property
    def hosts(self) -> list[Host]:
        if self._hosts is None:
            out = []
            for e in self.inv.hosts:
                try:
                    prof = load_profile(e.profile, self.host_sets(e))
                except ContainerctlError as exc:
                    raise type(exc)(f"host {e.name} ({self.inv.source_file}): {exc.message}",
                                    exc.hint) from None
                out.append(Host(e, prof, self.engine_for(e.docker),
                                self.inv.container_name(e), address=e.address))
            self._hosts = out
        return self._hosts

    def labels(self, h: Host) -> dict[str, str]:
        return {CLUSTER_LABEL: self.name, HOST_LABEL: h.name}

    def warnings(self) -> list[str]:
        return single_device_warnings({h.name: h.slots for h in self.hosts})

    # -- keys -------------------------------------------------------------------------------
    def key_dir(self) -> Path:
        return paths.home() / "clusters" / self.name

    def keypair(self) -> tuple[Path, Path]:
        """The cluster's ed25519 keypair (made once; dir 0700, both files 0600). The private key
        goes into the containers through the engine's archive API and nowhere else."""
        d = self.key_dir()
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        os.chmod(d.parent, 0o700)
        key, pub = d / "id_ed25519", d / "id_ed25519.pub"
        if not (key.is_file() and pub.is_file()):
            for f in (key, pub):
                f.unlink(missing_ok=True)
            exe = shutil.which("ssh-keygen")
            if not exe:
                raise HostError("ssh-keygen is not installed here (it makes the cluster's key)",
                                "install openssh-client (apt-get install openssh-client)")
            old = os.umask(0o077)
            try:
                r = subprocess.run([exe, "-q", "-t", "ed25519", "-N", "", "-C",
                                    f"containerctl-cluster-{self.name}", "-f", str(key)],
                                   capture_output=True, text=True, timeout=60)
            finally:
                os.umask(old)
            if r.returncode != 0:
                raise HostError(f"ssh-keygen failed: {(r.stderr or r.stdout).strip()[:200]}",
                                f"check that {d} is writable")
        os.chmod(key, 0o600)
        os.chmod(pub, 0o600)
        return key, pub

    # -- up / down / ps ---------------------------------------------------------------------
    def up(self, force_recreate: bool = False) -> list[tuple[str, str, str]]:
        """Each host's container with its own profile's flags. Returns (host, container, action)."""
        for w in self.warnings():
            self.warn(w)
        done = []
        for h in self.hosts:
            action = self._up_host(h, force_recreate)
            done.append((h.name, h.container, action))
            self.say(f"{h.name}: {h.container} {action} ({h.entry.docker})")
        self.mesh()
        return done

    def _up_host(self, h: Host, force_recreate: bool) -> str:
        """lifecycle.up's convergence on the host's own engine, with the cluster's labels."""
        from .. import lifecycle
        res = lifecycle.up(h.engine, h.profile, h.container, force_recreate,
                           on_line=self.on_line, extra_labels=self.labels(h))
        return "up to date" if res.action == "noop" else res.action

    def down(self, volumes: bool = False) -> list[str]:
        """Remove every host's container (its processes go with it), the workspace volumes with
        --volumes, and the cluster's keys. Unreachable engines are reported, not skipped
        silently."""
        from .. import lifecycle
        removed, problems = [], []
        for h in self.hosts:
            try:
                c = h.engine.find(h.container)
                if c is None:
                    continue
                if MANAGED not in c.labels or c.labels.get(CLUSTER_LABEL) != self.name:
                    problems.append(f"{h.container} on {h.entry.docker} is not this cluster's")
                    continue
                with lifecycle.name_lock(h.container):
                    vol = c.labels.get(LABEL + "workspace-volume")
                    h.engine.remove(h.container, force=True)
                    removed.append(f"{h.name}: {h.container}")
                    if volumes and vol:
                        h.engine.remove_volume(vol)
                        removed.append(f"{h.name}: volume {vol}")
            except ContainerctlError as exc:
                problems.append(f"{h.name}: {exc.message}")
        if not problems:
            shutil.rmtree(self.key_dir(), ignore_errors=True)
        if problems:
            raise HostError("cluster down incomplete: " + "; ".join(problems),
                            "fix the engine connection and run `containerctl cluster down` again")
        return removed

    def ps(self) -> list[HostRow]:
        rows = []
        for h in self.hosts:
            try:
                c = h.engine.find(h.container)
            except ContainerctlError as exc:
                rows.append(HostRow(h.name, h.container, h.entry.docker,
                                    f"unreachable: {exc.message}", profile=h.profile.name))
                continue
            if c is None:
                rows.append(HostRow(h.name, h.container, h.entry.docker, "absent",
                                    profile=h.profile.name))
                continue
            addr = h.entry.address or ""
            if c.running and not addr:
                try:
                    addr = self._discover(h) or ""
                except ContainerctlError:
                    addr = ""
            rows.append(HostRow(h.name, h.container, h.entry.docker, c.status, c.image, addr,
                                c.labels.get(LABEL + "profile", h.profile.name)))
        return rows

    def _require(self, h: Host) -> ContainerInfo:
        c = h.engine.find(h.container)
        if c is None:
            raise NotFound(f"host {h.name}: no container {h.container} on {h.entry.docker}",
                           f"bring the cluster up: containerctl cluster up --hosts "
                           f"{self.inv.source_file}")
        if not c.running:
            raise UsageError(f"host {h.name}: {h.container} is {c.status}",
                             f"containerctl cluster up --hosts {self.inv.source_file}")
        return c

    def _discover(self, h: Host) -> str:
        if h.entry.address:
            return h.entry.address
        info = h.engine.inspect(h.container)
        nets = (info.get("NetworkSettings") or {}).get("Networks") or {}
        want = self.inv.cluster.network
        if want:
            ip = (nets.get(want) or {}).get("IPAddress")
            if not ip:
                raise HostError(f"host {h.name}: {h.container} has no address on network {want}",
                                "check `cluster.network`, or give the host an `address:`")
            return ip
        ips = [(n, v.get("IPAddress")) for n, v in nets.items() if v.get("IPAddress")]
        if len(ips) == 1:
            return ips[0][1]
        raise HostError(f"host {h.name}: cannot tell its address ({h.container} is on "
                        f"{', '.join(nets) or 'no network'})",
                        "give the host an `address:` (with network_mode host: the host's IP), "
                        "or set `cluster.network`")

    # -- ssh mesh ---------------------------------------------------------------------------
    def mesh(self) -> None:
        """sshd on the port in every container, the cluster key and a client config in each,
        then passwordless ssh verified each → each."""
        port = self.inv.cluster.ssh_port
        key, pub = self.keypair()
        priv_bytes, pub_text = key.read_bytes(), pub.read_text().strip()
        host_keys = []
        for h in self.hosts:
            self._require(h)
            h.address = self._discover(h)
            code, out = h.engine.exec_capture(h.container, ["bash", "-c", _SSHD_SCRIPT,
                                                            "sshd", str(port)])
            err = [ln[9:] for ln in out.splitlines() if ln.startswith("CCTL_ERR ")]
            if code != 0:
                raise HostError(f"host {h.name}: could not start sshd on port {port} in "
                                f"{h.container}: {(err or out.strip().splitlines()[-1:] or ['?'])[0]}",
                                "use an image with openssh-server and openssh-client (the image "
                                "block `sshd`), or one where apt-get can install them")
            hk = [ln[13:] for ln in out.splitlines() if ln.startswith("CCTL_HOSTKEY ")]
            if not hk:
                raise HostError(f"host {h.name}: sshd has no ed25519 host key", "check the image")
            host_keys.append((h.address, port, hk[0]))
        addrs = [h.address for h in self.hosts]
        ident = f"{SSH_DIR}/containerctl_{self.name}"
        kh_path = f"{SSH_DIR}/known_hosts_containerctl_{self.name}"
        conf_name = f"containerctl_{self.name}.conf"
        conf = ssh_client_config(addrs, port, ident, kh_path)
        kh = known_hosts(host_keys)
        for h in self.hosts:
            e, c = h.engine, h.container
            e.exec(c, ["bash", "-c", f"mkdir -p {SSH_DIR} && chmod 700 {SSH_DIR}"])
            e.put_file(c, SSH_DIR, f"containerctl_{self.name}", priv_bytes, mode=0o600)
            e.put_file(c, SSH_DIR, f"containerctl_{self.name}.pub", (pub_text + "\n").encode(),
                       mode=0o600)
            e.put_file(c, SSH_DIR, conf_name, conf.encode(), mode=0o600)
            e.put_file(c, SSH_DIR, f"known_hosts_containerctl_{self.name}", kh.encode(),
                       mode=0o600)
            code, out = e.exec_capture(c, ["bash", "-c", _SSH_FILES_SCRIPT, "files", conf_name,
                                           f"containerctl_{self.name}.pub"])
            if code != 0:
                raise HostError(f"host {h.name}: could not write {SSH_DIR} in {c}: "
                                f"{out.strip()[-200:]}", "is /root writable in the container?")
        self.verify()

    def verify(self) -> None:
        """`ssh -o BatchMode=yes <addr> hostname` from every container to every container
        (itself included: Hydra may ssh to its own host). The first failing pair is the error."""
        hosts = self.hosts
        for h in hosts:
            if h.address is None:
                self._require(h)
                h.address = self._discover(h)
        by_addr = {h.address: h for h in hosts}
        for src in hosts:
            code, out = src.engine.exec_capture(src.container, ["bash", "-c", _VERIFY_SCRIPT,
                                                                "verify"] + list(by_addr))
            seen = set()
            for ln in out.splitlines():
                if not ln.startswith("CCTL_SSH "):
                    continue
                _, addr, rc, *msg = ln.split(" ", 3)
                seen.add(addr)
                if rc != "0":
                    dst = by_addr.get(addr)
                    raise HostError(f"passwordless ssh {src.name} → {dst.name if dst else addr} "
                                    f"({addr}:{self.inv.cluster.ssh_port}) failed: "
                                    f"{(msg[0] if msg else '').strip() or 'exit ' + rc}",
                                    "check that the port is open between the hosts (firewall, "
                                    "network_mode) and that sshd runs in the target container "
                                    "(`containerctl cluster up` starts it)")
            missing = [a for a in by_addr if a not in seen]
            if missing or code != 0:
                raise HostError(f"ssh check from {src.name} did not finish (exit {code}): "
                                f"{out.strip()[-200:]}", "see the container's ssh client")
            self.say(f"ssh {src.name} → " + ", ".join(by_addr[a].name for a in by_addr) + ": ok")

    # -- MPICH ------------------------------------------------------------------------------
    def ensure_mpich(self) -> dict[str, str]:
        """The same MPICH at cluster.mpi_home on every host: copied from the PyPI `mpich` wheel
        (mpich_install: wheel) where it is missing or another version, or checked (image).
        Different versions across hosts are an error."""
        c = self.inv.cluster
        found: dict[str, str] = {}
        for h in self.hosts:
            self._require(h)
            ver = self._mpich_version(h)
            if ver != c.mpich_version and c.mpich_install == "wheel":
                self._install_mpich(h)
                ver = self._mpich_version(h)
            if not ver:
                raise HostError(f"host {h.name}: no MPICH at {c.mpi_home} in {h.container}",
                                "set cluster.mpi_home to where the image has MPICH, or "
                                "`mpich_install: wheel`")
            h.mpich = ver
            found[h.name] = ver
        if len(set(found.values())) > 1:
            raise HostError("the hosts run different MPICH versions: " +
                            ", ".join(f"{k} {v}" for k, v in found.items()),
                            "every host needs the same MPICH (runbook §4): set `mpich_install: "
                            "wheel` or fix the images")
        self.say("MPICH " + next(iter(found.values()), "?") + f" at {c.mpi_home} on " +
                 ", ".join(found))
        return found

    def _mpich_version(self, h: Host) -> str:
        home = shlex.quote(self.inv.cluster.mpi_home)
        code, out = h.engine.exec_capture(h.container, ["bash", "-c",
                                          f"[ -x {home}/bin/mpirun ] && [ -f {home}/include/mpi.h ]"
                                          f" && {home}/bin/mpichversion 2>/dev/null"])
        for ln in out.splitlines():
            if ln.startswith("MPICH Version:"):
                return ln.split(":", 1)[1].strip()
        return ""

    def _install_mpich(self, h: Host) -> None:
        c = self.inv.cluster
        code, arch = h.engine.exec_capture(h.container, ["uname", "-m"])
        arch = arch.strip() or "x86_64"
        wheel = self.mpich_wheel(arch)
        home = c.mpi_home.rstrip("/")
        parent, base = home.rsplit("/", 1)
        parent = parent or "/"
        self.say(f"{h.name}: copying MPICH {c.mpich_version} ({wheel.name}) to {home}")
        with tempfile.TemporaryDirectory(prefix="cctl-mpich-") as tmp:
            root = Path(tmp) / base
            extract_wheel_data(wheel, root)
            h.engine.exec(h.container, ["bash", "-c", f"rm -rf {shlex.quote(home)} && "
                                                      f"mkdir -p {shlex.quote(parent)}"])
            h.engine.put_dir(h.container, root, parent, arcname=base)

    def mpich_wheel(self, arch: str) -> Path:
        c = self.inv.cluster
        if c.mpich_wheel:
            p = Path(c.mpich_wheel).expanduser()
            if not p.is_absolute() and self.inv.source_file:
                p = Path(self.inv.source_file).parent / p
            if not p.is_file():
                raise NotFound(f"cluster.mpich_wheel {p} does not exist", "fix the path")
            return p
        d = cache_dir() / "mpich"
        d.mkdir(parents=True, exist_ok=True)
        have = sorted(d.glob(f"mpich-{c.mpich_version}-*{arch}*.whl"))
        if have:
            return have[0]
        self.say(f"downloading the mpich=={c.mpich_version} wheel ({arch}) with pip")
        cmd = [sys.executable, "-m", "pip", "download", f"mpich=={c.mpich_version}", "--no-deps",
               "--only-binary=:all:", "--platform", f"manylinux_2_28_{arch}", "-d", str(d), "-q"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        have = sorted(d.glob(f"mpich-{c.mpich_version}-*{arch}*.whl"))
        if r.returncode != 0 or not have:
            tail = [ln for ln in (r.stderr or r.stdout).splitlines() if "ERROR" in ln][-1:]
            raise HostError(f"could not download mpich=={c.mpich_version} for {arch} with pip"
                            f"{': ' + tail[0] if tail else ''}",
                            "download the wheel where PyPI is reachable and set "
                            "cluster.mpich_wheel: PATH, or use `mpich_install: image`")
        return have[0]

    # -- build ------------------------------------------------------------------------------
    def build(self, options: dict | None = None, echo: Callable[[str, str], None] | None = None,
              force: bool = False) -> list[tuple[str, str, list]]:
        """deps → build in each host's container (the single-host pipeline, one run per host).
        Returns (host, run id, outcomes)."""
        from ..stages.runner import Pipeline
        out = []
        for h in self.hosts:
            self._require(h)
            pipe = Pipeline(h.engine, h.profile, h.container, dict(options or {}),
                            echo=(lambda st, ln, n=h.name: echo(f"{n}:{st}", ln)) if echo else None,
                            status=self.say)
            stages = pipe.select(only=["deps", "build"])
            run_id, outcomes = pipe.run(stages, force=force)
            out.append((h.name, run_id, outcomes))
            bad = [o for o in outcomes if o.status not in ("passed", "skipped")]
            if bad:
                raise StageError(f"host {h.name}: stage {bad[0].name} {bad[0].status}: "
                                 f"{bad[0].message}", f"see containerctl results show {run_id}")
        return out

    def _check_built(self) -> None:
        from ..stages.runner import load_state
        for h in self.hosts:
            c = self._require(h)
            st = load_state(h.container, c.id)
            if st["stages"].get("build", {}).get("status") != "passed":
                raise UsageError(f"stage hetero needs build, which has not passed on host "
                                 f"{h.name} ({h.container})",
                                 f"run it first: containerctl cluster run --hosts "
                                 f"{self.inv.source_file}")

    # -- the hetero stage -------------------------------------------------------------------
    def hetero(self, options: dict | None = None, echo: Callable[[str, str], None] | None = None
               ) -> tuple[str, dict]:
        """Verify the mesh, build the perf tests against MPICH on every host, launch from the
        first host, record stage `hetero` in a run of its own. Returns (run id, record)."""
        from ..results import store
        from ..stages import checks as C
        from ..stages.defs import get_def, render
        from ..stages.runner import exec_stage_script, make_context, now
        options = dict(options or {})
        echo = echo or (lambda _s, _l: None)
        sd = get_def("hetero")
        hosts = self.hosts
        for w in self.warnings():
            self.warn(w)
        self._check_built()
        self.verify()
        self.ensure_mpich()
        total = sum(h.slots for h in hosts)
        profiles = list(dict.fromkeys(h.profile.name for h in hosts))
        platforms = list(dict.fromkeys(h.profile.platform for h in hosts))
        run_id = store.new_run_id(f"{self.name}-hetero")
        meta = {"schema": "containerctl.run/1", "run_id": run_id, "profile": "+".join(profiles),
                "platform": "+".join(platforms), "container": ",".join(h.container for h in hosts),
                "started": now(), "finished": None, "status": "running", "stages": ["hetero"],
                "cluster": self.name, "hosts": [h.name for h in hosts]}
        store.write_run(meta)
        log_path = store.run_dir(run_id) / "logs" / "hetero.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started, t0 = now(), time.monotonic()
        timeout = int(options.get("timeout") or hosts[0].profile.stages.timeouts.get("hetero",
                                                                                      sd.timeout))
        buf = bytearray()
        outcome, code, message = "ok", 1, ""
        ctx0 = None
        with open(log_path, "ab") as logf:
            def emit(prefix: str, text: str) -> None:
                for ln in text.splitlines():
                    logf.write(f"{prefix}{ln}\n".encode())
                    echo("hetero", f"{prefix}{ln}")
                logf.flush()

            def streamer(prefix: str, sink: bytearray | None = None):
                pending = bytearray()

                def on_output(chunk: bytes):
                    if sink is not None:
                        sink.extend(chunk)
                    pending.extend(chunk)
                    while b"\n" in pending:
                        i = pending.index(b"\n")
                        emit(prefix, pending[:i].decode("utf-8", "replace"))
                        del pending[:i + 1]

                def flush():
                    if pending:
                        emit(prefix, pending.decode("utf-8", "replace"))
                        pending.clear()
                return on_output, flush

            try:
                # role build, host by host
                for h in hosts:
                    ctx = make_context(h.profile, options)
                    ctx.update(role="build", cluster=self._ctx_common(run_id))
                    ctx0 = ctx0 or ctx
                    out = bytearray()
                    on_out, flush = streamer(f"[{h.name}] ", out)
                    code, outcome = exec_stage_script(h.engine, h.container, render(sd, ctx),
                                                      "hetero-build", timeout, on_out)
                    flush()
                    if outcome != "ok" or code != 0:
                        message = (f"perf tests did not build on host {h.name} (exit {code})"
                                   if outcome == "ok" else f"{outcome} while building on {h.name}")
                        break
                    self._read_build_output(h, out.decode("utf-8", "replace"))
                else:
                    # role launch, on the first host
                    ctx = make_context(hosts[0].profile, options)
                    ctx["nranks"] = total
                    runs = self._launch_commands(ctx, run_id)
                    cl = self._ctx_common(run_id)
                    cl["runs"] = runs
                    ctx.update(role="launch", cluster=cl)
                    ctx0 = ctx
                    emit("", "+ " + runs[0]["display"] if runs else "no collective")
                    on_out, flush = streamer("", buf)
                    code, outcome = exec_stage_script(hosts[0].engine, hosts[0].container,
                                                      render(sd, ctx), "hetero", timeout, on_out)
                    flush()
            except KeyboardInterrupt:
                code, outcome = 130, "interrupted"
            except StageError as exc:
                code, message = 1, exc.message
                emit("", f"error: {exc.message}")
            finally:
                self._cleanup(run_id, emit)
        text = buf.decode("utf-8", "replace")
        ctx_parse = {"nranks": total, "references": None, "platform_key": None}
        try:
            metrics, checks, _ = C.run_parser("perf", text, ctx_parse) if text else ({}, [], {})
        except Exception as exc:  # a parser bug must not lose the run
            metrics, checks = {}, [{"name": "parse", "ok": False, "detail": str(exc)}]
        checks.insert(0, {"name": "hosts", "ok": True, "detail": f"{total} ranks across "
                          f"{len(hosts)} hosts (" + ", ".join(f"{h.name}={h.address}:{h.slots}"
                                                              for h in hosts) + ")"})
        if outcome == "timeout":
            status, msg = "timeout", f"timed out after {timeout}s; the ranks were killed"
        elif outcome == "interrupted":
            status, msg = "interrupted", "interrupted; the ranks were killed"
        elif message or code != 0:
            status = "failed"
            tail = [ln for ln in text.strip().splitlines() if ln.strip()][-1:] or [""]
            msg = message or f"exit code {code}: {tail[0][:200]}"
        else:
            bad = [c for c in checks if c.get("ok") is False]
            status = "failed" if bad else "passed"
            msg = (f"{bad[0]['name']}: {bad[0]['detail']}" if bad else
                   f"{sum(1 for c in checks if c.get('ok'))} checks passed")
        metrics["hosts"] = [{"name": h.name, "address": h.address, "profile": h.profile.name,
                             "platform": h.profile.platform, "slots": h.slots, "mpich": h.mpich,
                             "docker": h.entry.docker} for h in hosts]
        rec = {"schema": "containerctl.stage/1", "run_id": run_id, "stage": "hetero",
               "status": status, "started": started, "finished": now(),
               "duration_s": round(time.monotonic() - t0, 3), "exit_code": code,
               "message": msg, "profile": meta["profile"], "platform": meta["platform"],
               "container": meta["container"], "metrics": metrics, "checks": checks,
               "repro": self._repro(ctx0, run_id), "log": "logs/hetero.log"}
        store.write_stage(run_id, rec)
        meta.update(finished=now(), status=status)
        store.write_run(meta)
        if outcome == "interrupted":
            raise KeyboardInterrupt
        return run_id, rec

    def _ctx_common(self, run_id: str) -> dict:
        c = self.inv.cluster
        entries = [(h.address or h.name, h.slots) for h in self.hosts]
        return {"name": self.name, "mpi_home": c.mpi_home, "ssh_port": c.ssh_port,
                "hostfile": mpich_hostfile(entries), "runs": [],
                "stage_dir": f"{MESH_DIR}/hetero/{run_id}"}

    def _read_build_output(self, h: Host, text: str) -> None:
        env: dict[str, str] = {}
        h.bins = {}
        for ln in text.splitlines():
            if ln.startswith("CCTL_HOSTENV ") and "=" in ln:
                k, _, v = ln[13:].partition("=")
                env[k] = v
            elif ln.startswith("CCTL_BIN ") and " path=" in ln:
                kv = dict(p.split("=", 1) for p in ln[9:].split(" ") if "=" in p)
                h.bins[kv["coll"]] = (kv.get("layout", "v0.11"), kv.get("wdir", ""), kv["path"])
        fx = h.profile.flagcx
        if fx.visible_devices_env and fx.visible_devices is not None:
            env[fx.visible_devices_env] = fx.visible_devices
        env.update(fx.env)
        env.update(h.entry.env)
        for k in ("PATH", "LD_LIBRARY_PATH"):
            if env.get(k):
                env[k] = ":".join(dict.fromkeys(p for p in env[k].split(":") if p))
        h.env = env

    def _launch_commands(self, ctx: dict, run_id: str) -> list[dict]:
        """One mpirun per collective: `-f hostfile -genvnone`, then per host (in hostfile order,
        so Hydra places segment i on host i) `-n <slots> -wdir … -env K V … <bin> <args>`."""
        perf = ctx["perf"]
        colls = [c.strip("'\"") for c in shlex.split(ctx["colls"])]
        mpirun = f"{self.inv.cluster.mpi_home}/bin/mpirun"
        hostfile = f"{MESH_DIR}/hetero/{run_id}/hostfile"
        extra = shlex.split(ctx["perf_extra"]) if ctx.get("perf_extra") else []
        runs = []
        for coll in colls:
            argv = [mpirun, "-f", hostfile, "-genvnone"]
            for i, h in enumerate(self.hosts):
                if coll not in h.bins:
                    raise StageError(f"host {h.name}: no perf binary for {coll}",
                                     "see the hetero log")
                layout, wdir, path = h.bins[coll]
                if i:
                    argv.append(":")
                argv += ["-n", str(h.slots), "-wdir", wdir]
                env = dict(h.env)
                env["CCTL_HETERO_RUN"] = run_id
                for k, v in env.items():
                    argv += ["-env", k, v]
                argv += [path, "-b", str(perf.begin), "-e", str(perf.end), "-f", str(perf.factor),
                         "-w", str(perf.warmup), "-n", str(perf.iters),
                         "-p", "1" if perf.print_buffer else "0"]
                if layout == "v0.12":
                    argv += ["-d", "float", "-o", "sum"]
                argv += extra
            line = shlex.join(argv)
            runs.append({"coll": coll, "command": line, "display": line})
        return runs

    def _cleanup(self, run_id: str, emit: Callable[[str, str], None]) -> None:
        """Kill whatever still carries this run's marker on any host (a timeout or Ctrl-C kills
        the launcher's session on the first host; ranks elsewhere are found by the marker)."""
        for h in self.hosts:
            try:
                code, out = h.engine.exec_capture(h.container, ["bash", "-c", _CLEANUP_SCRIPT,
                                                                "cleanup", run_id])
            except ContainerctlError:
                continue
            n = out.strip()
            if n and n != "0":
                emit(f"[{h.name}] ", f"cleanup: killed {n} leftover process(es) of this run")

    def _repro(self, ctx: dict | None, run_id: str) -> dict:
        r: dict = {"containerctl": __version__, "cluster": self.name,
                   "inventory": self.inv.source_file,
                   "mpi_home": self.inv.cluster.mpi_home, "ssh_port": self.inv.cluster.ssh_port}
        if ctx and ctx.get("cluster"):
            r["hostfile"] = ctx["cluster"]["hostfile"]
            if ctx["cluster"].get("runs"):
                r["mpirun"] = [x["display"] for x in ctx["cluster"]["runs"]]
        hosts = []
        for h in self.hosts:
            d = {"name": h.name, "container": h.container, "docker": h.entry.docker,
                 "profile": h.profile.name, "profile_file": h.profile.source_file,
                 "profile_hash": hashlib.sha256(
                     h.profile.model_dump_json().encode()).hexdigest()[:16],
                 "mpich": h.mpich, "env": h.env}
            try:
                info = h.engine.inspect(h.container)
                d["image_id"] = info.get("Image")
                d["config_hash"] = (info["Config"].get("Labels") or {}).get(LABEL + "config-hash")
            except ContainerctlError:
                pass
            hosts.append(d)
        r["hosts"] = hosts
        return r

    # -- everything -------------------------------------------------------------------------
    def run(self, options: dict | None = None, echo: Callable[[str, str], None] | None = None,
            force: bool = False) -> tuple[list, str, dict]:
        self.up()
        self.ensure_mpich()
        builds = self.build(options, echo, force=force)
        run_id, rec = self.hetero(options, echo)
        return builds, run_id, rec


def extract_wheel_data(wheel: Path, root: Path) -> None:
    """A wheel's `<name>.data/data/` tree (bin/, include/, lib/) into root, modes kept."""
    with zipfile.ZipFile(wheel) as z:
        n = 0
        for info in z.infolist():
            parts = info.filename.split("/")
            if len(parts) < 3 or not parts[0].endswith(".data") or parts[1] != "data" \
                    or info.is_dir():
                continue
            rel = Path(*parts[2:])
            if rel.is_absolute() or ".." in rel.parts:
                continue
            dst = root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(z.read(info))
            mode = (info.external_attr >> 16) & 0o777
            os.chmod(dst, mode or 0o644)
            n += 1
    if not n:
        raise HostError(f"{wheel.name} has no .data/data tree (not an MPICH wheel?)",
                        "give the PyPI `mpich` wheel")


# ---------------------------------------------------------------------------------------------
# scripts run in the containers ($1 …: their arguments)

_SSHD_SCRIPT = r"""port=$1
if ! [ -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ -w /var/lib/dpkg ]; then
    echo "installing openssh-server openssh-client"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      openssh-server openssh-client >/dev/null 2>&1 || { echo "CCTL_ERR apt-get could not install openssh-server"; exit 3; }
  else echo "CCTL_ERR no /usr/sbin/sshd or ssh client, and no apt-get to install them"; exit 3; fi
fi
mkdir -p /run/sshd /root/.ssh && chmod 700 /root/.ssh
ssh-keygen -A >/dev/null || { echo "CCTL_ERR ssh-keygen -A failed"; exit 3; }
pidf=/run/containerctl-sshd-$port.pid
if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then echo "sshd already runs on $port"
else
  /usr/sbin/sshd -p "$port" -o PidFile="$pidf" -o PermitRootLogin=prohibit-password \
    -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no -o PubkeyAuthentication=yes \
    -o "AuthorizedKeysFile .ssh/authorized_keys" || { echo "CCTL_ERR sshd did not start"; exit 3; }
  echo "sshd started on $port"
fi
echo "CCTL_HOSTKEY $(cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)"
"""

_SSH_FILES_SCRIPT = r"""set -e
cd /root/.ssh
conf=$1; pub=$(cat "$2")
touch authorized_keys config
grep -qxF "$pub" authorized_keys || echo "$pub" >> authorized_keys
{ echo "Include /root/.ssh/$conf"; grep -vxF "Include /root/.ssh/$conf" config || true; } > config.cctl
mv config.cctl config
chmod 600 authorized_keys config
"""

_VERIFY_SCRIPT = r"""for t in "$@"; do
  for try in 1 2 3 4 5; do
    out=$(ssh -o BatchMode=yes -o ConnectTimeout=10 "$t" hostname 2>&1 </dev/null); rc=$?
    [ $rc = 0 ] && break
    sleep 1
  done
  printf 'CCTL_SSH %s %s %s\n' "$t" "$rc" "$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-200)"
done
"""

_CLEANUP_SCRIPT = r"""run=$1; n=0
for sig in TERM KILL; do
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = "$$" ] && continue
    if tr '\0' '\n' < "$p/environ" 2>/dev/null | grep -qxF "CCTL_HETERO_RUN=$run"; then
      kill -$sig "$pid" 2>/dev/null && [ $sig = TERM ] && n=$((n+1))
    fi
  done
  [ $n = 0 ] && break
  sleep 1
done
echo $n
"""


from .export import render_mpijob, render_slurm  # noqa: E402,F401  (re-exported)
