"""Options shared by the subcommands, and the checks of their values."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO, TypeVar, cast

import click
from rich.console import Console

from .errors import passwords_in, redact
from .target import Target

__all__ = ["IntList", "State", "connect_timeout_option", "debug_option", "fleet_options"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class State:
    """What the whole run shares: ``--debug`` and the passwords never to print."""

    debug: bool = False
    secrets: set[str] = field(default_factory=set)
    #: Log handlers this run added, removed when it ends.
    handlers: list[logging.Handler] = field(default_factory=list)

    def target(self, url_text: str, connect_timeout: float = 5.0) -> Target:
        """Parse ``url_text``, remembering its password first so no message shows it."""
        self.secrets |= passwords_in(url_text)
        return Target(url_text, connect_timeout)

    def redact(self, text: str) -> str:
        """``text`` without any password this run has seen."""
        return redact(text, self.secrets)

    def console(self, stderr: bool = False) -> Console:
        """A rich console on stdout (or stderr) whose every line goes through
        :meth:`redact`: a driver's message could quote what it was given."""
        stream = sys.stderr if stderr else sys.stdout
        return Console(
            file=cast(TextIO, _RedactingFile(stream, self)), highlight=False, markup=False
        )


class _RedactingFile:
    """A text stream that hides the run's passwords in what is written to it."""

    def __init__(self, stream: TextIO, state: State) -> None:
        self._stream = stream
        self._state = state

    def write(self, text: str) -> int:
        self._stream.write(self._state.redact(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"


class _RedactingFilter(logging.Filter):
    def __init__(self, state: State) -> None:
        super().__init__()
        self._state = state

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._state.redact(record.getMessage())
        record.args = ()
        return True


def _enable_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value:
        return
    state = ctx.find_object(State)
    if state is None or state.debug:
        return
    state.debug = True
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
    handler.addFilter(_RedactingFilter(state))
    logger = logging.getLogger("poolwarden")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    state.handlers.append(handler)


def debug_option(function: F) -> F:
    """``--debug``: a traceback with errors, and poolwarden's debug log on stderr."""
    option = click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_enable_debug,
        help="On an error, print the traceback too (passwords hidden); log poolwarden's "
        "debug messages to stderr.",
    )
    return option(function)


def connect_timeout_option(function: F) -> F:
    """``--connect-timeout``: how long a connect may take."""
    option = click.option(
        "--connect-timeout",
        type=click.FloatRange(min=1, max=300),
        default=5.0,
        show_default=True,
        metavar="SECONDS",
        help="Give up connecting after this long (unless the URL sets connect_timeout).",
    )
    return option(function)


if TYPE_CHECKING:
    _ParamType = click.ParamType[list[int], Any]
else:  # click.ParamType is generic only in recent Click releases
    _ParamType = click.ParamType


class IntList(_ParamType):
    """A comma-separated list of whole numbers within bounds, e.g. ``1,4,16``; returned
    sorted, without repeats."""

    name = "list"

    def __init__(self, minimum: int, maximum: int, example: str) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.example = example

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "N,N,..."

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, list):
            return value
        numbers = []
        for part in str(value).split(","):
            text = part.strip()
            if not text.isdigit() or not self.minimum <= int(text) <= self.maximum:
                self.fail(
                    f"{value!r}: expected whole numbers from {self.minimum} to {self.maximum} "
                    f"separated by commas, e.g. {self.example}",
                    param,
                    ctx,
                )
            numbers.append(int(text))
        return sorted(set(numbers))


def fleet_options(processes_help: str, instances_help: str) -> Callable[[F], F]:
    """``--processes P`` (or ``--workers P``, the name web servers use) and
    ``--instances I``: how many pools like this one the fleet runs, for the server's
    connection budget."""
    processes = click.option(
        "--processes",
        "--workers",
        "processes",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        metavar="P",
        help=processes_help,
    )
    instances = click.option(
        "--instances",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        metavar="I",
        help=instances_help,
    )

    def decorate(command: F) -> F:
        return processes(instances(command))

    return decorate
