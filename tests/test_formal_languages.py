"""The xLSTM paper's formal languages: each task's labels against a brute-force reading of its
definition, the batches, the score, and the report through `lstmkit reproduce formal-languages`."""

import json

import numpy as np
import pytest

pytest.importorskip("numba")                   # lstmkit.reproduce's package imports the paper's learner

from lstmkit.reproduce.formal_languages import TASKS, make_batch, rescaled, train_and_test  # noqa: E402


def _brute_force(name: str, tokens: list[int]) -> int:
    if name == "parity":
        return sum(tokens) % 2
    if name == "even_pairs":
        pairs = sum(1 for a, b in zip(tokens, tokens[1:]) if (a, b) in ((0, 1), (1, 0)))
        return int(pairs % 2 == 0)
    if name == "cycle_navigation":
        position = 0
        for move in tokens:
            position = (position + {0: 0, 1: 1, 2: -1}[move]) % 5
        return position
    if name == "modular_arithmetic":
        text = str(tokens[0])
        for op, digit in zip(tokens[1::2], tokens[2::2]):
            text = str(eval(f"({text}) {'+-*'[op - 5]} {digit}") % 5)      # left to right, mod 5 after each
        return int(text)
    ones = sum(tokens)
    assert 2 * ones != len(tokens)
    return int(2 * ones > len(tokens))


@pytest.mark.parametrize("name", list(TASKS))
def test_each_tasks_labels_follow_its_definition(name):
    task = TASKS[name]
    tokens, lengths, labels = make_batch(task, np.random.default_rng(0), 300, (1, 30))
    assert tokens.shape[0] == 300 and int(lengths.min()) >= 1 and int(lengths.max()) <= 30
    for row, n, label in zip(tokens.tolist(), lengths.tolist(), labels.tolist()):
        string = [t - 1 for t in row[:n]]
        assert all(0 <= t < task.vocab for t in string) and all(t == 0 for t in row[n:])
        assert label == _brute_force(name, string)
        if name == "modular_arithmetic":
            assert n % 2 == 1 and all(t < 5 for t in string[0::2]) and all(t >= 5 for t in string[1::2])
    assert set(labels.tolist()) == set(range(task.classes))


def test_the_score_is_zero_at_chance_and_one_when_all_are_right():
    assert rescaled(0.5, 2) == 0.0 and rescaled(1.0, 5) == 1.0 and rescaled(0.2, 5) == pytest.approx(0.0)


def test_training_is_seeded_and_the_slstm_learns_parity_at_lengths_it_never_saw():
    first = train_and_test(TASKS["cycle_navigation"], "lstm", steps=20, test_count=250)
    again = train_and_test(TASKS["cycle_navigation"], "lstm", steps=20, test_count=250)
    assert first["test_accuracy"] == again["test_accuracy"] and first["final_loss"] == again["final_loss"]
    learnt = train_and_test(TASKS["parity"], "slstm", steps=1000, test_count=500)
    assert learnt["train_accuracy"] > 0.95 and learnt["test_score"] > 0.9


def test_reproduce_formal_languages_writes_its_section(tmp_path):
    from lstmkit.cli import main
    out = tmp_path / "r"
    assert main(["reproduce", "formal-languages", "--cells", "mingru", "elman", "--steps", "20", "--out",
                 str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "## The xLSTM paper's formal languages" in report and "| task | mingru | elman |" in report
    assert all(f"| {name} |" in report for name in TASKS)
    results = json.loads((out / "results.json").read_text())["formal_languages"]
    assert len(results) == 2 * len(TASKS) and "paper" not in json.loads((out / "results.json").read_text())
    with pytest.raises(SystemExit, match="argument --steps expected a positive int, got 0"):
        main(["reproduce", "formal-languages", "--steps", "0"])
