"""The convcli command line: thin commands that parse options, call one library function and
render its result. No maths here.

The Typer app is made here and each command lives in a module of its own (forward.py,
backward.py, kernels.py, explain.py, gradcheck.py, fit.py); options.py holds the options they
share, summary.py turns results into tables or JSON, errors.py turns exceptions into exit codes.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .. import __version__
from . import backward, explain, fit, forward, gradcheck, kernels
from .errors import NoArgsIsHelpError, UsageError, fail, state, usage_error


class _Group(TyperGroup):
    """Click takes any word that starts with "-" for an option; a negative number (an inline
    kernel "-1 0 1; -2 0 2; -1 0 1", --bias -0.5) is a value, so it gets a leading space. A
    usage error, here or in a command, is one line on stderr."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, [" " + a if re.match(r"-[\d.]", a) else a
                                            for a in args])
        except NoArgsIsHelpError:
            raise
        except UsageError as error:
            usage_error(error)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except UsageError as error:
            usage_error(error)


def _flags_take_no_value() -> None:
    """Typer 0.29's rich help writes a flag's type as `<bool>` (--json <bool>), as if it took a
    value; a flag takes none, so its type column stays empty (every option with a value keeps
    its own)."""
    option = getattr(typer.core, "TyperOption", None)
    shown = getattr(option, "display_type_rich", None)
    if option is None or shown is None or getattr(shown, "convcli", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> Any:
        return None if getattr(self, "is_flag", False) and self.metavar is None else shown(self, ctx)

    display_type_rich.convcli = True  # type: ignore[attr-defined]
    option.display_type_rich = display_type_rich


_flags_take_no_value()

app = typer.Typer(
    cls=_Group,
    name="convcli",
    help="Compute, check and teach the forward and backward passes of 2-D convolution.\n\n"
    "Example: convcli forward samples/camera.png sobel-x --png edges.png",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"convcli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an internal "
                                        "error (or set CONVCLI_DEBUG=1).")] = False,
    max_bytes: Annotated[float | None, typer.Option(
        "--max-bytes", help="The largest array convcli will allocate, in bytes (default: the "
        "memory available now; or set CONVCLI_MAX_BYTES).", show_default=False)] = None,
) -> None:
    """Compute, check and teach the forward and backward passes of 2-D convolution.

    Arrays use PyTorch's layout: x (N, C, H, W), w (O, C/groups, KH, KW), y (N, O, OH, OW);
    the forward pass is a cross-correlation (the kernel is not flipped).
    """
    state["debug"] = debug
    if max_bytes is not None:
        if not 0 < max_bytes < float("inf"):
            fail(f"--max-bytes must be a positive number of bytes, got {max_bytes}")
        os.environ["CONVCLI_MAX_BYTES"] = str(int(max_bytes))


app.command(epilog=forward.EXAMPLE)(forward.forward)
app.command(epilog=backward.EXAMPLE)(backward.backward)
app.command(epilog=kernels.EXAMPLE)(kernels.kernels)
app.command(help=explain.HELP, epilog=explain.EXAMPLE)(explain.explain)
app.command(help=gradcheck.HELP, epilog=gradcheck.EXAMPLE)(gradcheck.gradcheck)
app.command("fit", help=fit.HELP, epilog=fit.EXAMPLE)(fit.fit)


def main() -> None:
    """The console script's entry point."""
    app()
