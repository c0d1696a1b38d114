"""Docker engine URLs, parsed strictly in one place: the inventory's `docker:`, DOCKER_HOST and
every Engine's base URL go through `parse`.

    unix:///var/run/docker.sock      an absolute socket path
    tcp://host[:port]                port 1-65535, digits only
    ssh://[user@]host[:port]         user and host never start with '-' (ssh would take them
                                     for options: `ssh://-oProxyCommand=…@h` ran a command here)
    npipe:////./pipe/docker_engine   Windows' named pipe (a path, like unix://)

Hosts are names (letters, digits, '.', '-', '_'), IPv4 addresses or bracketed IPv6
(`[::1]:22`). No whitespace, control characters, '%'-escapes, queries or fragments anywhere.
A bad URL is a UsageError (exit 2) naming the part that is wrong and the fix. Whatever is
accepted prints (str) as a URL that parses back to the same value, and `ssh_argv` always puts
the host after `--`."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import UsageError

SCHEMES = ("unix", "tcp", "ssh", "npipe")
FIX = ("write unix:///var/run/docker.sock, tcp://host:2376 or ssh://user@host[:port] "
       "(IPv6 in brackets: ssh://user@[fd00::1]:22)")

_USER = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.+-]{0,63}\Z")
_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})\Z")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]{2,45}\Z")
_PATH = re.compile(r"/[^\s\x00-\x1f\x7f-\x9f?#]*\Z")
_BAD_CHARS = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class EngineURL:
    scheme: str
    host: str = ""            # tcp/ssh: a name, IPv4 or IPv6 (without brackets)
    port: int | None = None
    user: str | None = None   # ssh only
    path: str = ""            # unix/npipe: the socket path

    @property
    def netloc(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        return (f"{self.user}@" if self.user else "") + h + (f":{self.port}" if self.port else "")

    def __str__(self) -> str:
        if self.scheme in ("unix", "npipe"):
            return f"{self.scheme}://{self.path}"
        return f"{self.scheme}://{self.netloc}"

    def ssh_argv(self, *options: str) -> list[str]:
        """`ssh <options> [-l user] [-p port] -- host`: the host after `--`, so nothing in it can
        be taken for an option (parse already refuses a leading '-'; this is the second lock)."""
        if self.scheme != "ssh":
            raise ValueError(f"{self} is not an ssh:// URL")
        argv = ["ssh", *options]
        if self.user:
            argv += ["-l", self.user]
        if self.port:
            argv += ["-p", str(self.port)]
        return argv + ["--", self.host]


def _bad(url: str, part: str, why: str) -> UsageError:
    shown = _BAD_CHARS.sub(lambda m: f"\\x{ord(m.group()):02x}", url)[:200]
    return UsageError(f"Docker engine URL {shown!r}: the {part} {why}", FIX)


def _port(url: str, text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 5 or not 1 <= int(text) <= 65535:
        raise _bad(url, "port", f"{text!r} is not a number from 1 to 65535")
    return int(text)


def _host(url: str, text: str) -> str:
    if text.startswith("["):
        inner, close, rest = text[1:].partition("]")
        if not close or rest:
            raise _bad(url, "host", f"{text!r} is an IPv6 address without its closing ']'"
                       if not close else f"{text!r} has text after the ']'")
        if not _IPV6.match(inner) or inner.count(":") < 2:
            raise _bad(url, "host", f"[{inner}] is not an IPv6 address")
        return inner
    if not text:
        raise _bad(url, "host", "is missing")
    if text.startswith("-"):
        raise _bad(url, "host", f"{text!r} starts with '-' (ssh would read it as an option)")
    if ":" in text:
        raise _bad(url, "host", f"{text!r} looks like an IPv6 address: put it in brackets")
    if not _HOSTNAME.match(text):
        raise _bad(url, "host", f"{text!r} is not a host name or IP address (letters, digits, "
                   "'.', '-', '_')")
    return text


def parse(url: str) -> EngineURL:
    """The EngineURL of `url`, or UsageError naming what is wrong."""
    if not isinstance(url, str) or not url:
        raise UsageError("Docker engine URL is empty", FIX)
    if _BAD_CHARS.search(url):
        raise _bad(url, "URL", "contains whitespace or control characters")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise _bad(url, "scheme", f"{scheme if sep else url!r} is not one of "
                   + ", ".join(s + "://" for s in SCHEMES))
    scheme = scheme.lower()
    if scheme in ("unix", "npipe"):
        if not _PATH.match(rest):
            raise _bad(url, "socket path", f"{rest!r} is not an absolute path "
                       f"({scheme}:///var/run/docker.sock has three slashes)")
        return EngineURL(scheme, path=rest)
    if any(c in rest for c in "?#%\\"):
        raise _bad(url, "address", "may not contain '?', '#', '%' or '\\'")
    netloc = rest[:-1] if rest.endswith("/") else rest
    user = None
    if "@" in netloc:
        if scheme != "ssh":
            raise _bad(url, "user", f"is not allowed in a {scheme}:// URL")
        user, _, netloc = netloc.rpartition("@")
        if user.startswith("-"):
            raise _bad(url, "user", f"{user!r} starts with '-' (ssh would read it as an option)")
        if not _USER.match(user):
            raise _bad(url, "user", f"{user!r} is not a user name (letters, digits, '.', '_', "
                       "'-', '+'; at most 64)")
    if "/" in netloc:
        raise _bad(url, "address", f"{rest!r} has a path ({scheme}:// takes host[:port] only)")
    port = None
    if netloc.startswith("["):
        end = netloc.find("]")
        if end != -1 and netloc[end + 1:].startswith(":"):
            port = _port(url, netloc[end + 2:])
            netloc = netloc[:end + 1]
    elif ":" in netloc and netloc.count(":") == 1:
        netloc, _, p = netloc.partition(":")
        port = _port(url, p)
    host = _host(url, netloc)
    return EngineURL(scheme, host=host, port=port, user=user)


def check(url: str) -> str:
    """`url` in its canonical spelling (str(parse(url))), or UsageError."""
    return str(parse(url))
