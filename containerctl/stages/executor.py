"""The one executor of a stage script: exec it in the container in a session of its own (its id
written first), stream its output, enforce the timeout, and kill the stage's whole session —
mpirun and its ranks, and anything carrying the stage's token — when it ends, times out or is
interrupted (Ctrl-C, SIGTERM, SIGHUP: interrupt_signals). failure_cause names the first real
error line of a failed stage's output."""
from __future__ import annotations

import signal
import threading
import time
from typing import TYPE_CHECKING, Callable

from .state import IN_CONTAINER_DIR

if TYPE_CHECKING:
    from ..engine import Engine

KILL_SCRIPT = r"""sid=$(cat "$1" 2>/dev/null)
tok=$2
spare=${3:-}
# every process of the stage: its session, and anything that carries the stage's token in its
# environment (a process that started a session of its own still inherits the token). $3: pids
# to spare (the stage's own wrapper and its setsid, when it sweeps up after its script ended).
# TERM, then KILL for what is still alive after up to 2 s (no wait when nothing was found).
# (bash builtins only, no process per process looked at: a sweep ends every stage)
match() {
  local st envs IFS
  read -r st 2>/dev/null < "$1/stat" || return 1
  set -- "$1" ${st##*) }           # $2 state, $3 ppid, $4 pgrp, $5 session
  [ "$2" != Z ] || return 1
  [ -n "$sid" ] && [ "$5" = "$sid" ] && return 0
  [ -n "$tok" ] || return 1
  mapfile -d '' -t envs 2>/dev/null < "$1/environ" || return 1
  IFS=$'\1'
  [[ "$IFS${envs[*]}$IFS" == *"${IFS}CCTL_STAGE_TOKEN=$tok$IFS"* ]]
}
for sig in TERM KILL; do
  n=0
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    case " $$ $spare " in *" $pid "*) continue ;; esac
    match "$p" && kill -$sig "$pid" 2>/dev/null && n=$((n+1))
  done
  [ $n = 0 ] && break
  if [ $sig = TERM ]; then
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      sleep 0.2; left=0
      for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        case " $$ $spare " in *" $pid "*) continue ;; esac
        match "$p" && { left=1; break; }
      done
      [ $left = 0 ] && break 2
    done
  fi
done
exit 0"""


def session_alive(engine: Engine, container: str, pidfile: str) -> list[str]:
    """Live processes still in the stage's session (zombies are dead: not counted)."""
    code, out = engine.exec_capture(container, ["bash", "-c", f"""sid=$(cat {pidfile} 2>/dev/null) || exit 0
for p in /proc/[0-9]*; do f=$(sed 's/.*) //' "$p/stat" 2>/dev/null); set -- $f
[ "$4" = "$sid" ] && [ "$1" != Z ] && echo "${{p#/proc/}} $(cat $p/comm 2>/dev/null)"; done; exit 0"""])
    return [ln for ln in out.splitlines() if ln.strip()]


