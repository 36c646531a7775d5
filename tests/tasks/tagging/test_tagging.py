"""Sequence tagging: the CoNLL reader, the Brown tag sets and split, the tagger model, and the
``tagging`` task end to end through the CLI on tiny generated files (the real corpora are
exercised in the ``data`` tests at the end)."""

import csv
import json
import random

import pytest
import torch

from lstmkit.data import tagged
from lstmkit.data.tagged import Sentence, brown_split, brown_tag, parse_conll, read_conll
from lstmkit.layers import allowed_transitions
from lstmkit.models import CharCNN, SequenceTagger

# ---------------------------------------------------------------------------------------------
# reading files


def test_conll_reader_words_first_tags_last_and_where_each_sentence_starts():
    lines = ["-DOCSTART- O", "", "EU NNP B-ORG", "rejects VBZ O", "", "", "#Linux\tO", "rocks\tO", ""]
    first, second = parse_conll(lines, "f")
    assert first == Sentence(("EU", "rejects"), ("B-ORG", "O"), "f line 3")
    assert second.words == ("#Linux", "rocks") and second.where == "f line 7"     # a hashtag is a word


def test_conllu_reader_takes_form_and_upos_and_skips_comments_and_multiword_lines():
    row = "{}\t{}\t_\t{}\t_\t_\t0\troot\t_\t_"
    lines = ["# sent_id = a:1", "# text = Ona bak", "1-2\tOnabak\t_\t_\t_\t_\t_\t_\t_\t_", row.format(1, "Ona", "PRON"),
             row.format(2, "bak", "VERB"), "2.1\tx\t_\tX\t_\t_\t_\t_\t_\t_", "", "# sent_id = a:2",
             row.format(1, ".", "PUNCT")]
    first, second = parse_conll(lines, "u")
    assert first.words == ("Ona", "bak") and first.tags == ("PRON", "VERB") and second.tags == ("PUNCT",)


def test_conll_reader_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(ValueError, match=r"f line 2: expected a word and its tag separated by whitespace, got 'alone'"):
        parse_conll(["the DET", "alone", ""], "f")
    with pytest.raises(ValueError, match="f line 2: expected the 10 tab-separated columns of CoNLL-U"):
        parse_conll(["1\ta\t_\tX\t_\t_\t0\t_\t_\t_", "2\tb\tX"], "f")
    (tmp_path / "empty.conll").write_text("\n\n")
    with pytest.raises(ValueError, match="expected sentences .* got none"):
        read_conll(tmp_path / "empty.conll")
    (tmp_path / "latin1.conll").write_bytes("the D\ncaf\xe9 N\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.conll' line 2 is not UTF-8 text \(byte 4 of the line"):
        read_conll(tmp_path / "latin1.conll")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_conll(tmp_path / "nowhere.conll")


# ---------------------------------------------------------------------------------------------
# Brown's tags and split


@pytest.mark.parametrize("raw, full, universal", [
    ("np-tl", "np", "NOUN"), ("nn-tl-hl", "nn", "NOUN"), ("fw-nn", "nn", "NOUN"), ("fw-in+at", "in+at", "ADP"),
    ("ppss+md", "ppss+md", "PRON"), ("md*", "md*", "VERB"), ("np$", "np$", "NOUN"), ("pp$$", "pp$$", "PRON"),
    ("*", "*", "ADV"), ("cs", "cs", "ADP"), ("to", "to", "PRT"), ("``", "``", "."), ("fw-*", "*", "ADV"),
    ("abn", "abn", "DET"), ("od", "od", "ADJ"), ("nil", "nil", "X")])
def test_brown_tags_normalised_and_universal(raw, full, universal):
    assert brown_tag(raw, "brown") == full and brown_tag(raw, "universal") == universal


def test_brown_tag_errors():
    with pytest.raises(ValueError, match="argument 'tagset' expected one of"):
        brown_tag("nn", "penn")
    with pytest.raises(ValueError, match="no universal tag for the Brown tag 'zz'"):
        brown_tag("zz", "universal")


