"""Memory bounded whatever a stage prints. The stage log on disk keeps everything; what is held in
memory to parse, to show or to import is at most PARSE_LIMIT bytes (CONTAINERCTL_PARSE_LIMIT_MB,
default 32 MiB: a perf sweep with `-p 1` on 8 ranks over 10 collectives prints well under 1 MiB;
the parsers' own structures cost up to ~25× what they read, so this bounds a run's memory to
about 150 MiB for perf output and ~0.6 GiB for the worst text measured, see
benchmarks/log_memory.py).

* `ParseBuffer` takes the stream as it comes and keeps its head and its tail (half the limit
  each); `text()` is the whole output when it fits, else head + a marker line + tail, cut at
  line ends, and `dropped` says how much of the middle was not kept (the runner then records a
  failed check: a verdict is never drawn from part of the evidence without saying so).
* `read_bounded(path)` is the same for a file (the failure screen, `results import`).
* `LineSplitter` cuts a stream into lines for the live/plain view with a bounded carry: a stage
  that prints a gigabyte without a newline is shown in MAX_LINE pieces, never buffered whole."""
from __future__ import annotations

import os
from collections import deque
from pathlib import Path

from .errors import HostError

MAX_LINE = 64 * 1024       # bytes of one line held for the screen before it is shown in pieces


def parse_limit() -> int:
    try:
        mb = float(os.environ.get("CONTAINERCTL_PARSE_LIMIT_MB") or 32)
    except ValueError:
        mb = 32
    return max(1, int(mb * 1024 * 1024))


def _marker(dropped: int) -> bytes:
    return (f"\n[containerctl: {dropped} bytes of this output not read here (more than "
            f"CONTAINERCTL_PARSE_LIMIT_MB); the log has all of it]\n").encode()


class ParseBuffer:
    """Head and tail of a byte stream, each at most limit/2 bytes."""

    def __init__(self, limit: int | None = None):
        self.limit = limit or parse_limit()
        self.half = self.limit // 2
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_len = 0
        self.total = 0

    def extend(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        if len(chunk) > self.half:
            chunk = bytes(chunk[-self.half:])
        self.tail.append(bytes(chunk))
        self.tail_len += len(chunk)
        while self.tail_len - len(self.tail[0]) >= self.half:
            self.tail_len -= len(self.tail.popleft())

    @property
    def dropped(self) -> int:
        return self.total - len(self.head) - self.tail_len if self.total > self.limit else 0

    def data(self) -> bytes:
        if self.total <= self.limit:
            return b"".join([self.head, *self.tail])
        tail = b"".join(self.tail)
        # cut at line ends so no parser sees half a line; the cut bytes count as dropped
        h = bytes(self.head)
        h = h[:h.rfind(b"\n") + 1] if b"\n" in h else h
        over = len(tail) - (self.limit - self.half)
        t = tail[max(over, 0):]
        t = t[t.find(b"\n") + 1:] if b"\n" in t else t
        return h + _marker(self.total - len(h) - len(t)) + t

    def text(self) -> str:
        return self.data().decode("utf-8", "replace")


def read_bounded(path: str | os.PathLike, limit: int | None = None) -> tuple[str, int]:
    """(text, dropped bytes) of a file: all of it when it fits in `limit`, else its head and
    tail (see ParseBuffer), read without holding more than that."""
    limit = limit or parse_limit()
    p = Path(path)
    size = p.stat().st_size
    with open(p, "rb") as fh:
        if size <= limit:
            return fh.read(limit + 1).decode("utf-8", "replace"), 0
        buf = ParseBuffer(limit)
        buf.extend(fh.read(buf.half))
        fh.seek(max(size - buf.half, buf.half))
        rest = fh.read()
        buf.total = size - len(rest)      # what lies between counts as seen, not kept
        buf.extend(rest)
        return buf.text(), buf.dropped


class LineSplitter:
    """Bytes in, whole lines out (decoded), the unfinished line bounded by MAX_LINE."""

    def __init__(self, max_line: int = MAX_LINE):
        self.max_line = max_line
        self.pending = bytearray()

    def feed(self, chunk: bytes) -> list[str]:
        self.pending += chunk
        out = []
        start = 0
        while True:
            i = self.pending.find(b"\n", start)
            if i < 0:
                break
            out.append(self.pending[start:i].decode("utf-8", "replace"))
            start = i + 1
        del self.pending[:start]
        while len(self.pending) > self.max_line:
            out.append(self.pending[:self.max_line].decode("utf-8", "replace"))
            del self.pending[:self.max_line]
        return out

    def rest(self) -> str:
        s = self.pending.decode("utf-8", "replace")
        self.pending.clear()
        return s


class LogFile:
    """A stage log opened for appending that never raises on write: the first OSError (a full
    disk, a quota) is kept in `error`, later writes are dropped, and the caller reports it once
    the stage has ended (the stage itself is not cut short by the host's disk)."""

    def __init__(self, path: Path):
        self.path = path
        self.error: OSError | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.raw = open(path, "ab")
        except OSError as exc:
            raise log_error(path, exc) from None

    def write(self, data: bytes) -> None:
        if self.error is None:
            try:
                self.raw.write(data)
            except OSError as exc:
                self.error = exc

    def flush(self) -> None:
        if self.error is None:
            try:
                self.raw.flush()
            except OSError as exc:
                self.error = exc

    def close(self) -> None:
        try:
            self.raw.close()
        except OSError as exc:
            self.error = self.error or exc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def log_error(path: Path, exc: OSError):
    """The one-line cause and fix of a stage log that could not be written (exit 1: a run had
    started; its run.json says `error` with this cause)."""
    return HostError(f"cannot write the stage log {path}: {exc.strerror or exc}",
                     f"free space there (df -h {path.parent}) or set CONTAINERCTL_HOME to a disk "
                     "with room, then run the stage again", exit_code=1)
