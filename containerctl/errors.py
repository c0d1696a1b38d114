"""One exception tree. Every expected failure is a ContainerctlError: a one-line cause and a
one-line fix; the CLI prints both and exits with `exit_code` (2 = bad input or a host that cannot
do what was asked, 1 = a stage ran and failed)."""
from __future__ import annotations


class ContainerctlError(Exception):
    exit_code = 2

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int | None = None):
        super().__init__(message)
        from .textsafe import printable     # a name, a path or a label the user typed is
        message = printable(message)        # printed: nothing in it may act on the terminal
        self.message = message.strip().splitlines()[0] if message.strip() else message
        self.hint = printable(hint) if hint else hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.message if not self.hint else f"{self.message} (fix: {self.hint})"


class UsageError(ContainerctlError):
    """Bad command-line input."""


class ProfileError(ContainerctlError):
    """A profile, overlay or inventory file is malformed (carries file:line)."""


class ImageError(ContainerctlError):
    """An image spec or template is wrong, or a build failed."""


class HostError(ContainerctlError):
    """The host or its engine cannot do what the profile asks."""


class EngineError(ContainerctlError):
    """The Docker engine is unreachable or refused an operation."""


class NotFound(ContainerctlError):
    """A container, image, run or result that was named does not exist."""


class StageError(ContainerctlError):
    """A stage failed, timed out or was interrupted (exit 1: the tool worked, the test did not)."""

    exit_code = 1
