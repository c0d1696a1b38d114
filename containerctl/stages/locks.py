"""Who is running a stage in a container, found from the container itself (any
CONTAINERCTL_HOME, any machine that reaches the engine sees the same answer).

The lock is a flock(2) on /var/tmp/containerctl/run.lock inside the container, held by a
"holder" shell that a `run` or `exec-stage` starts there (a docker exec with an attached stdin)
and keeps for the whole run, between stages too:

- taking it is atomic (flock in the container; no check-then-act between two homes) and the
  kernel drops it when the holder dies, so it is never stale;
- the holder is also the run's watchdog: it reads its stdin, which is the CLI's connection to
  the engine. `R` (release) ends it cleanly. EOF without `R` means the CLI went away (SIGKILL,
  OOM, a closed ssh session): it kills every process carrying the run's token
  (CCTL_RUN_TOKEN in its environment: mpirun, the ranks, setsid'd daemons) and exits;
- the run marker (run.marker: token, run id, results path, home, host) stays behind when a run
  did not end cleanly; the next command that takes the lock kills what still carries that token
  (in case the watchdog itself was killed), rewrites the old run's run.json to `interrupted`
  where that path is reachable, and says so in one line.
"""
from __future__ import annotations

import json
import os
import socket
import struct
import time
import uuid
from typing import TYPE_CHECKING, Callable

from ..errors import EngineError, UsageError

if TYPE_CHECKING:
    from ..engine import Engine

LOCK_DIR = "/var/tmp/containerctl"
LOCK_FILE = f"{LOCK_DIR}/run.lock"
HOLDER_FILE = f"{LOCK_DIR}/holder"
MARKER_FILE = f"{LOCK_DIR}/run.marker"

# kill every process whose environment carries NAME=VALUE (TERM, then KILL after up to 2 s)
KILL_TOKEN = r"""has_env() {   # has_env PROCDIR NAME=VALUE, with bash builtins only
  local envs IFS
  mapfile -d '' -t envs 2>/dev/null < "$1/environ" || return 1
  IFS=$'\1'
  [[ "$IFS${envs[*]}$IFS" == *"$IFS$2$IFS"* ]]
}
kill_token() {
  local name=$1 tok=$2 sig p pid n
  [ -n "$tok" ] || return 0
  for sig in TERM KILL; do
    n=0
    for p in /proc/[0-9]*; do
      pid=${p#/proc/}
      [ "$pid" = $$ ] && continue
      if has_env "$p" "$name=$tok"; then
        kill -$sig "$pid" 2>/dev/null && n=$((n+1))
      fi
    done
    [ $n = 0 ] && return 0
    if [ $sig = TERM ]; then
      for _ in 1 2 3 4 5 6 7 8 9 10; do
        sleep 0.2
        alive=0
        for p in /proc/[0-9]*; do
          [ "${p#/proc/}" = $$ ] && continue
          read -r s 2>/dev/null < "$p/stat" || continue
          s=${s##*) }; [ "${s%% *}" = Z ] && continue
          has_env "$p" "$name=$tok" && { alive=1; break; }
        done
        [ $alive = 0 ] && return 0
      done
    fi
  done
  return 0
}
"""

# $1 token of this run, $2 the holder line, $3 flagcx.dir. Prints CCTL_LOCK lines: ERROR or
# BUSY and ends, or (ORPHAN when an earlier run was left behind,) STATE, SOURCE, HELD. Then reads
# its stdin: `M <marker>`, `S <state json>` (written atomically), `R` (release), EOF (lost).
HOLDER_SCRIPT = KILL_TOKEN + r"""d=""" + LOCK_DIR + r"""
tok=$1
[ -d "$d" ] || mkdir -p "$d" 2>/dev/null || { echo "CCTL_LOCK ERROR cannot create $d in the container"; exit 3; }
command -v flock >/dev/null 2>&1 || { echo "CCTL_LOCK ERROR no flock(1) in the container (util-linux)"; exit 3; }
exec 9>>"$d/run.lock" || { echo "CCTL_LOCK ERROR cannot open $d/run.lock"; exit 3; }
if ! flock -w 3 9; then
  h=; read -r h 2>/dev/null < "$d/holder"
  echo "CCTL_LOCK BUSY ${h:-another containerctl command}"; exit 3
fi
if [ -s "$d/run.marker" ]; then
  old=$(head -n1 "$d/run.marker")
  kill_token CCTL_RUN_TOKEN "$(printf %s "$old" | sed -n 's/.*"token": *"\([0-9a-f]*\)".*/\1/p')"
  echo "CCTL_LOCK ORPHAN $old $(sed -n 2p "$d/run.marker")"
  rm -f "$d/run.marker"
fi
printf '%s\n' "$2" > "$d/holder"
# what the run needs to know first: the stage state kept here (one line of JSON) and flagcx.dir's
# source marker. Builtins only from the lock on: this is on every command's way.
st=; read -r st 2>/dev/null < "$d/state.json"
m=; [ -n "$3" ] && read -r m 2>/dev/null < "$3/.containerctl-source"
printf 'CCTL_LOCK STATE %s\nCCTL_LOCK SOURCE %s\nCCTL_LOCK HELD %s\n' "$st" "$m" "$$"
while IFS= read -r line; do
  case $line in
    M\ *) printf '%s\n' "${line#M }" > "$d/run.marker.$$" && mv -f "$d/run.marker.$$" "$d/run.marker" ;;
    S\ *) printf '%s\n' "${line#S }" > "$d/state.json.$$" && mv -f "$d/state.json.$$" "$d/state.json" ;;
    R) [ -e "$d/run.marker" ] && rm -f "$d/run.marker"; : > "$d/holder"; exit 0 ;;
  esac
done
# EOF without a release: the CLI is gone. Its run's processes go with it.
kill_token CCTL_RUN_TOKEN "$tok"
[ -s "$d/run.marker" ] && printf 'lost %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$d/run.marker"
: > "$d/holder"
exit 0
"""

