"""The ssh mesh between a cluster's containers (runbook §4.1(1)): one ed25519 keypair per cluster
(0600, kept under the state home, put into the containers through the engine's archive API and
nowhere else), sshd on the mesh port in every container, a client config that touches only the
cluster's addresses, and passwordless ssh verified from every container to every container —
each host tests all its peers in ONE exec, all hosts at once, each pair bounded in time.

The bash run in the containers is here too ($1 …: its arguments)."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable

from ..errors import HostError
from .inventory import Host, known_hosts, ssh_client_config
from .parallel import each, since

SSH_DIR = "/root/.ssh"
PAIR_TIMEOUT_S = 10       # one ssh attempt (connect 5 s) and its retries, per pair


def keypair(key_dir: Path, cluster: str) -> tuple[Path, Path]:
    """The cluster's ed25519 keypair (made once; dir 0700, both files 0600)."""
    d = key_dir
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
                                f"containerctl-cluster-{cluster}", "-f", str(key)],
                               capture_output=True, text=True, timeout=60)
        finally:
            os.umask(old)
        if r.returncode != 0:
            raise HostError(f"ssh-keygen failed: {(r.stderr or r.stdout).strip()[:200]}",
                            f"check that {d} is writable")
    os.chmod(key, 0o600)
    os.chmod(pub, 0o600)
    return key, pub


def start_sshd(h: Host, port: int) -> str:
    """sshd on `port` in the host's container (installed with apt-get when missing); returns
    its ed25519 host key ('type base64')."""
    code, out = h.engine.exec_capture(h.container, ["bash", "-c", SSHD_SCRIPT, "sshd", str(port)])
    err = [ln[9:] for ln in out.splitlines() if ln.startswith("CCTL_ERR ")]
    if code != 0:
        raise HostError(f"host {h.name}: could not start sshd on port {port} in "
                        f"{h.container}: {(err or out.strip().splitlines()[-1:] or ['?'])[0]}",
                        "use an image with openssh-server and openssh-client (the image "
                        "block `sshd`), or one where apt-get can install them")
    hk = [ln[13:] for ln in out.splitlines() if ln.startswith("CCTL_HOSTKEY ")]
    if not hk:
        raise HostError(f"host {h.name}: sshd has no ed25519 host key", "check the image")
    return hk[0]


def install_client(h: Host, cluster: str, priv: bytes, pub: str, conf: str, kh: str) -> None:
    """The key, the client config and known_hosts in one archive, then authorized_keys and the
    config's Include in one exec."""
    e, c = h.engine, h.container
    conf_name = f"containerctl_{cluster}.conf"
    e.exec(c, ["bash", "-c", f"mkdir -p {SSH_DIR} && chmod 700 {SSH_DIR}"])
    e.put_files(c, SSH_DIR, {f"containerctl_{cluster}": (priv, 0o600),
                             f"containerctl_{cluster}.pub": ((pub + "\n").encode(), 0o600),
                             conf_name: (conf.encode(), 0o600),
                             f"known_hosts_containerctl_{cluster}": (kh.encode(), 0o600)})
    code, out = e.exec_capture(c, ["bash", "-c", SSH_FILES_SCRIPT, "files", conf_name,
                                   f"containerctl_{cluster}.pub"])
    if code != 0:
        raise HostError(f"host {h.name}: could not write {SSH_DIR} in {c}: {out.strip()[-200:]}",
                        "is /root writable in the container?")


def configure(hosts: list[Host], cluster: str, port: int, key: Path, pub: Path,
              say: Callable[[str, str], None]) -> None:
    """sshd everywhere, then every container's client files (known_hosts needs every host key)."""
    priv_bytes, pub_text = key.read_bytes(), pub.read_text().strip()

    def sshd(h: Host) -> str:
        t0 = time.monotonic()
        k = start_sshd(h, port)
        say(h.name, f"sshd on {h.address}:{port} {since(t0)}")
        return k
    keys = each(hosts, sshd, what="starting sshd")
    conf = ssh_client_config([h.address for h in hosts], port, f"{SSH_DIR}/containerctl_{cluster}",
                             f"{SSH_DIR}/known_hosts_containerctl_{cluster}")
    kh = known_hosts([(h.address, port, k) for h, k in zip(hosts, keys)])
    each(hosts, lambda h: install_client(h, cluster, priv_bytes, pub_text, conf, kh),
         what="writing the ssh client files")


def probe_from(h: Host, targets: list[str], timeout: int = PAIR_TIMEOUT_S) -> dict[str, tuple]:
    """One exec in h's container: ssh to every target at once, each bounded by `timeout`.
    Returns {address: (exit code, message)}; raises HostError when the exec itself broke."""
    code, out = h.engine.exec_capture(h.container, ["bash", "-c", VERIFY_SCRIPT, "verify",
                                                    str(timeout)] + targets)
    got: dict[str, tuple] = {}
    for ln in out.splitlines():
        if ln.startswith("CCTL_SSH "):
            _, addr, rc, *msg = ln.split(" ", 3)
            got[addr] = (int(rc) if rc.lstrip("-").isdigit() else 255,
                         (msg[0] if msg else "").strip())
    missing = [a for a in targets if a not in got]
    if missing or code != 0:
        raise HostError(f"ssh check from {h.name} did not finish (exit {code}): "
                        f"{out.strip()[-200:]}", "see the container's ssh client")
    return got


