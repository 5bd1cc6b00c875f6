"""The language-agnostic mode: each configuration written as an .npz for an implementation in
any language, and its answers read back as if a Python backward had returned them.

DIR/NAME.npz holds x (N, C, H, W), w (O, C/groups, KH, KW), b (O,) (absent when the case has no
bias), grad_output (N, O, OH, OW), stride (2,), padding (4,: top, bottom, left, right),
dilation (2,) and groups (). DIR/INDEX.md lists them. The implementation writes
DIR/answers/NAME.npz with grad_input, grad_weight, grad_bias (and optionally y); an answer file
with a ``skipped`` entry (its reason) skips the configuration.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..geometry import Geometry, resolve
from ..outputs import Write, npz_writer, text_writer, write_all
from .data import CaseData

INDEX = "INDEX.md"
ANSWERS = "answers"


def write_cases(folder: Path, cases: list[CaseData], command: str) -> list[Path]:
    """Write each case as folder/NAME.npz and the index, each file whole or not at all
    (outputs.write_all), and make folder/answers; -> the files written."""
    check_folder(folder)
    (folder / ANSWERS).mkdir(exist_ok=True)
    writers: list[tuple[Path, Write]] = []
    for data in cases:
        arrays = {"x": data.x, "w": data.w, "grad_output": data.g,
                  "stride": np.array(data.geometry.stride), "padding": np.array(data.geometry.pad),
                  "dilation": np.array(data.geometry.dilation), "groups": np.array(data.groups)}
        if data.b is not None:
            arrays["b"] = data.b
        if data.kind != "conv2d":
            arrays["kind"] = np.array(data.kind)
        for key, value in data.extra.items():
            arrays[key] = np.array(value)
        writers.append((folder / f"{data.name}.npz", npz_writer(**arrays)))
    writers.append((folder / INDEX, text_writer(_index_text(cases, command))))
    write_all(writers)
    return [path for path, _ in writers]


def check_folder(folder: Path) -> None:
    """The folder for --write-cases: made if missing (its parent must exist), and writable;
    checked before any work."""
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--write-cases: {folder} is a file; give a folder")
    if not folder.exists():
        if not folder.parent.is_dir():
            raise InputError(f"--write-cases: the folder {folder.parent} does not exist; "
                             "create it first")
        try:
            folder.mkdir()
        except OSError as error:
            raise InputError(f"--write-cases: cannot create {folder} ({error.strerror}); "
                             "choose a writable folder") from error
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise InputError(f"--write-cases: cannot write in {folder} ({error.strerror}); "
                         "choose a writable folder") from error


def _index_text(cases: list[CaseData], command: str) -> str:
    lines = [
        "# gradcheck cases", "",
        (f"Written by `{command}`. Each NAME.npz holds x (N, C, H, W), w (O, C/groups, KH, KW), "
        "b (O,) (absent: no bias), grad_output (N, O, OH, OW) and the geometry: stride (h, w), "
        "padding (top, bottom, left, right), dilation (h, w), groups."), "",
        ("For each case, write answers/NAME.npz with grad_input (x's shape), grad_weight "
        "(w's shape) and grad_bias (O,), and optionally y = conv2d(x, w, b); write an entry "
        "`skipped` (the reason) for a case your implementation does not support. Then run "
        "`convcli gradcheck --answers DIR`."), "",
        "| case | x | w | bias | stride | padding | dilation | groups |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for d in cases:
        lines.append(f"| {d.name} | {d.x.shape} | {d.w.shape} | {'yes' if d.b is not None else 'no'}"
                     f" | {d.geometry.stride} | {d.geometry.pad} | {d.geometry.dilation} | "
                     f"{d.groups} |")
    return "\n".join(lines) + "\n"


def read_cases(folder: Path, names: list[str] | tuple[str, ...] | None = None) -> list[CaseData]:
    """The cases written in folder (all, or those named), as CaseData."""
    if not folder.is_dir():
        raise InputError(f"--answers: no such folder {str(folder)!r}; write the cases first "
                         "with --write-cases")
    paths = sorted(folder.glob("*.npz"))
    if names:
        missing = [n for n in names if not (folder / f"{n}.npz").is_file()]
        if missing:
            raise InputError(f"--answers: no case {', '.join(map(repr, missing))} in {folder}")
        paths = [folder / f"{n}.npz" for n in names]
    if not paths:
        raise InputError(f"--answers: {folder} holds no case files (NAME.npz); write them with "
                         "--write-cases")
    return [_read_case(path) for path in paths]


def _read_case(path: Path) -> CaseData:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in f.files}
        x, w, g = arrays["x"], arrays["w"], arrays["grad_output"]
        top, bottom, left, right = (int(v) for v in arrays["padding"])
        pad = (top, bottom, left, right)
        geometry = resolve(x.shape[2:], w.shape[2:], stride=tuple(map(int, arrays["stride"])),
                           padding=pad, dilation=tuple(map(int, arrays["dilation"])))
        groups = int(arrays["groups"])
        kind = str(arrays.get("kind", "conv2d"))
        extra = {key: (str(arrays[key]) if key == "padding_mode" else bool(arrays[key])
                       if key == "flip" else tuple(int(v) for v in arrays[key]))
                 for key in ("padding_mode", "flip", "output_padding") if key in arrays}
        if kind == "conv_transpose2d":
            from ..transposed import output_shape
            y_shape, _ = output_shape(x, w, None, tuple(map(int, arrays["stride"])), pad,
                                      extra.get("output_padding", 0), groups,
                                      tuple(map(int, arrays["dilation"])))
            geometry = Geometry(x.shape[2:], w.shape[2:], geometry.stride, geometry.dilation,
                                pad, (y_shape[2], y_shape[3]))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise InputError(f"{path} is not a case file written by --write-cases ({error}); "
                         "write the cases again") from error
    return CaseData(path.stem, x, w, arrays.get("b"), g, geometry, groups, kind=kind,
                    extra=extra)


def answer_functions(folder: Path, name: str) -> tuple[Callable[..., Any], Callable[..., Any] | None]:
    """A backward and (when the answer has y) a forward that return the answer file's arrays,
    so the answers are graded exactly as a Python implementation would be."""
    path = folder / ANSWERS / f"{name}.npz"
    if not path.is_file():
        def missing(*args: Any, **kwargs: Any) -> Any:
            raise FileNotFoundError(f"no answer file {ANSWERS}/{name}.npz")
        return missing, None
    try:
        with np.load(path, allow_pickle=False) as f:
            answer = {key: f[key] for key in f.files}
    except Exception as error:  # noqa: BLE001  # a corrupt answer is a failed case, not a crash
        reason = f"cannot read {ANSWERS}/{name}.npz: {type(error).__name__}: {error}"

        def unreadable(*args: Any, **kwargs: Any) -> Any:
            raise ValueError(reason)
        return unreadable, None

    def backward(*args: Any, **kwargs: Any) -> Any:
        if "skipped" in answer:
            raise NotImplementedError(str(answer["skipped"]))
        return tuple(answer.get(key) for key in ("grad_input", "grad_weight", "grad_bias"))

    def forward(*args: Any, **kwargs: Any) -> Any:
        return answer["y"]

    return backward, (forward if "y" in answer else None)
