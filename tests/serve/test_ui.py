"""The page to try the served models (``/ui``), in headless Chromium against a real server
process: text generated as the completions route gives it, a forecast drawn, a record predicted,
a WAV file transcribed live through a speech session as ``lstmkit predict`` transcribes it."""

import json

import httpx
import numpy as np
import pytest

from lstmkit import cli
from lstmkit.runs import predict

from browser import chromium_page
from serving import TOKEN, ServerProcess, token_file

pytest.importorskip("fastapi", reason="the serve extras are not installed")


def _open(page, server):
    page.goto(f"{server.url}/ui#token={TOKEN}")
    page.wait_for_selector(".card")
    assert "token" not in page.url                          # the token leaves the address bar
    return page


def _run(page, model: str):
    card = page.locator(f'.card[data-model="{model}"]')
    card.locator(".go").click()
    page.wait_for_selector(f'.card[data-model="{model}"][data-done], .card[data-model="{model}"] .error:not(:empty)')
    assert card.locator(".error").inner_text() == ""
    return card


def test_the_page_lists_the_models_generates_draws_and_predicts(runs, tmp_path):
    openai = pytest.importorskip("openai")
    served = [runs["lm"], runs["forecast"], runs["classify"]]
    server = ServerProcess(served, token_file(tmp_path))
    with server, chromium_page() as (page, errors):
        _open(page, server)
        assert page.locator(".card").count() == 3 and page.inner_text("#status") == "3 models"

        card = _run(page, "lm-run")
        generated = card.locator(".generated").inner_text()
        client = openai.OpenAI(base_url=f"{server.url}/openai/v1", api_key=TOKEN)
        expected = client.completions.create(model="lm-run", prompt="the", max_tokens=30, temperature=1.0, seed=0)
        assert generated == expected.choices[0].text and generated

        card = _run(page, "forecast-run")
        assert card.locator("svg polyline.forecast").count() == 1
        history = json.loads(card.locator(".input").input_value())["history"]
        [forecast] = predict(runs["forecast"], [{"history": history}])
        assert card.locator(".output").inner_text().endswith(", ".join(f"{v:.3f}" for v in forecast["forecast"]))

        card = _run(page, "classify-run")
        shown = json.loads(card.locator(".output").inner_text())
        assert shown == predict(runs["classify"], [json.loads(card.locator(".input").input_value())])[0]
        page.screenshot(path=tmp_path / "ui.png", full_page=True)
        assert errors == []

        card.locator(".input").fill("{not json")                # a person's mistake is shown, not thrown
        card.locator(".go").click()
        page.wait_for_selector('.card[data-model="classify-run"] .error:not(:empty)')
        assert "not JSON" in card.locator(".error").inner_text()
    assert (tmp_path / "ui.png").stat().st_size > 10_000


def test_a_wrong_token_is_told_on_the_page(runs, tmp_path):
    server = ServerProcess(runs["classify"], token_file(tmp_path))
    with server, chromium_page() as (page, errors):
        page.goto(f"{server.url}/ui")
        page.fill("#token", "not-the-token")
        page.click("#login button")
        page.wait_for_function("document.getElementById('status').textContent.includes('token')")
        assert "401" in page.inner_text("#status") and page.locator(".card").count() == 0
        page.fill("#token", TOKEN)
        page.click("#login button")
        page.wait_for_selector(".card")
        response = httpx.get(f"{server.url}/ui/")
        assert "default-src 'self'" in response.headers["content-security-policy"]


def test_a_wav_file_is_transcribed_live_as_predict_transcribes_it(tmp_path, monkeypatch):
    pytest.importorskip("librosa")
    import soundfile
    from lstmkit.data.speech import Utterance, synthesize
    monkeypatch.setenv("LSTMKIT_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "speech"
    settings = ["task=ctc", "data.train_size=24", "data.valid_size=6", "data.test_size=6", "data.baselines=false",
                "optim.epochs=1", "data.stack=2", "model.bidirectional=false", "model.hidden_size=16",
                "model.num_layers=1", "trainer.progress_bar=false"]
    assert cli.main(["train", *[a for s in settings for a in ("--set", s)], "--run-dir", str(run)]) == 0
    audio = synthesize(Utterance("42", "en-us", "m1", 150, 50, None, 0))
    pcm = (np.clip(audio, -1, 1 - 2 ** -15) * 32768).astype("<i2")
    soundfile.write(tmp_path / "clip.wav", pcm, 16000, subtype="PCM_16")
    [expected] = predict(run, [{"audio": str(tmp_path / "clip.wav")}])

    server = ServerProcess(run, token_file(tmp_path))
    with server, chromium_page() as (page, errors):
        _open(page, server)
        card = page.locator('.card[data-model="speech"]')
        card.locator(".file").set_input_files(str(tmp_path / "clip.wav"))
        _run(page, "speech")
        assert card.locator(".output.final").inner_text() == expected["text"]
        page.screenshot(path=tmp_path / "speech.png", full_page=True)
        assert errors == []
