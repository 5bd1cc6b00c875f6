"""Exercises from a walkthrough: a worksheet that shows the inputs (the padded x, w and dL/dy)
and asks for some values of y, dL/dw, dL/db and dL/dx, chosen by the student's name (the same
name always gets the same questions; another name, others), with an answer key for the
teacher; and the marking of a student's answers against that key.

    make_quiz(walk, count, student) -> Quiz          the questions and their answers
    worksheet(walk, quiz) -> [Step]                   what the student sees
    grade(key, answers) -> [Mark]                     ✓ or ✗ per question
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .arrays import pad_mask
from .grids import channel_grids, kernel_grids
from .model import Grid, Step, Walkthrough
from .text import tap_names

ASKED = ("y", "dL/dw", "dL/db", "dL/dx")
TOLERANCE = 1e-6                # relative: answers are worked by hand to a few digits


@dataclass(frozen=True)
class Question:
    number: int
    array: str                  # one of ASKED
    index: tuple[int, ...]      # into walk.arrays[array]
    label: str                  # "y(1,2)", "dL/dw[b]", "dL/dx(0,3)", ...
    answer: float


@dataclass(frozen=True)
class Quiz:
    student: str
    questions: list[Question]

    def key(self, walk: Walkthrough) -> dict[str, Any]:
        """The answer key as JSON: who, the geometry, each question and its answer."""
        return {"student": self.student, "geometry": walk.to_json()["geometry"],
                "questions": [{"number": q.number, "label": q.label, "array": q.array,
                               "index": list(q.index), "answer": q.answer}
                              for q in self.questions]}


def make_quiz(walk: Walkthrough, count: int, student: str) -> Quiz:
    """count questions (1..20) spread over y, dL/dw, dL/db and dL/dx, drawn by a generator
    seeded with the student's name."""
    if not 1 <= count <= 20:
        raise InputError(f"--quiz must be 1 to 20 questions, got {count}")
    if not student.strip():
        raise InputError("--student must name the student (their questions depend on it)")
    seed = int.from_bytes(hashlib.sha256(student.encode("utf-8")).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    pool = [(name, index) for name in ASKED for index in np.ndindex(*walk.arrays[name].shape)]
    chosen: list[tuple[str, tuple[int, ...]]] = []
    order = rng.permutation(len(pool))
    for k in range(count):                     # round-robin over the kinds, then any cell
        kind = ASKED[k % len(ASKED)]
        pick = next((pool[i] for i in order if pool[i][0] == kind and pool[i] not in chosen),
                    None) or next((pool[i] for i in order if pool[i] not in chosen), None)
        if pick is None:
            break
        chosen.append(pick)
    names = tap_names(*walk.geometry.kernel_size)
    questions = [Question(n, name, tuple(int(v) for v in index), _label(walk, name, index, names),
                          float(walk.arrays[name][index]))
                 for n, (name, index) in enumerate(chosen, start=1)]
    return Quiz(student, questions)


def _label(walk: Walkthrough, name: str, index: tuple[int, ...], names: list[str]) -> str:
    many_out = walk.arrays["w"].shape[0] > 1
    many_in = walk.arrays["x"].shape[1] > 1
    if name == "y":
        _, o, i, j = index
        return f"y{f'[o={o}]' if many_out else ''}({i},{j})"
    if name == "dL/dx":
        _, c, i, j = index
        return f"dL/dx{f'[c={c}]' if many_in else ''}({i},{j})"
    if name == "dL/db":
        return f"dL/db[o={index[0]}]"
    o, c, r, q = index
    kw = walk.geometry.kernel_size[1]
    return f"dL/dw[o={o}, c={c}, {names[r * kw + q]}]" if many_out or many_in else \
        f"dL/dw[{names[r * kw + q]}]"


def worksheet(walk: Walkthrough, quiz: Quiz) -> list[Step]:
    """The student's page: the inputs as grids, the rules, and the numbered questions (no
    answers anywhere on it)."""
    a = walk.arrays
    g = walk.geometry
    top, bottom, left, right = g.pad
    names = tap_names(*g.kernel_size)
    (sh, sw), (dh, dw) = g.stride, g.dilation
    text = [
        (f"Exercise for {quiz.student}. y = x ⋆ w (a cross-correlation: the kernel is not "
        f"flipped), stride {sh},{sw}, dilation {dh},{dw}, padding (top, bottom, left, right) = "
        f"({top}, {bottom}, {left}, {right}), drawn ·, groups = {walk.groups}, no bias. "
        "The loss's gradient dL/dy is given; work out each value below by hand."),
        ("Answer with one number per question, in a JSON file: {\"1\": 20, \"2\": -3.5, ...}; "
        "then `convcli explain --grade answers.json --key KEY.json` marks it."),
    ]
    grids = channel_grids("x, padded", a["x_padded"][0], dim=pad_mask(g), focus=(0, 0))
    grids += kernel_grids("w", a["w"], names)
    grids += channel_grids("dL/dy", a["dL/dy"][0], focus=(0, 0), prefix="o")
    questions = Grid("questions", np.array([["?"] for _ in quiz.questions], dtype=object),
                     [f"{q.number}. {q.label}" for q in quiz.questions], ["answer"],
                     max_rows=len(quiz.questions))
    return [Step("Exercise: forward and backward by hand", text, [*grids, questions])]


@dataclass(frozen=True)
class Mark:
    number: int
    label: str
    given: float | None
    answer: float

    @property
    def right(self) -> bool:
        return self.given is not None and math.isclose(self.given, self.answer,
                                                       rel_tol=TOLERANCE, abs_tol=TOLERANCE)


def load_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist: check the path") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{what} {path} is not a JSON file ({error})") from None


def grade(key: dict[str, Any], answers: Any) -> list[Mark]:
    """Each question of the key against the answers ({"1": 20, ...}, or a list in order)."""
    try:
        questions = [(int(q["number"]), str(q["label"]), float(q["answer"]))
                     for q in key["questions"]]
    except (KeyError, TypeError, ValueError):
        raise InputError("--key is not an answer key written by convcli explain --quiz") from None
    if isinstance(answers, list):
        answers = {str(n): v for n, v in enumerate(answers, start=1)}
    if not isinstance(answers, dict):
        raise InputError('answers must be a JSON object {"1": 20, "2": -3.5, ...} or a list')
    marks = []
    for number, label, answer in questions:
        given = answers.get(str(number))
        try:
            value = None if given is None else float(given)
        except (TypeError, ValueError):
            value = None
        marks.append(Mark(number, label, value, answer))
    return marks
