"""Text from a stage, a profile or a label, made safe to show: one function, used wherever such
text reaches a terminal, a plain (CI) log, the failure summary, `report`, `results show` or the
md/JUnit reports. Logs on disk stay raw (they are the evidence).

A build that prints `ESC]0;title BEL` renames the user's terminal window, `ESC[2J` clears it, and a
`\\r` in a label rewrites the line it is on (hiding what was before it). So:

* colour (SGR, `ESC[…m`: gcc and cmake print it) is dropped: it carries no information;
* every other control character — the rest of C0 except newline and tab, DEL, C1 (0x80-0x9f,
  where 0x9b is a one-byte CSI) — and the Unicode bidi overrides and line separators are shown
  as visible escapes (`\\x1b`, `\\r`, `\\x07`, `\\u202e`): what the stage printed is still there
  to read, but nothing in it acts on the terminal;
* a Windows line end (`\\r\\n`) is just a line end.

`xml_safe` also escapes what XML 1.0 forbids (U+FFFE, U+FFFF, lone surrogates), so a JUnit file
stays well-formed whatever a test printed."""
from __future__ import annotations

import re

_SGR = re.compile(r"\x1b\[[0-9;:]*m")
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e"
                     "\u2066-\u2069]")
_XML_BAD = re.compile("[\ufffe\uffff\ud800-\udfff]")
_NAMED = {"\r": "\\r", "\x1b": "\\x1b", "\x07": "\\x07", "\x08": "\\b", "\x0c": "\\f",
          "\x0b": "\\v", "\x00": "\\0"}


def _show(m: re.Match) -> str:
    c = m.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def printable(s: str) -> str:
    """`s` with no character that acts on a terminal; newlines and tabs kept."""
    if not isinstance(s, str):
        s = str(s)
    if not _UNSAFE.search(s):
        return s
    s = _SGR.sub("", s).replace("\r\n", "\n")
    return _UNSAFE.sub(_show, s)


def one_line(s: str) -> str:
    """printable, with newlines and tabs shown too: for a label, a title, a table cell."""
    return printable(s).replace("\n", "\\n").replace("\t", " ")


def xml_safe(s: str) -> str:
    """printable, and nothing XML 1.0 forbids (JUnit files must parse whatever was printed)."""
    s = printable(s)
    return _XML_BAD.sub(lambda m: f"\\u{ord(m.group()):04x}", s) if _XML_BAD.search(s) else s


class SafeStream:
    """A text stream that writes printable(text): the plain, quiet and verbose views write
    through one, so nothing they print can act on the terminal or a CI log viewer."""

    def __init__(self, raw):
        self.raw = raw

    def write(self, text: str) -> int:
        return self.raw.write(printable(text))

    def flush(self) -> None:
        self.raw.flush()

    def isatty(self) -> bool:
        return self.raw.isatty()

    def fileno(self) -> int:
        return self.raw.fileno()

    def __getattr__(self, name):
        return getattr(self.raw, name)


_JSON_RAW = re.compile("[\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def json_text(s: str) -> str:
    """JSON text (json.dumps(..., ensure_ascii=False)) with the characters json.dumps leaves raw
    that can still act on a terminal (DEL, C1 such as the one-byte CSI 0x9b, bidi overrides)
    written as \\uXXXX escapes: the same JSON value, inert on a screen."""
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", s) if _JSON_RAW.search(s) else s
