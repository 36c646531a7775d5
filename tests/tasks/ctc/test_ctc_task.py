"""The ctc task: the spoken-digits corpus (deterministic, voice-disjoint), the PocketSphinx
baseline, and train / evaluate / predict through the CLI on tiny corpora, with the bad inputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("lightning", reason="the training extras are not installed")

from lstmkit import cli  # noqa: E402
from validation import assert_logged_validation_is_the_whole_split  # noqa: E402
from lstmkit.tasks.sequence_metrics import label_errors  # noqa: E402

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (apt-get install espeak-ng; the README's set-up "
                                         "does this)")


def test_label_and_string_error_rates_count_edits_over_reference_labels():
    truth = [list("3141"), list("59"), list("2")]
    errors = label_errors(truth, [list("3141"), list("509"), []])
    assert errors["ler"] == pytest.approx(2 / 7) and errors["ser"] == pytest.approx(2 / 3)
    assert (errors["substitutions"], errors["deletions"], errors["insertions"]) == (0, 1, 1)


@needs_espeak
def test_the_digits_corpus_is_deterministic_and_its_test_voices_unheard_in_training(tmp_path):
    pytest.importorskip("librosa")
    from lstmkit.data.speech import DigitsRecipe, load_digits, synthesize
    recipe = DigitsRecipe(train=12, valid=4, test=4, seed=3)
    voices = recipe.voices()
    assert not set(voices["train"]) & set(voices["test"]) and not set(voices["train"]) & set(voices["valid"])
    plan = recipe.utterances()
    assert plan == DigitsRecipe(train=12, valid=4, test=4, seed=3).utterances()
    assert plan != DigitsRecipe(train=12, valid=4, test=4, seed=4).utterances()
    assert {u.variant for u in plan["test"]} <= set(voices["test"])
    assert all(1 <= len(u.digits) <= 7 for us in plan.values() for u in us)
    first, again = load_digits(recipe, cache=tmp_path / "a"), load_digits(recipe, cache=tmp_path / "b")
    for split in ("train", "valid", "test"):
        assert first[split][1] == again[split][1]
        for x, y in zip(first[split][0], again[split][0]):
            assert x.shape[1] == 40 and np.array_equal(x, y)
    recorded = json.loads(next((tmp_path / "a").glob("digits-*.json")).read_text())
    assert recorded["voices"] == voices and recorded["utterances"]["test"][0]["digits"] == plan["test"][0].digits
    assert np.array_equal(synthesize(plan["test"][0]), synthesize(plan["test"][0]))       # the noise is seeded too


def test_audio_of_an_implausible_rate_or_length_is_refused_before_resampling(tmp_path, monkeypatch):
    soundfile = pytest.importorskip("soundfile")
    from lstmkit.data import speech
    soundfile.write(tmp_path / "1hz.wav", np.zeros(10_000, np.float32), 1)       # would become 160 million samples
    with pytest.raises(ValueError, match="1hz.wav' expected a sample rate of at least 4000 Hz, got 1 Hz"):
        speech.read_audio(tmp_path / "1hz.wav")
    soundfile.write(tmp_path / "long.wav", np.zeros(8000 * 3, np.float32), 8000)
    monkeypatch.setattr(speech, "MAX_SECONDS", 2)
    with pytest.raises(ValueError, match="long.wav' expected at most 2 s of audio, got 3 s"):
        speech.read_audio(tmp_path / "long.wav")
    soundfile.write(tmp_path / "short.wav", np.zeros(8000, np.float32), 8000)
    audio, note = speech.read_audio((tmp_path / "short.wav").read_bytes(), "audio_base64")
    assert note == "resampled from 8000 Hz to 16000 Hz" and len(audio) == 16000


def test_streamed_features_equal_the_whole_audios():
    pytest.importorskip("librosa")
    from lstmkit.data.speech import LogMelStream, log_mel
    audio = np.random.default_rng(0).normal(size=23456).astype(np.float32)
    whole = log_mel(audio)
    for chunk in (50, 160, 1600, 7000):
        stream = LogMelStream()
        frames = np.concatenate([stream.push(audio[i:i + chunk]) for i in range(0, len(audio), chunk)]
                                + [stream.finish()])
        np.testing.assert_allclose(frames, whole, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="expected more than 200 samples"):
        LogMelStream().finish()


@needs_espeak
def test_pocketsphinx_hears_a_clean_digit_string_and_each_utterance_alone():
    pytest.importorskip("pocketsphinx")
    from lstmkit.data.speech import Utterance
    from lstmkit.tasks.ctc.pocketsphinx import pocketsphinx_digits
    clean, other = Utterance("31415", "en-us", "m3", 150, 50, None, 0), Utterance("926", "en-gb", "f2", 160, 60, 5.0, 1)
    heard = pocketsphinx_digits([clean, other, other, clean])
    assert heard[0] == heard[3] == "31415" and heard[1] == heard[2]


def _features(rng, labels: str) -> list[list[float]]:
    """Toy frames: three noisy frames per label, each label its own mean, a silence frame between."""
    frames = []
    for label in labels.split():
        frames += [[0.0, 0.0, 0.0]] + [list(rng.normal(0.0, 0.1, 3) + [int(label), -int(label), 1.0])] * 3
    return frames + [[0.0, 0.0, 0.0]]


def _files(tmp_path, n=(120, 20, 20)):
    rng = np.random.default_rng(0)
    paths = []
    for name, count in zip(("train", "valid", "test"), n):
        path = tmp_path / f"{name}.jsonl"
        with open(path, "w") as f:
            for _ in range(count):
                labels = " ".join(str(v) for v in rng.integers(1, 4, rng.integers(1, 4)))
                f.write(json.dumps({"x": _features(rng, labels), "labels": labels}) + "\n")
        paths.append(path)
    return paths


def _settings(*extra: str) -> list[str]:
    sets = ["task=ctc", "model.hidden_size=16", "model.num_layers=1", "data.stack=1", "optim.epochs=15",
            "optim.lr=0.02", "data.batch_size=16", "trainer.progress_bar=false", *extra]
    return [a for s in sets for a in ("--set", s)]


def test_files_train_evaluate_and_predict_through_the_cli(tmp_path, capsys):
    train, valid, test = _files(tmp_path)
    run = tmp_path / "run"
    assert cli.main(["train", *_settings("data.dataset=files", f"data.train_file={train}",
                                         f"data.valid_file={valid}", f"data.test_file={test}", "decode.n_best=2"),
                     "--run-dir", str(run)]) == 0
    assert "greedy label errors" in capsys.readouterr().out
    assert "val_ser" in assert_logged_validation_is_the_whole_split(run)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["greedy"]["ler"] < 0.1 and metrics["test"]["beam8"]["ser"] < 0.2, metrics["test"]
    assert cli.main(["evaluate", str(run), "--data", str(test)]) == 0
    assert json.loads(capsys.readouterr().out)["greedy"] == metrics["test"]["greedy"]

    rng = np.random.default_rng(5)
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text(json.dumps({"x": _features(rng, "3 1 2")}) + "\n")
    assert cli.main(["predict", str(run), str(inputs)]) == 0
    (out,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert out["labels"] == ["3", "1", "2"] and out["text"] == "3 1 2" and len(out["n_best"]) == 2
    from serving import infer                                  # the Open Inference Protocol: the same text
    x = np.asarray(json.loads(inputs.read_text())["x"], np.float32)[None]
    assert infer(run, [{"name": "x", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}])["text"] \
        == ["3 1 2"]
    assert out["n_best"][0]["score"] >= out["n_best"][1]["score"]

    for record, message in (({"x": [[1.0, 2.0]]}, "x: expected every frame with 3 features, got frames of [2]"),
                            ({"x": []}, "x: expected a list of frames"),
                            ({"x": [[1.0, True, 2.0]]}, "x.0.1: Input should be a valid number"),
                            ({"x": [[1.0, "2", 2.0]]}, "x.0.1: Input should be a valid number"),
                            ({"x": [[1.0, 2.0, 1e39]]}, "x: expected finite numbers within float32's range"),
                            ({}, 'exactly one of "x", "audio", "audio_base64" and "word"'),
                            ({"audio": "a.wav"}, "this run was not trained on audio")):
        inputs.write_text(json.dumps(record) + "\n")
        assert cli.main(["predict", str(run), str(inputs)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err

    for value, message in ((1e39, "got 1e+39 at frame 0 feature 2"), (True, "got True (bool) at frame 0 feature 2"),
                           ("1", "got '1' (str) at frame 0 feature 2")):   # checked before scaling can absorb them
        x = _features(rng, "3 1")
        x[0][2] = value
        huge = tmp_path / "huge.jsonl"
        huge.write_text(train.read_text() + json.dumps({"x": x, "labels": "3 1"}) + "\n")
        assert cli.main(["train", *_settings("data.dataset=files", f"data.train_file={huge}"),
                         "--run-dir", str(tmp_path / "huge")]) == 2
        err = capsys.readouterr().err
        assert f"data file {str(huge)!r} line " in err and message in err, err

    bad = tmp_path / "bad.jsonl"                # a label the model never saw
    bad.write_text(json.dumps({"x": _features(rng, "7"), "labels": "7"}) + "\n")
    assert cli.main(["evaluate", str(run), "--data", str(bad)]) == 2
    assert "labels ['7'] do not occur in the training transcripts" in capsys.readouterr().err


def test_a_forward_only_recogniser_streams_feature_chunks_to_predicts_transcript(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from lstmkit.runs import predict
    from lstmkit.serve import create_app, load_models
    train, valid, test = _files(tmp_path)
    run = tmp_path / "run"
    assert cli.main(["train", *_settings("data.dataset=files", f"data.train_file={train}", f"data.valid_file={valid}",
                                         "model.bidirectional=false", "data.stack=2", "decode.n_best=2"),
                     "--run-dir", str(run)]) == 0
    rng = np.random.default_rng(5)
    utterances = [_features(rng, labels) for labels in ("3 1 2", "2 2", "1")]
    expected = predict(run, [{"x": x} for x in utterances])
    token, headers = "t" * 32, {"Authorization": "Bearer " + "t" * 32}
    with TestClient(create_app(load_models([run]), [token])) as client, \
            TestClient(create_app(load_models([run]), [token])) as other:
        for x, want in zip(utterances, expected):
            sid = client.post("/v1/models/run/sessions", json={"start": {"x": x[:3]}}, headers=headers).json()["session"]
            steps = [{"x": x[i:i + 3]} for i in range(3, len(x), 3)]              # odd chunks: a stack held back
            partials = client.post(f"/v1/sessions/{sid}/steps", json={"steps": steps}, headers=headers).json()
            assert all(not p["final"] for p in partials["outputs"])
            exported = client.get(f"/v1/sessions/{sid}/state", headers=headers).json()["state"]
            moved = other.post("/v1/models/run/sessions", json={"state": exported}, headers=headers).json()["session"]
            for app, session in ((client, sid), (other, moved)):     # resumed elsewhere: the same end
                out = app.post(f"/v1/sessions/{session}/steps", json={"steps": [{"end": True}]},
                               headers=headers).json()["outputs"][0]
                assert out["final"] and out["text"] == want["text"] and out["labels"] == want["labels"]
                assert out["score"] == pytest.approx(want["score"], abs=1e-4)
                assert [h["text"] for h in out["n_best"]] == [h["text"] for h in want["n_best"]]
        again = client.post(f"/v1/sessions/{sid}/steps", json={"steps": [{"x": x[:1]}]}, headers=headers)
        assert again.status_code == 422 and "has ended" in again.text
        for start, message in (({"x": [[0.0, 1.0]]}, "expected every frame with 3 features"),
                               ({"samples": [0.0], "sample_rate": 16000}, "not trained on audio"),
                               ({"end": True}, "has no frames")):
            refused = client.post("/v1/models/run/sessions", json={"start": start}, headers=headers)
            assert refused.status_code == 422 and message in refused.text, refused.text


def test_inputs_too_short_for_their_labels_are_refused_before_training(tmp_path, capsys):
    train, valid, _ = _files(tmp_path, (20, 5, 5))
    with open(train, "a") as f:
        f.write(json.dumps({"x": [[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]], "labels": "1 1"}) + "\n")
    assert cli.main(["train", *_settings("data.dataset=files", f"data.train_file={train}",
                                         f"data.valid_file={valid}"), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "train split sequence 21: 2 steps" in err and "cannot emit its 2 labels under CTC, which needs 3" in err
    assert "Traceback" not in err


@needs_espeak
def test_digits_train_and_predict_from_audio_through_the_cli(tmp_path, capsys, monkeypatch):
    pytest.importorskip("librosa")
    pytest.importorskip("pocketsphinx")
    import soundfile
    from lstmkit.data.speech import Utterance, synthesize
    monkeypatch.setenv("LSTMKIT_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert cli.main(["train", *_settings("data.train_size=24", "data.valid_size=6", "data.test_size=6",
                                         "optim.epochs=1", "data.stack=2", "model.bidirectional=false"),
                     "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    assert "PocketSphinx" in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["baseline_pocketsphinx"]["n"] == 6 and 0 <= metrics["test"]["greedy"]["ler"]

    audio = synthesize(Utterance("42", "en-us", "m1", 150, 50, None, 0))
    soundfile.write(tmp_path / "clip.wav", audio, 16000)
    soundfile.write(tmp_path / "clip22k.wav", np.interp(np.arange(0, len(audio), 16000 / 22050), np.arange(len(audio)),
                                                        audio), 22050)
    soundfile.write(tmp_path / "stereo.wav", np.stack([audio, audio], 1), 16000)
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text(json.dumps({"audio": str(tmp_path / "clip.wav")}) + "\n"
                      + json.dumps({"audio": str(tmp_path / "clip22k.wav")}) + "\n")
    assert cli.main(["predict", str(run), str(inputs)]) == 0
    first, second = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert first["note"] is None and second["note"] == "resampled from 22050 Hz to 16000 Hz"
    silent = audio.copy()
    silent[100] = np.nan
    soundfile.write(tmp_path / "nan.wav", silent, 16000, subtype="FLOAT")
    for name, message in (("stereo.wav", "expected mono (1 channel), got 2 channels"),
                          ("empty.wav", "expected some samples, got none"), ("missing.wav", "could not be read"),
                          ("nan.wav", "expected finite samples, got nan at sample 100")):
        inputs.write_text(json.dumps({"audio": str(tmp_path / name)}) + "\n")
        assert cli.main(["predict", str(run), str(inputs)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err

    # the server reads no file a client names: the audio comes in the body
    pytest.importorskip("fastapi")
    import base64

    from fastapi.testclient import TestClient

    from lstmkit.serve import create_app, load_models
    token = "t" * 32
    with TestClient(create_app(load_models([run]), [token])) as client:
        def served(record):
            return client.post("/v1/models/run/predict", json={"records": [record]},
                               headers={"Authorization": f"Bearer {token}"})
        for path in ("/etc/passwd", str(tmp_path / "clip.wav"), str(tmp_path / "missing.wav")):
            refused = served({"audio": path})
            assert refused.status_code == 422 and "field 'audio'" in refused.text and "audio_base64" in refused.text
            assert "could not be read" not in refused.text and "Format" not in refused.text
        encoded = base64.b64encode((tmp_path / "clip.wav").read_bytes()).decode()
        answer = served({"audio_base64": encoded})
        assert answer.status_code == 200 and answer.json()["predictions"] == [first]
        nan = served({"audio_base64": base64.b64encode((tmp_path / "nan.wav").read_bytes()).decode()})
        assert nan.status_code == 422 and "audio_base64 expected finite samples" in nan.text
        assert "not base64" in served({"audio_base64": "%%%"}).text

        # a speech session hears the audio in pieces, as float samples, 16-bit PCM or WebSocket
        # binary frames, and ends with the transcript predict gives for the whole clip
        headers = {"Authorization": f"Bearer {token}"}
        pcm = (np.clip(audio, -1, 1 - 2 ** -15) * 32768).astype("<i2")
        heard = pcm.astype(np.float32) / 32768
        expected = served({"audio_base64": _wav_base64(heard, tmp_path)}).json()["predictions"][0]
        sid = client.post("/v1/models/run/sessions", json={"start": {"samples": heard[:3000].tolist(),
                                                                     "sample_rate": 16000}},
                          headers=headers).json()["session"]
        for i in range(3000, len(pcm), 4000):
            chunk = {"pcm16_base64": base64.b64encode(pcm[i:i + 4000].tobytes()).decode(), "sample_rate": 16000}
            partial = client.post(f"/v1/sessions/{sid}/steps", json={"steps": [chunk]}, headers=headers).json()
            assert partial["outputs"][0]["final"] is False
        final = client.post(f"/v1/sessions/{sid}/steps", json={"steps": [{"end": True}]}, headers=headers).json()
        out = final["outputs"][0]
        assert out["final"] and out["text"] == expected["text"] and out["score"] == pytest.approx(expected["score"],
                                                                                                 abs=1e-3)
        sid = client.post("/v1/models/run/sessions", json={}, headers=headers).json()["session"]
        with client.websocket_connect(f"/v1/sessions/{sid}/stream", headers=headers) as socket:
            for i in range(0, len(pcm), 8000):
                socket.send_bytes(pcm[i:i + 8000].tobytes())
                assert socket.receive_json()["final"] is False
            socket.send_text(json.dumps({"end": True}))
            assert socket.receive_json()["text"] == expected["text"]
        for start, message in (({"samples": [0.0] * 10, "sample_rate": 8000}, "expected 16000 (Hz) with audio"),
                               ({"samples": [0.0], "x": [[0.0] * 40]}, "at most one of x, samples"),
                               ({"pcm16_base64": "AAAA", "sample_rate": 16000}, "an even number of bytes")):
            refused = client.post("/v1/models/run/sessions", json={"start": start}, headers=headers)
            assert refused.status_code == 422 and message in refused.text, refused.text


def _wav_base64(samples: np.ndarray, folder) -> str:
    import base64

    import soundfile
    soundfile.write(folder / "heard.wav", samples, 16000, subtype="FLOAT")
    return base64.b64encode((folder / "heard.wav").read_bytes()).decode()
