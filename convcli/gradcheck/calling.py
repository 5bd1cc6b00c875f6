"""Calling an implementation under test: finding it (``MODULE:FUNCTION``), calling it so that
nothing it does can crash the check, and vetting what it returns, tensor by tensor.

The calling convention (README, "Check your own conv2d"):

    backward(grad_output, x, w, *, stride, padding, dilation, groups)
        -> (grad_input, grad_weight, grad_bias)
    forward(x, w, b, *, stride, padding, dilation, groups) -> y

stride and dilation are (h, w) pairs, padding the explicit (top, bottom, left, right) 4-tuple,
groups an int; the arrays are C-contiguous copies in the check's dtype (float64 by default),
so an implementation may change them in place. A NotImplementedError skips the configuration.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

Function = Callable[..., Any]


@dataclass
class Outcome:
    """What a call gave: its value, or the exception it raised (skipped: NotImplementedError)."""

    value: Any = None
    error: str = ""
    skipped: bool = False


def call(function: Function, *args: Any, debug: bool = False, **kwargs: Any) -> Outcome:
    """Call user code; any exception (SystemExit included) becomes an Outcome naming its type
    and message (and, with debug, the traceback). What it prints goes to stderr, so that
    `--json` stays one JSON object. KeyboardInterrupt (the user pressing Ctrl-C) propagates."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return Outcome(function(*args, **kwargs))
    except NotImplementedError as error:
        return Outcome(error=_describe(error, debug=False), skipped=True)
    except (Exception, SystemExit) as error:  # noqa: BLE001  # user code: a verdict
        return Outcome(error=_describe(error, debug))


def _describe(error: BaseException, debug: bool) -> str:
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if debug:
        text += "\n" + "".join(traceback.format_exception(error)).rstrip()
    return text


def unpack(value: Any, names: tuple[str, ...]) -> tuple[list[Any], str]:
    """The returned tuple as a list of len(names) items, or a message saying what came back."""
    if isinstance(value, np.ndarray) or not isinstance(value, (tuple, list)):
        return [], (f"returned {_kind(value)}; expected a tuple of {len(names)} "
                    f"({', '.join(names)})")
    if len(value) != len(names):
        return [], (f"returned {len(value)} value{'s' if len(value) != 1 else ''}; expected "
                    f"{len(names)} ({', '.join(names)})")
    return list(value), ""


def vet(value: Any, shape: tuple[int, ...]) -> tuple[np.ndarray | None, str]:
    """One returned tensor as a float64 array of ``shape``, or why it cannot be one: not an
    array, wrong shape, not floating point, non-finite values."""
    if value is None:
        return None, "returned None"
    try:
        array = _to_numpy(value)
    except Exception as error:  # noqa: BLE001  # whatever the object's conversion raises
        return None, f"returned {_kind(value)}, not an array ({type(error).__name__}: {error})"
    if array.shape != tuple(shape):
        return None, f"returned shape {array.shape}, expected {tuple(shape)}"
    if array.dtype.kind != "f":
        return None, f"returned dtype {array.dtype}, expected floating point"
    bad = array.size - int(np.count_nonzero(np.isfinite(array)))
    if bad:
        return None, f"returned {bad:,} non-finite value{'s' if bad != 1 else ''} (NaN or inf)"
    return array.astype(np.float64, copy=False), ""


def _to_numpy(value: Any) -> np.ndarray:
    """An array from NumPy, or a framework's tensor (``.detach().cpu().numpy()`` when it has
    them), without importing the framework."""
    if not isinstance(value, np.ndarray):
        for step in ("detach", "cpu", "numpy"):
            method = getattr(value, step, None)
            if callable(method):
                value = method()
    return np.asarray(value)


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"one array of shape {value.shape}"
    return f"a {type(value).__name__}"


def load_function(spec: str, option: str = "--backward") -> Function:
    """``MODULE:FUNCTION`` -> the function. MODULE is a dotted name importable from the current
    folder, or a path to a .py file. A mistake here is the user's: an InputError naming it."""
    module_name, sep, name = spec.rpartition(":")
    if not sep or not module_name or not name:
        raise InputError(f"{option} takes MODULE:FUNCTION (e.g. my_conv:backward or "
                         f"path/to/my_conv.py:backward), got {spec!r}")
    module = _import(module_name, option)
    function = module
    for part in name.split("."):
        function = getattr(function, part, None)
        if function is None:
            raise InputError(f"{option}: {module_name} has no {name!r}; check the name after "
                             "the colon")
    if not callable(function):
        raise InputError(f"{option}: {spec} is a {type(function).__name__}, not a function")
    return function  # type: ignore[no-any-return]


def _import(module_name: str, option: str) -> Any:
    path = Path(module_name)
    try:
        if module_name.endswith(".py"):
            if not path.is_file():
                raise InputError(f"{option}: no such file {module_name!r}")
            spec = importlib.util.spec_from_file_location(f"_convcli_user_{path.stem}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            return module
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        return importlib.import_module(module_name)
    except InputError:
        raise
    except ModuleNotFoundError as error:
        raise InputError(f"{option}: cannot import {module_name!r} ({error}); give a module "
                         "importable from this folder or a path ending in .py") from error
    except Exception as error:
        raise InputError(f"{option}: importing {module_name!r} raised "
                         f"{type(error).__name__}: {error}") from error