# 0 and a holder line when the lock is held, 1 when it is free (a shared flock: it never
# blocks a run taking the lock for more than an instant, and the run waits for that instant)
PROBE_SCRIPT = f"""[ -e {LOCK_FILE} ] || exit 1
command -v flock >/dev/null 2>&1 || exit 1
if flock -n -s {LOCK_FILE} true; then exit 1; fi
h=$(head -c 600 {HOLDER_FILE} 2>/dev/null | head -n1)
echo "${{h:-another containerctl command (starting)}}"
exit 0"""


def busy_holder(engine: "Engine", container: str) -> str | None:
    """A one-line description of the run or stage holding `container`'s stage lock (command,
    stage, host, pid, home, since), or None when no stage runs there. Every command that could
    disturb a running stage (recreate, remove, another run) asks this first."""
    try:
        c = engine.find(container)
    except Exception:
        return None
    if c is None or not c.running:
        return None     # nothing runs in a stopped container: the lock died with it
    code, out = engine.exec_capture(container, ["sh", "-c", PROBE_SCRIPT])
    if code != 0:
        return None
    return out.strip().splitlines()[0] if out.strip() else "another containerctl command"


# ---------------------------------------------------------------------------------------------
# an exec whose stdin stays attached to this process: EOF there when this process goes away