def test_brown_split_is_by_file_within_each_genre_and_deterministic():
    names = [f"c{g}{i:02d}" for g, n in (("a", 44), ("m", 6), ("r", 9)) for i in range(1, n + 1)]
    split = brown_split(reversed(names))
    assert split == brown_split(names)
    assert split["test"] == ["ca41", "ca42", "ca43", "ca44", "cm06", "cr09"]
    assert split["valid"] == ["ca37", "ca38", "ca39", "ca40", "cm05", "cr08"]
    assert sorted(sum(split.values(), [])) == sorted(names)


# ---------------------------------------------------------------------------------------------
# the model


def _tagger(output="crf", **options):
    torch.manual_seed(0)
    encoder = CharCNN(20, embedding_size=4, filters=5)
    return SequenceTagger("lstm", 30, 6, 4, embedding_size=5, output=output, char_encoder=encoder,
                          **options).double()


def _batch(B=3, T=5, L=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([5, 2, 4])[:B]
    words = torch.randint(2, 30, (B, T), generator=g)
    chars = torch.randint(1, 20, (B, T, L), generator=g)
    char_lengths = torch.randint(1, L + 1, (B, T), generator=g)
    for b, n in enumerate(lengths.tolist()):
        words[b, n:] = 0
        chars[b, n:] = 0
        char_lengths[b, n:] = 0
    return words, lengths, dict(chars=chars, char_lengths=char_lengths)


@pytest.mark.parametrize("output", ["crf", "softmax"])
def test_padding_never_changes_a_sentences_scores_tags_or_loss(output):
    model = _tagger(output).eval()
    words, lengths, chars = _batch()
    tags = torch.randint(0, 4, words.shape, generator=torch.Generator().manual_seed(2))
    emissions, _ = model(words, lengths, **chars)
    for b in range(3):
        n = int(lengths[b])
        alone = {k: v[b:b + 1, :n] for k, v in chars.items()}
        e, loss = model(words[b:b + 1, :n], lengths[b:b + 1], targets=tags[b:b + 1, :n], **alone)
        torch.testing.assert_close(e[0], emissions[b, :n], rtol=0, atol=1e-12)
        together = model.decode(words, lengths, **chars)[b]
        assert model.decode(words[b:b + 1, :n], lengths[b:b + 1], **alone)[0] == together
        per_sentence = model.crf(emissions, tags, lengths, reduction="none")[b] if output == "crf" else None
        if per_sentence is not None:
            torch.testing.assert_close(loss, per_sentence, rtol=0, atol=1e-10)
    marginals = model.marginals(words, lengths, **chars)
    torch.testing.assert_close(marginals.sum(-1), (torch.arange(5) < lengths[:, None]).double())


def test_the_tagger_learns_and_its_gradients_reach_every_part():
    model = _tagger()
    words, lengths, chars = _batch()
    tags = (words % 4).masked_fill(words == 0, 0)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(60):
        _, loss = model(words, lengths, targets=tags, **chars)
        opt.zero_grad()
        loss.backward()
        if not losses:
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
    assert model.eval().decode(words, lengths, **chars) == [t[:n] for t, n in zip(tags.tolist(), lengths.tolist())]


def test_a_constrained_crf_never_decodes_a_forbidden_transition():
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    torch.manual_seed(3)
    model = SequenceTagger("gru", 30, 4, 5, embedding_size=3, allowed=allowed_transitions(labels, "BIO")).double()
    with torch.no_grad():
        model.project.bias.copy_(torch.tensor([0.0, 0.0, 9.0, 0.0, 9.0]))     # the emissions prefer I-*
    words, lengths, _ = _batch(seed=4)
    for path in model.eval().decode(words, lengths):
        sequence = ["O"] + [labels[i] for i in path]
        assert all(not b.startswith("I-") or a[2:] == b[2:] and a != "O" for a, b in zip(sequence, sequence[1:]))


def test_tagger_argument_errors():
    with pytest.raises(ValueError, match="argument 'output' expected one of"):
        SequenceTagger("lstm", 10, 4, 3, output="hmm")
    with pytest.raises(ValueError, match="argument 'allowed' expected None with a softmax output"):
        SequenceTagger("lstm", 10, 4, 3, output="softmax", allowed=allowed_transitions(["O", "B-X", "I-X"], "BIO"))
    model = SequenceTagger("lstm", 10, 4, 3, char_encoder=CharCNN(5, embedding_size=2, filters=2))
    with pytest.raises(ValueError, match="argument 'chars' expected the characters of every word"):
        model(torch.ones(1, 2, dtype=torch.long), torch.tensor([2]))


# ---------------------------------------------------------------------------------------------
# the task through the CLI

pytest.importorskip("lightning", reason="the training extras are not installed")

from lstmkit import cli  # noqa: E402
from lstmkit.runs import evaluate  # noqa: E402
from validation import assert_logged_validation_is_the_whole_split  # noqa: E402
from lstmkit.tasks.tagging.task import _scheme_of, fit_baselines, spans  # noqa: E402

_LEXICON = {"PER": ["John", "Mary", "Ann"], "LOC": ["Paris", "Rome"], "O": ["saw", "in", "the", "visited", "met"]}


def _toy_sentences(count, seed=0):
    """A toy NER corpus: who met whom, where (BIO tags; two-word names)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        sentence = [(rng.choice(_LEXICON["PER"]), "B-PER")]
        if rng.random() < 0.4:
            sentence.append(("Smith", "I-PER"))
        sentence += [(rng.choice(["saw", "met", "visited"]), "O"), (rng.choice(_LEXICON["PER"]), "B-PER"),
                     ("in", "O"), (rng.choice(_LEXICON["LOC"]), "B-LOC")]
        out.append(sentence)
    return out


def _ner_files(tmp_path, n=(160, 40, 40)):
    paths = []
    for seed, (name, count) in enumerate(zip(("train", "valid", "test"), n)):
        lines = [line for s in _toy_sentences(count, seed) for line in [f"{w}\t{t}" for w, t in s] + [""]]
        path = tmp_path / f"{name}.conll"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def _train_args(tmp_path, *extra):
    train_file, valid_file, test_file = _ner_files(tmp_path)
    sets = ["task=tagging", "data.dataset=files", f"data.train_file={train_file}", f"data.valid_file={valid_file}",
            f"data.test_file={test_file}", "model.hidden_size=12", "model.embedding_size=8", "model.char_size=6",
            "model.char_embedding_size=4", "optim.epochs=8", "optim.lr=0.02", "data.batch_size=16", "seed=1",
            "trainer.progress_bar=false", *extra]
    return [a for s in sets for a in ("--set", s)]


def test_tagging_train_evaluate_predict_through_the_cli(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", *_train_args(tmp_path), "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    assert "entity F1" in out and "NLTK perceptron" in out
    metrics = json.loads((run / "metrics.json").read_text())
    test = metrics["test"]
    assert test["accuracy"] > 0.95 and test["entities"]["f1"] > 0.9, test
    assert set(test["per_tag"]) == {"O", "B-PER", "I-PER", "B-LOC"}
    assert set(test["entities"]["per_type"]) == {"PER", "LOC"}
    assert {"baseline_most_frequent", "baseline_perceptron"} <= set(test)
    assert (run / "confusion_matrix_test.png").is_file() and (run / "learning_curves.png").is_file()

    # validation counts every token and every entity of the split, and the best epoch is the best entity F1
    logged = assert_logged_validation_is_the_whole_split(run)
    last = evaluate(run / "checkpoints" / "last.safetensors", split="valid", out_dir=tmp_path / "last")
    assert logged["val_acc"] == pytest.approx(last["accuracy"]) and logged["val_f1"] == pytest.approx(last["entities"]["f1"])
    rows = [row for row in csv.DictReader(open(run / "logs" / "attempt-1" / "metrics.csv")) if row.get("val_f1")]
    best = evaluate(run / "checkpoints" / "best.safetensors", split="valid", out_dir=tmp_path / "best")
    assert best["entities"]["f1"] == pytest.approx(max(float(row["val_f1"]) for row in rows))

    assert cli.main(["evaluate", str(run), "--data", str(tmp_path / "test.conll")]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == test["accuracy"]

    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text('{"tokens": ["Mary", "Smith", "met", "John", "in", "Rome"]}\n"Ann saw Mary in Paris"\n')
    assert cli.main(["predict", str(run), str(inputs)]) == 0
    first, second = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert first["tags"] == ["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC"]
    assert first["spans"][0] == {"type": "PER", "start": 0, "end": 2, "text": "Mary Smith"}
    assert len(first["confidence"]) == 6 and all(0 < c <= 1 for c in first["confidence"])
    assert [s["text"] for s in second["spans"]] == ["Ann", "Mary", "Paris"]
    from serving import infer                                  # the Open Inference Protocol: the same tags
    tags = infer(run, [{"name": "sentence", "datatype": "BYTES", "shape": [1], "data": ["Ann saw Mary in Paris"]}])
    assert tags["tags"] == [" ".join(second["tags"])]

    (tmp_path / "empty.jsonl").write_text('{"tokens": []}\n')
    assert cli.main(["predict", str(run), str(tmp_path / "empty.jsonl")]) == 2
    assert "empty.jsonl' line 1 expected" in capsys.readouterr().err


def test_validation_accuracy_counts_tokens_not_sentences(tmp_path):
    from lstmkit.runs import load_config
    from lstmkit.train.runner import train
    args = _train_args(tmp_path, "optim.epochs=1", "optim.lr=0.002", "data.batch_size=7")
    train(load_config(None, [a for a in args if a != "--set"]), tmp_path / "run", quiet=True)
    logged = assert_logged_validation_is_the_whole_split(tmp_path / "run")
    assert 0 < logged["val_acc"] < 1                        # short of perfect, so the weighting shows


def test_tagging_softmax_ablation_and_no_character_encoder_train(tmp_path):
    from lstmkit.runs import load_config
    from lstmkit.train.runner import train
    args = _train_args(tmp_path, "model.output=softmax", "model.chars=rnn", "optim.epochs=2", "data.baselines=false")
    config = load_config(None, [a for a in args if a != "--set"])
    results = train(config, tmp_path / "run", quiet=True)
    assert "baseline_perceptron" not in results["test"] and 0 < results["test"]["accuracy"] <= 1
    config = load_config(None, [a for a in args if a != "--set"] + ["model.chars=none", "model.output=crf"])
    assert train(config, tmp_path / "run2", quiet=True)["parameters"] < results["parameters"]


def test_bad_tagging_files_are_named_with_their_line(tmp_path, capsys):
    train_file, valid_file, _ = _ner_files(tmp_path, (20, 5, 5))
    line = len(valid_file.read_text().splitlines()) + 1
    valid_file.write_text(valid_file.read_text() + "Bob\tB-ORG\n\n")
    args = ["--set", "task=tagging", "--set", "data.dataset=files", "--set", f"data.train_file={train_file}",
            "--set", f"data.valid_file={valid_file}", "--set", "trainer.progress_bar=false"]
    assert cli.main(["train", *args, "--run-dir", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert f"{str(valid_file)!r} line {line}: tags ['B-ORG'] do not occur in the training data" in err
    assert "Traceback" not in err
    train_file.write_text("in\tO\nSmith\tI-PER\n\n" + train_file.read_text())
    assert cli.main(["train", *args, "--run-dir", str(tmp_path / "b")]) == 2
    assert ("line 1: word 2 ('Smith') has the tag 'I-PER' after 'O', which the BIO scheme forbids"
            in capsys.readouterr().err)
    train_file.write_text("the\tDET\nalone\n\n")
    assert cli.main(["train", *args, "--run-dir", str(tmp_path / "d")]) == 2
    assert "line 2: expected a word and its tag separated by whitespace" in capsys.readouterr().err


def test_scheme_detection_spans_and_baselines():
    assert _scheme_of({"O", "B-PER", "I-PER"}) == "BIO"
    assert _scheme_of({"O", "S-PER", "B-LOC", "E-LOC"}) == "BIOES"
    assert _scheme_of({"NOUN", "VERB"}) == _scheme_of({"O"}) == _scheme_of({"O", "B-X", "NOUN"}) == "none"
    assert spans(["B-PER", "I-PER", "O", "B-LOC"], ["Ann", "Lee", "in", "Oslo"]) == [
        {"type": "PER", "start": 0, "end": 2, "text": "Ann Lee"}, {"type": "LOC", "start": 3, "end": 4, "text": "Oslo"}]
    sentences = [Sentence(("the", "can", "can"), ("DET", "MD", "MD")), Sentence(("can",), ("NOUN",))]
    baselines = fit_baselines(sentences, seed=0)
    assert baselines["most_frequent"](["can", "the", "zebra"]) == ["MD", "DET", "MD"]
    assert len(baselines["perceptron"](["the", "can"])) == 2
    assert fit_baselines(sentences, seed=0)["perceptron"](["the", "can"]) == baselines["perceptron"](["the", "can"])


# ---------------------------------------------------------------------------------------------
# the real corpora


@pytest.mark.data
def test_brown_corpus_reads_whole_and_every_tag_maps():
    pytest.importorskip("lightning")
    try:
        files = tagged.load_brown("universal")
    except tagged.MissingDataPackage as error:
        pytest.skip(str(error))
    assert len(files) == 500 and sum(len(s) for s in files.values()) == 57340
    assert sum(len(s.words) for f in files.values() for s in f) == 1161192
    assert {t for f in files.values() for s in f for t in s.tags} == set(tagged.UNIVERSAL_TAGS)
    full = tagged.load_brown("brown")
    assert len({t for f in full.values() for s in f for t in s.tags}) == 190
    split = brown_split(files)
    assert [len(split[k]) for k in ("train", "valid", "test")] == [396, 52, 52]
    assert [sum(len(files[f]) for f in split[k]) for k in ("train", "valid", "test")] == [45608, 5758, 5974]


@pytest.mark.data
def test_wnut16_and_turkish_treebanks_read():
    try:
        wnut, turkish = tagged.load_wnut16(), tagged.load_turkish()
    except tagged.MissingDataPackage as error:
        pytest.skip(str(error))
    assert len(wnut) == 2394 and sum(len(s.words) for s in wnut) == 46469
    assert _scheme_of({t for s in wnut for t in s.tags}) == "BIO"
    assert len(turkish) == 4851 and len({d for d, _ in turkish}) == 2379


def test_recurrent_tagger_estimator_fits_predicts_scores_and_loads(tmp_path):
    from sklearn.base import clone
    from lstmkit.estimators import RecurrentTagger
    sentences = [[w for w, _ in s] for s in _toy_sentences(120)]
    tags = [[t for _, t in s] for s in _toy_sentences(120)]
    model = RecurrentTagger(hidden_size=12, embedding_size=8, epochs=8, lr=0.02, batch_size=16, verbose=False,
                            run_dir=str(tmp_path / "run"), config={"model.char_size": 6})
    model.fit(sentences[:100], tags[:100])
    assert model.results_["valid"]["accuracy"] > 0.9 and "baseline_perceptron" not in model.results_["valid"]
    assert model.score(sentences[100:], tags[100:]) > 0.9
    again = RecurrentTagger.load(tmp_path / "run")
    assert again.predict(sentences[100:105]) == model.predict(sentences[100:105])
    assert "spans" in model.predict_records([["Ann", "met", "John"]])[0]
    assert clone(model).get_params()["hidden_size"] == 12
    with pytest.raises(ValueError, match="argument 'y' expected 2 tags at index 0"):
        model.fit([["a", "b"]], [["O"]])
    with pytest.raises(ValueError, match="expected words .non-empty strings without spaces. at index 0"):
        model.predict([["two words"]])
