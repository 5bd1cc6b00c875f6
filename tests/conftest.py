import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(20261127)


def _build_commands_once() -> None:
    """Typer's CliRunner turns the app into a click command on every invoke, resolving every
    command's annotations again (~2 ms each, ~2 s a run); the command is the same each time."""
    import functools

    import typer.testing

    typer.testing._get_command = functools.lru_cache(maxsize=None)(typer.testing._get_command)


_build_commands_once()