def _attached_exec(engine: "Engine", container: str, cmd: list[str]) -> socket.socket:
    """Start `cmd` in the container with stdin attached; return the raw (hijacked) socket:
    what is written to it is the command's stdin, what is read is its multiplexed output."""
    local = getattr(engine, "_local", None)
    if local is not None:
        from ..engine import url_part
        ex = engine._lcall(local.call, "POST", f"/containers/{url_part(container)}/exec",
                           {"AttachStdin": True, "AttachStdout": True, "AttachStderr": True,
                            "Tty": False, "Cmd": cmd}, what=f"exec in {container}")
        body = json.dumps({"Detach": False, "Tty": False}).encode()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(60)
            s.connect(local.path)
            s.sendall((f"POST /exec/{url_part(ex['Id'])}/start HTTP/1.1\r\nHost: localhost\r\n"
                       "Content-Type: application/json\r\nConnection: Upgrade\r\n"
                       f"Upgrade: tcp\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(1)
                if not chunk:
                    raise OSError("the engine closed the exec connection")
                head += chunk
            status = head.split(b" ", 2)[1:2]
            if status not in ([b"101"], [b"200"]):
                raise EngineError(f"exec in {container}: the engine answered "
                                  f"{head.splitlines()[0].decode('latin-1')}",
                                  "check the container with `containerctl ps`")
            s.settimeout(None)
        except OSError as exc:
            s.close()
            raise engine._unreachable(exc) from None
        return s
    api = engine.api
    ex = engine._call(api.exec_create, container, cmd, stdin=True, tty=False,
                      what=f"exec in {container}")
    sock = engine._call(api.exec_start, ex["Id"], tty=False, socket=True, what="exec")
    raw = getattr(sock, "_sock", sock)
    raw.settimeout(None)
    return raw


class _Frames:
    """Lines of a multiplexed (non-tty) exec stream."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""
        self.text = b""

    def _recv(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def line(self) -> str:
        while b"\n" not in self.text:
            head = self._recv(8)
            n = struct.unpack(">BxxxL", head)[1]
            self.text += self._recv(n)
        ln, _, self.text = self.text.partition(b"\n")
        return ln.decode("utf-8", "replace")


def _host() -> str:
    try:
        return socket.gethostname()
    except OSError:
        return "?"


class ContainerLock:
    """The container's run lock, held from before the first stage to after the last."""

    def __init__(self, engine: "Engine", container: str, command: str, what: str,
                 on_note: Callable[[str], None] | None = None, flagcx_dir: str = ""):
        self.engine = engine
        self.container = container
        self.command = command
        self.what = what
        self.note = on_note or (lambda m: None)
        self.token = uuid.uuid4().hex
        self.sock: socket.socket | None = None
        self.orphans: list[dict] = []
        self.flagcx_dir = flagcx_dir
        self.state_text = ""             # the container's stage state, as the holder read it
        self.marker: str | None = None   # flagcx.dir's source fingerprint, as the holder read it

    def holder_line(self) -> str:
        from .. import paths
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return (f"{self.command} {self.what} by pid {os.getpid()} on {_host()} "
                f"(home {paths.home()}) since {since}").replace("\n", " ")

    def acquire(self) -> "ContainerLock":
        cmd = ["bash", "-c", HOLDER_SCRIPT, "cctl-holder", self.token, self.holder_line(),
               self.flagcx_dir]
        sock = _attached_exec(self.engine, self.container, cmd)
        frames = _Frames(sock)
        try:
            while True:
                try:
                    ln = frames.line()
                except EOFError:
                    raise EngineError(f"could not take the run lock in {self.container}: the "
                                      "container stopped answering",
                                      "check it with `containerctl ps`") from None
                if not ln.startswith("CCTL_LOCK "):
                    continue
                word, _, rest = ln[len("CCTL_LOCK "):].partition(" ")
                if word == "HELD":
                    break
                if word == "ORPHAN":
                    self._orphan(rest)
                    continue
                if word == "STATE":
                    self.state_text = rest
                    continue
                if word == "SOURCE":
                    self.marker = (rest.split() or [None])[0]
                    continue
                if word == "BUSY":
                    raise UsageError(f"container {self.container} is busy: {rest}",
                                     "wait for it to finish (or stop it with Ctrl-C where it "
                                     "runs), then try again")
                raise UsageError(f"cannot take the run lock in {self.container}: {rest}",
                                 "use an image with bash and util-linux (flock)")
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        return self

    def mark(self, run_id: str, results: str) -> None:
        """Name the run in the container, so a command after a crash can close its record."""
        from .. import paths
        m = {"token": self.token, "run_id": run_id, "results": results, "host": _host(),
             "home": str(paths.home()), "pid": os.getpid(), "command": self.command,
             "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self._send(f"M {json.dumps(m)}\n")

    def save_state(self, state_json: str) -> None:
        """The stage state into the container (one line of JSON; the holder renames it in)."""
        if "\n" in state_json:
            raise ValueError("the state must be one line")
        self._send(f"S {state_json}\n")

    def _send(self, text: str) -> None:
        if self.sock is None:
            return
        try:
            self.sock.sendall(text.encode())
        except OSError:
            pass

    def release(self) -> None:
        if self.sock is None:
            return
        self._send("R\n")
        try:   # wait (briefly) for the holder to end: the next command then finds the lock free
            self.sock.settimeout(10)
            while self.sock.recv(65536):
                pass
        except OSError:
            pass
        finally:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False

    def _orphan(self, rest: str) -> None:
        """An earlier run in this container never released the lock: its processes were just
        stopped by the holder; close its record if this machine can reach it."""
        try:
            m, end = json.JSONDecoder().raw_decode(rest)
            tail = rest[end:]
            if not isinstance(m, dict):
                raise ValueError
        except ValueError:
            self.note(f"note: an earlier run in {self.container} did not end cleanly; its "
                      "processes were stopped")
            return
        self.orphans.append(m)
        rewritten, before = mark_interrupted(m, lost=tail.strip())
        if rewritten and before != "running":
            return   # its CLI recorded how it ended (e.g. the container was stopped under it)
        where = (f"its record {rewritten} now says interrupted" if rewritten else
                 f"its record ({m.get('results')} on {m.get('host')}) is not reachable from "
                 "here")
        self.note(f"note: run {m.get('run_id')} ({m.get('command', 'run')} by pid {m.get('pid')} "
                  f"on {m.get('host')}, home {m.get('home')}) in {self.container} did not end "
                  f"cleanly: its processes were stopped; {where}")


def mark_interrupted(marker: dict, lost: str = "") -> tuple[str | None, str | None]:
    """Rewrite the run.json the marker names to `interrupted` when it is reachable from here
    and still says `running`. Returns (its path or None, the status it had)."""
    from ..results import store
    res = marker.get("results")
    if not res:
        return None, None
    why = "the containerctl process running it went away (killed, or its terminal closed)"
    if lost.startswith("lost "):
        why += f"; its processes were stopped at {lost[5:]}"
    return store.mark_interrupted(res, marker.get("run_id"), why)

