"""The one place where an exception becomes an exit code: a user's mistake (InputError) is one
line on stderr and exit 2; anything else is convcli's bug, exit 1 with "internal error", and
`--debug` (or CONVCLI_DEBUG=1) shows its traceback. Click's own usage errors exit 2 too."""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer
import typer.core
from rich.console import Console
from rich.markup import escape

from ..errors import InputError

Command = TypeVar("Command", bound=Callable[..., Any])

state = {"debug": False}


def stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, then exit (2: the user can fix it)."""
    stderr().print(f"[bold red]error:[/] {escape(message)}", markup=True)
    raise typer.Exit(code)


# Typer >= 0.20 carries its own copy of Click (typer.core._click); older ones use click itself.
_click: Any = getattr(typer.core, "_click", None) or importlib.import_module("click")
UsageError: type[Exception] = _click.exceptions.UsageError
NoArgsIsHelpError: type[Exception] = getattr(_click.exceptions, "NoArgsIsHelpError",
                                             type("NeverRaised", (Exception,), {}))


def usage_error(error: Any) -> NoReturn:
    """Click's own usage error (an unknown option, a value not among the choices) as one line
    that says where the help is, exit 2."""
    where = f" (see `{error.ctx.command_path} --help`)" if error.ctx is not None else ""
    fail(" ".join(error.format_message().split()) + where)


def debugging() -> bool:
    return state["debug"] or os.environ.get("CONVCLI_DEBUG", "") not in ("", "0")


def handle_errors(command: Command) -> Command:
    """Turn a user's mistake into one line and exit 2, an internal error into exit 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except InputError as error:
            if debugging():
                raise
            fail(str(error).replace("\n", " "))
        except KeyboardInterrupt:
            fail("interrupted; no output file was changed", 130)
        except Exception as error:
            if debugging():
                raise
            fail(f"internal error: {type(error).__name__}: {error} (run with --debug for "
                 "the traceback, and please report it)", 1)

    return wrapper  # type: ignore[return-value]
