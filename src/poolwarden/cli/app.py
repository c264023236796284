"""The ``poolwarden`` command group, and how any failure becomes one line and exit 2."""

from __future__ import annotations

import logging
import sys
import traceback

import click

from .. import __version__
from . import missing_extra
from .demo import demo_command
from .doctor import doctor_command
from .errors import CommandError
from .options import State, debug_option
from .size import size_command
from .watch import watch_command

__all__ = ["poolwarden", "run"]


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Run 'poolwarden COMMAND --help' for a command's options. URLs are SQLAlchemy's: "
    "mysql+pymysql://, mysql+mysqldb://, mysql+mysqlconnector://, postgresql+psycopg://, "
    "postgresql+psycopg2://; the password never appears in any output.",
)
@click.version_option(__version__, "-V", "--version", prog_name="poolwarden")
@debug_option
def poolwarden() -> None:
    """See what goes wrong with database connection pools, check a pool's settings
    against the server, and measure the pool size a workload needs.

    \b
      poolwarden demo                the failures users hit, live: QueuePool vs poolwarden
      poolwarden doctor URL          pool settings against the server's limits and timeouts
      poolwarden size URL --query Q  load test: throughput and latency per pool size
      poolwarden watch ENDPOINT      running applications' pools, live, from their metrics
    """


poolwarden.add_command(demo_command)
poolwarden.add_command(doctor_command)
poolwarden.add_command(size_command)
poolwarden.add_command(watch_command)


def _fail(state: State, message: str, exc: BaseException | None = None) -> int:
    """Print ``poolwarden: message`` (with the traceback before it under --debug)."""
    if state.debug and exc is not None:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        print(state.redact(text), file=sys.stderr, end="")
    print(state.redact(f"poolwarden: {message}"), file=sys.stderr)
    return 2


def run(argv: list[str] | None = None) -> int:
    """Run the command line ``argv``; return the exit status (2 for any bad input)."""
    state = State()
    # poolwarden logs through the "poolwarden" logger; without a handler Python would
    # print its warnings on stderr. The command reports what matters itself.
    logger = logging.getLogger("poolwarden")
    level = logger.level
    state.handlers.append(logging.NullHandler())
    logger.addHandler(state.handlers[0])
    try:
        return _run(state, argv)
    finally:
        for handler in state.handlers:
            logger.removeHandler(handler)
        logger.setLevel(level)


def _run(state: State, argv: list[str] | None) -> int:
    try:
        status = poolwarden.main(
            args=argv, prog_name="poolwarden", standalone_mode=False, obj=state
        )
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
        return 0
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        return _fail(state, exc.format_message() + hint, exc)
    except click.ClickException as exc:
        return _fail(state, exc.format_message(), exc)
    except click.Abort as exc:
        _fail(state, "interrupted", exc)
        return 130
    except CommandError as exc:
        return _fail(state, str(exc), exc)
    except ModuleNotFoundError as exc:
        line = missing_extra(exc)
        if line is None:
            return _fail(state, f"unexpected error: {exc} (run with --debug for details)", exc)
        return _fail(state, line.removeprefix("poolwarden: "), exc)
    except Exception as exc:
        return _fail(
            state,
            f"unexpected error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            exc,
        )
    return status if isinstance(status, int) else 0