def verify(hosts: list[Host], port: int, say: Callable[[str, str], None],
           timeout: int = PAIR_TIMEOUT_S) -> None:
    """Passwordless ssh from every container to every container (itself included: Hydra may
    ssh to its own host), all hosts at once. Every failing pair is named."""
    by_addr = {h.address: h for h in hosts}
    targets = list(by_addr)

    def one(src: Host) -> list[str]:
        t0 = time.monotonic()
        got = probe_from(src, targets, timeout)
        bad = []
        for addr, (rc, msg) in got.items():
            if rc != 0:
                dst = by_addr.get(addr)
                bad.append(f"{src.name} → {dst.name if dst else addr} ({addr}:{port}) failed: "
                           f"{msg or 'exit ' + str(rc)}")
        peers = len(targets) - (1 if src.address in by_addr else 0)
        if bad:
            say(src.name, "mesh FAILED to " + ", ".join(
                by_addr[a].name for a, (rc, _m) in got.items() if rc != 0) + f" {since(t0)}")
        else:
            say(src.name, f"mesh ok ({peers} peer{'s' if peers != 1 else ''} + self) "
                          f"{since(t0)}")
        return bad
    failures = [b for bad in each(hosts, one, what="checking the ssh mesh") for b in bad]
    if failures:
        more = f" (and {len(failures) - 1} more: " + "; ".join(failures[1:]) + ")" \
            if len(failures) > 1 else ""
        raise HostError(f"passwordless ssh {failures[0]}{more}",
                        "check that the port is open between the hosts (firewall, "
                        "network_mode) and that sshd runs in the target container "
                        "(`containerctl cluster up` starts it)")


# ---------------------------------------------------------------------------------------------
# scripts run in the containers ($1 …: their arguments)

SSHD_SCRIPT = r"""port=$1
if ! [ -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ -w /var/lib/dpkg ]; then
    echo "installing openssh-server openssh-client"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      openssh-server openssh-client >/dev/null 2>&1 || { echo "CCTL_ERR apt-get could not install openssh-server"; exit 3; }
  else echo "CCTL_ERR no /usr/sbin/sshd or ssh client, and no apt-get to install them"; exit 3; fi
fi
mkdir -p /run/sshd /root/.ssh /etc/ssh && chmod 700 /root/.ssh
# sshd refuses a user whose login shell does not exist ("Permission denied (publickey)"): an
# image whose /etc/passwd comes from the host (root's shell /bin/bash) but whose /bin lacks it
sh=$(awk -F: '$1 == "root" {print $7}' /etc/passwd 2>/dev/null)
if [ -n "$sh" ] && [ ! -x "$sh" ]; then
  b=$(command -v "$(basename "$sh")" 2>/dev/null) && mkdir -p "$(dirname "$sh")" && ln -sf "$b" "$sh" \
    && echo "root's shell $sh linked to $b" || { echo "CCTL_ERR root's login shell $sh does not exist here"; exit 3; }
fi
# an image (or a host /usr mount) with sshd but no sshd_config: every option is given below
cfg=/etc/ssh/sshd_config; [ -f "$cfg" ] || cfg=/dev/null
# only the ed25519 host key (the one known_hosts gets): `ssh-keygen -A` would also make an RSA
# key, seconds of CPU per container when many start at once
hk=/etc/ssh/ssh_host_ed25519_key
[ -s "$hk" ] || ssh-keygen -q -t ed25519 -N "" -f "$hk" >/dev/null || { echo "CCTL_ERR ssh-keygen failed"; exit 3; }
pidf=/run/containerctl-sshd-$port.pid
if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then echo "sshd already runs on $port"
else
  /usr/sbin/sshd -f "$cfg" -p "$port" -o PidFile="$pidf" -o HostKey="$hk" -o UsePAM=no \
    -o PrintMotd=no -o UseDNS=no -o PermitRootLogin=prohibit-password \
    -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no -o PubkeyAuthentication=yes \
    -o "AuthorizedKeysFile .ssh/authorized_keys" || { echo "CCTL_ERR sshd did not start"; exit 3; }
  echo "sshd started on $port"
fi
echo "CCTL_HOSTKEY $(cut -d' ' -f1,2 "$hk.pub")"
"""

SSH_FILES_SCRIPT = r"""set -e
cd /root/.ssh
conf=$1; pub=$(cat "$2")
touch authorized_keys config
grep -qxF "$pub" authorized_keys || echo "$pub" >> authorized_keys
{ echo "Include /root/.ssh/$conf"; grep -vxF "Include /root/.ssh/$conf" config || true; } > config.cctl
mv config.cctl config
chmod 600 authorized_keys config
"""

# every target at once; each pair: up to 3 tries (a just-started sshd may not accept yet), the
# whole pair killed at $1 seconds; one CCTL_SSH line per target
VERIFY_SCRIPT = r"""tmo=$1; shift
d=$(mktemp -d); i=0
for t in "$@"; do
  i=$((i+1))
  (
    end=$((SECONDS + tmo)); try=0
    while :; do
      try=$((try+1)); left=$((end - SECONDS)); [ $left -lt 1 ] && left=1
      out=$(timeout "$left" ssh -o BatchMode=yes -o ConnectTimeout=5 -- "$t" true 2>&1 </dev/null); rc=$?
      [ $rc = 124 ] && out="no answer within $tmo s"
      [ $rc = 0 ] || [ $try -ge 3 ] || [ $SECONDS -ge $end ] && break
      sleep 0.3
    done
    printf 'CCTL_SSH %s %s %s\n' "$t" "$rc" "$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-200)" > "$d/$i"
  ) &
done
wait
cat "$d"/* 2>/dev/null
rm -rf "$d"
"""
