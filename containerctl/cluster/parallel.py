"""One function per host, each in its own thread (every Host has its own Engine), with a bounded
wait, Ctrl-C that reaches every host, and failures that name every failing host.

Only the main thread receives SIGINT/SIGTERM: it waits here in short joins, so a Ctrl-C arrives
at once; `on_interrupt(host)` then stops what runs in each container (the workers' execs end
when their processes die), and the KeyboardInterrupt goes on to the caller."""
from __future__ import annotations

import threading
import time
from typing import Callable, Sequence, TypeVar

from ..errors import ContainerctlError, HostError

H = TypeVar("H")
R = TypeVar("R")


def each(hosts: Sequence[H], fn: Callable[[H], R], *, what: str,
         bound: float | None = None,
         on_interrupt: Callable[[H], None] | None = None) -> list[R]:
    """[fn(h) for h in hosts], run concurrently. Raises the hosts' errors together (the first
    one's type and fix, every host's cause), or HostError naming the hosts still busy after
    `bound` seconds."""
    n = len(hosts)
    results: list = [None] * n
    errors: list[BaseException | None] = [None] * n

    def work(i: int) -> None:
        try:
            results[i] = fn(hosts[i])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors[i] = exc

    if n == 1:       # no thread for one host: same errors, same bound semantics are not needed
        work(0)
    else:
        threads = [threading.Thread(target=work, args=(i,), daemon=True,
                                    name=f"cctl-{getattr(h, 'name', i)}")
                   for i, h in enumerate(hosts)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + bound if bound else None
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.1)
                    if deadline and time.monotonic() > deadline:
                        break
        except KeyboardInterrupt:
            if on_interrupt:
                for h in hosts:
                    try:
                        on_interrupt(h)
                    except Exception:  # noqa: BLE001 - best effort: the engine may be gone
                        pass
            end = time.monotonic() + 20
            for t in threads:
                t.join(max(0.0, end - time.monotonic()))
            raise
        late = [getattr(h, "name", str(h)) for h, t in zip(hosts, threads) if t.is_alive()]
        if late:
            raise HostError(f"{what}: no answer within {bound:.0f} s from " + ", ".join(late),
                            "check those hosts' Docker engines and network")
    failed = [e for e in errors if e is not None]
    if not failed:
        return results
    first = failed[0]
    if isinstance(first, KeyboardInterrupt):
        raise first
    if len(failed) == 1 or not all(isinstance(e, ContainerctlError) for e in failed):
        raise first
    msg = "; ".join(e.message for e in failed)      # type: ignore[union-attr]
    raise type(first)(msg, first.hint, exit_code=first.exit_code) from None  # type: ignore


class Progress:
    """Thread-safe one-line-per-host-per-phase reporting: `say("a", "up 1.2s (created)")`
    prints `a: up 1.2s (created)`, and each phase's wall time is kept for the benchmark."""

    def __init__(self, out: Callable[[str], None]):
        self._out = out
        self._lock = threading.Lock()
        self.timings: dict[str, float] = {}

    def __call__(self, host: str, text: str) -> None:
        with self._lock:
            self._out(f"{host}: {text}")

    def line(self, text: str) -> None:
        with self._lock:
            self._out(text)

    def phase(self, name: str):
        return _Phase(self, name)


class _Phase:
    def __init__(self, prog: Progress, name: str):
        self.prog, self.name = prog, name

    def __enter__(self):
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.prog.timings[self.name] = round(time.monotonic() - self.t0, 3)
        return False


def since(t0: float) -> str:
    return f"{time.monotonic() - t0:.1f}s"
