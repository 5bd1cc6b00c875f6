"""explain --quiz / --grade: a worksheet per student (its questions drawn from the name), an
answer key equal to the core's numbers, and the marking of a student's answers."""

import json

import pytest
from typer.testing import CliRunner

from convcli import conv2d, conv2d_backward
from convcli.cli import app
from convcli.errors import InputError
from convcli.teach import walkthrough
from convcli.teach.quiz import grade, make_quiz


def run(*args, expect=0):
    result = CliRunner().invoke(app, ["explain", *map(str, args)])
    assert result.exit_code == expect, result.output
    return result


def test_each_student_gets_their_own_questions_and_the_key_is_right():
    walk = walkthrough(stride=2)
    alice, again, bob = (make_quiz(walk, 8, name) for name in ("alice", "alice", "bob"))
    assert alice == again and alice.questions != bob.questions
    assert {q.array for q in alice.questions} == {"y", "dL/dw", "dL/db", "dL/dx"}
    x, w, dy = walk.arrays["x"], walk.arrays["w"], walk.arrays["dL/dy"]
    options = {"stride": 2, "padding": (1, 0, 1, 0)}
    arrays = {"y": conv2d(x, w, **options)}
    arrays["dL/dx"], arrays["dL/dw"], arrays["dL/db"] = conv2d_backward(dy, x, w, **options)
    for q in alice.questions:
        assert q.answer == arrays[q.array][q.index]
    with pytest.raises(InputError, match="1 to 20"):
        make_quiz(walk, 0, "alice")


def test_quiz_then_grade(tmp_path):
    key = tmp_path / "key.json"
    sheet = run("--quiz", 4, "--student", "alice", "--key", key).stdout
    assert "Exercise for alice" in sheet and "1. " in sheet and "4. " in sheet
    written = json.loads(key.read_text())
    assert written["student"] == "alice" and len(written["questions"]) == 4
    answers = {str(q["number"]): q["answer"] for q in written["questions"]}
    right = tmp_path / "right.json"
    right.write_text(json.dumps(answers))
    assert "4 of 4 right" in run("--grade", right, "--key", key).stdout
    answers["2"] += 1
    del answers["3"]
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(answers))
    out = run("--grade", wrong, "--key", key, expect=1).stdout
    assert "2 of 4 right" in out and "✗ (the answer is" in out and "no answer" in out
    data = json.loads(run("--grade", wrong, "--key", key, "--json", expect=1).stdout)
    assert [m["right"] for m in data["marks"]] == [True, False, False, True]


def test_grade_accepts_a_list_and_marks_to_a_tolerance():
    key = {"questions": [{"number": 1, "label": "y(0,0)", "answer": 0.1 + 0.2},
                         {"number": 2, "label": "dL/db[o=0]", "answer": 10.0}]}
    marks = grade(key, [0.3, "ten"])
    assert [m.right for m in marks] == [True, False] and marks[1].given is None


@pytest.mark.parametrize(("args", "message"), [
    (["--quiz", 3], "--quiz writes its answers to --key"),
    (["--quiz", 3, "--key", "k.json", "--json"], "do not go with --quiz"),
    (["--key", "k.json"], "--key goes with --quiz"),
    (["--grade", "a.json"], "--grade needs the answer key"),
    (["--grade", "missing.json", "--key", "also-missing.json"], "does not exist"),
    (["--quiz", 30, "--key", "k.json"], "1 to 20 questions"),
])
def test_quiz_mistakes_are_one_line(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = run(*args, expect=2)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "k.json").exists()


def test_a_broken_key_is_an_input_error(tmp_path):
    (tmp_path / "key.json").write_text('{"questions": [{"number": "x"}]}')
    (tmp_path / "a.json").write_text("{}")
    result = run("--grade", tmp_path / "a.json", "--key", tmp_path / "key.json", expect=2)
    assert "not an answer key written by convcli explain --quiz" in result.output