def exec_stage_script(engine: Engine, container: str, script: str, stage: str, timeout: int,
                      on_output: Callable[[bytes], None], run_token: str = "",
                      run: Callable[[str], str] | None = None) -> tuple[int, str]:
    """Returns (exit code, outcome) with outcome in ok | timeout | interrupted. Whatever the
    script returned, what it left behind (a daemon that setsid'd away, a background job) is
    killed when it ends. `run_token` marks every process of the stage for the run's watchdog
    (stages.locks), which kills them if this process goes away."""
    import uuid
    token = uuid.uuid4().hex
    d = f"{IN_CONTAINER_DIR}/{stage}"
    pidfile = f"{d}/session"
    env = {"CCTL_STAGE_TOKEN": token}
    if run_token:
        env["CCTL_RUN_TOKEN"] = run_token
    # the scripts travel in the exec's environment and the shell that becomes the stage writes
    # them (kill.sh before the session id): one engine round trip instead of a copy and an
    # exec. A script too big for one environment string (or holding a NUL) is copied first.
    if len(script.encode()) < 100_000 and "\0" not in script:
        env.update(CCTL_SCRIPT_SH=script, CCTL_KILL_SH=KILL_SCRIPT)
        write = (f'mkdir -p {d} && printf %s "$CCTL_SCRIPT_SH" > {d}/script.sh && printf %s '
                 f'"$CCTL_KILL_SH" > {d}/kill.sh && chmod 755 {d}/script.sh {d}/kill.sh || '
                 f'{{ echo "containerctl: cannot write the stage script in {d}" >&2; exit 125; }}'
                 '; unset CCTL_SCRIPT_SH CCTL_KILL_SH; ')
    else:
        engine.put_files(container, "/", {
            f"{d.lstrip('/')}/script.sh": (script.encode(), 0o755),
            f"{d.lstrip('/')}/kill.sh": (KILL_SCRIPT.encode(), 0o755)})
        write = ""
    # setsid makes the stage a session of its own; its id (= the shell's pid) is written first.
    # After the script, the shell sweeps up what the stage left (sparing itself and setsid).
    # `run` (a scheduler's plug) turns the script's path into the command that runs it
    launch = run(f"{d}/script.sh") if run else f"bash {d}/script.sh"
    cmd = ["setsid", "-w", "bash", "-c", write + f'echo $$ > {pidfile}; {launch}; '
           f'rc=$?; bash {d}/kill.sh {pidfile} "$CCTL_STAGE_TOKEN" "$$ $PPID"; exit $rc']
    result: dict = {}

    def target():
        try:
            result["code"] = engine.exec(container, cmd, on_output=on_output, env=env)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            result["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    deadline = time.monotonic() + timeout
    outcome = "ok"
    try:
        with interrupt_signals():
            while t.is_alive():
                t.join(0.2)
                if time.monotonic() > deadline:
                    outcome = "timeout"
                    break
    except KeyboardInterrupt:
        outcome = "interrupted"
    if outcome != "ok":
        try:
            # the kill script inline: it works even before the stage's shell wrote kill.sh
            engine.exec(container, ["bash", "-c", KILL_SCRIPT, "kill", pidfile, token])
        except Exception:
            pass
        t.join(15)
        return (124 if outcome == "timeout" else 130), outcome
    if "error" in result:
        raise result["error"]
    return int(result.get("code", 1)), "ok"


def failure_cause(text: str, ctx: dict | None = None) -> str:
    """The first real error line of a failed stage's output (compiler, setuptools, traceback,
    mpirun …), with the NCCL-mismatch fix where FlagCX's adaptor and the NCCL found disagree."""
    try:
        from ..results import logerrors as LE
    except ImportError:  # pragma: no cover - the extractor ships with the package
        LE = None
    if LE is not None:
        err = LE.first_error(text)
        if err is not None:
            line = err.line.strip()[:300]
            from .markers import first_value   # the build stage's `cctl_mark nccl …`
            ver = first_value("nccl", text) or (ctx or {}).get("nccl_version")
            fix = LE.nccl_api_mismatch(text, ver) if hasattr(LE, "nccl_api_mismatch") else None
            return line + (f" — {fix}" if fix else "")
    tail = [ln for ln in text.strip().splitlines() if ln.strip()][-1:] or ["no output"]
    return tail[0][:300]


class interrupt_signals:
    """SIGTERM and SIGHUP (a closed terminal or ssh session) end a run as Ctrl-C does: the
    stage's processes are killed and the run is recorded `interrupted`. Only the first signal
    interrupts: a second one during that cleanup is ignored. Installed in the main thread only,
    and not over a handler that someone else installed."""
    fired = False

    def __init__(self):
        self.old: dict = {}

    @staticmethod
    def _handler(signum, frame):
        if interrupt_signals.fired:
            return
        interrupt_signals.fired = True
        raise KeyboardInterrupt

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
                if sig is None:
                    continue
                cur = signal.getsignal(sig)
                if cur in (signal.SIG_DFL, None):
                    self.old[sig] = cur
                    signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, old in self.old.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self.old = {}
        return False
