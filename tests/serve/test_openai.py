"""OpenAI-compatible completions (``/openai/v1``): the text of ``lstmkit generate``, stop
sequences, log-probabilities equal to the model's, streaming, OpenAI's error shape, and the
official ``openai`` client against a real server process."""

import json
import random

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lstmkit import cli  # noqa: E402
from lstmkit.runs import predict  # noqa: E402
from lstmkit.serve import create_app, load_models  # noqa: E402
from lstmkit.serve.openai import StopScanner  # noqa: E402
from serving import TOKEN, ServerProcess, token_file  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="ab ", max_size=30), stops=st.lists(st.text(alphabet="ab ", min_size=1, max_size=4),
                                                                  min_size=1, max_size=4), seed=st.integers(0, 99))
def test_the_stop_scanner_releases_the_text_before_the_first_stop_sequence(text, stops, seed):
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 6))))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
    scanner, released, stopped = StopScanner(stops), "", False
    for piece in pieces:
        out, stopped = scanner.feed(piece)
        released += out
        if stopped:
            break
    if not stopped:
        released += scanner.flush()
    # generation stops after the first piece that completes a stop sequence: the text so far, cut
    # where the first of the stop sequences it holds begins
    so_far, want = "", None
    for piece in pieces:
        so_far += piece
        hits = [so_far.find(s) for s in stops if s in so_far]
        if hits:
            want = so_far[:min(hits)]
            break
    assert stopped == (want is not None)
    assert released == (text if want is None else want)


@pytest.fixture(scope="module")
def client(runs):
    app = create_app(load_models([runs["lm"], runs["classify"]]), [TOKEN])
    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield test_client


def _generate(run, capsys, *flags) -> str:
    assert cli.main(["generate", str(run), *flags]) == 0
    return capsys.readouterr().out


def _complete(client, **fields) -> dict:
    answer = client.post("/openai/v1/completions", json={"model": "lm-run", **fields})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_completion_is_the_text_lstmkit_generate_writes(client, runs, capsys):
    assert [m["id"] for m in client.get("/openai/v1/models").json()["data"]] == ["lm-run"]   # the classifier: no text
    settings_ = {"max_tokens": 12, "temperature": 0.8, "top_p": 0.9, "seed": 3}
    out = _complete(client, prompt="the cat", **settings_, n=2)
    cli_text = _generate(runs["lm"], capsys, "--prompt", "the cat", "--max-tokens", "12", "--temperature", "0.8",
                         "--top-p", "0.9", "--seed", "3")
    first, second = out["choices"]
    assert "the cat" + first["text"] + "\n" == cli_text and first["finish_reason"] == "length"
    assert "the cat" + second["text"] + "\n" == _generate(runs["lm"], capsys, "--prompt", "the cat", "--max-tokens",
                                                           "12", "--temperature", "0.8", "--top-p", "0.9", "--seed", "4")
    assert out["object"] == "text_completion" and out["id"].startswith("cmpl-") and out["model"] == "lm-run"
    assert out["usage"] == {"prompt_tokens": 4, "completion_tokens": 24, "total_tokens": 28}   # 2 prompt tokens, n=2
    many = _complete(client, prompt=["the cat", "a dog"], max_tokens=3, seed=1, n=2)
    assert [c["index"] for c in many["choices"]] == [0, 1, 2, 3]
    assert many["choices"][0]["text"] == _complete(client, prompt="the cat", max_tokens=3, seed=1)["choices"][0]["text"]
    echoed = _complete(client, prompt="a dog", max_tokens=3, seed=1, echo=True)["choices"][0]["text"]
    assert echoed == "a dog" + _complete(client, prompt="a dog", max_tokens=3, seed=1)["choices"][0]["text"]


def test_stop_sequences_end_a_choice_before_them(client):
    full = _complete(client, prompt="the", max_tokens=30, seed=7)["choices"][0]["text"]
    stop = full[len(full) // 2:len(full) // 2 + 3]
    cut = _complete(client, prompt="the", max_tokens=30, seed=7, stop=[stop, "never said"])["choices"][0]
    assert cut["text"] == full[:full.find(stop)] and cut["finish_reason"] == "stop"


def test_log_probabilities_are_the_models_own(client, runs):
    choice = _complete(client, prompt="the cat", max_tokens=8, seed=2, logprobs=2)["choices"][0]
    lp = choice["logprobs"]
    assert "".join(lp["tokens"]) == choice["text"]
    assert lp["text_offset"] == [sum(len(t) for t in lp["tokens"][:i]) for i in range(len(lp["tokens"]))]
    assert all(len(top) == 2 and max(top.values()) >= p - 1e-9 for top, p in zip(lp["top_logprobs"],
                                                                                 lp["token_logprobs"]))
    # the model scores the same text token by token: predict's log-probabilities of the new tokens
    scored = predict(runs["lm"], [{"text": "the cat" + choice["text"].replace("\n", " <eos> ")}])[0]["log_probs"]
    assert lp["token_logprobs"] == pytest.approx(scored[2:2 + len(lp["tokens"])], abs=1e-4)


def test_a_streamed_completion_is_the_same_text_in_server_sent_events(client):
    whole = _complete(client, prompt="a dog", max_tokens=10, seed=5)
    with client.stream("POST", "/openai/v1/completions",
                       json={"model": "lm-run", "prompt": "a dog", "max_tokens": 10, "seed": 5, "stream": True,
                             "stream_options": {"include_usage": True}}) as answer:
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
        events = [line.removeprefix("data: ") for line in answer.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == whole["choices"][0]["text"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]


@pytest.mark.parametrize("fields, status, param, message", [
    ({"temperature": -1}, 400, "temperature", "greater than or equal to 0"),
    ({"top_p": 0}, 400, "top_p", "greater than 0"),
    ({"max_tokens": 0}, 400, "max_tokens", "greater than or equal to 1"),
    ({"n": 17}, 400, "n", "less than or equal to 16"),
    ({"frequency_penalty": 0.5}, 400, "frequency_penalty", "is not supported by this server"),
    ({"stop": ["a", "b", "c", "d", "e"]}, 400, "stop", "up to 4"),
    ({"echo": True, "logprobs": 1}, 400, None, "echo with logprobs"),
    ({"stream_options": {"include_usage": True}}, 400, None, "needs stream: true"),
    ({"model": "nothing"}, 404, "model", "no model 'nothing'"),
    ({"model": "classify-run"}, 400, "model", "generates no text"),
])
def test_bad_requests_get_openais_error_shape_naming_the_field(client, fields, status, param, message):
    answer = client.post("/openai/v1/completions", json={"model": "lm-run", "prompt": "the", **fields})
    error = answer.json()["error"]
    assert answer.status_code == status and error["param"] == param and message in error["message"], error
    assert error["type"] == "invalid_request_error"


def test_a_missing_or_wrong_key_is_a_401_in_openais_shape(client):
    answer = client.post("/openai/v1/completions", json={"model": "lm-run"}, headers={"Authorization": "Bearer no"})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_api_key"


def test_the_official_openai_client_against_a_real_server(runs, tmp_path, capsys):
    openai = pytest.importorskip("openai")
    server = ServerProcess(runs["lm"], token_file(tmp_path))
    with server:
        url = server.url
        client = openai.OpenAI(base_url=f"{url}/openai/v1", api_key=TOKEN, max_retries=0)
        assert [m.id for m in client.models.list()] == ["lm-run"]
        done = client.completions.create(model="lm-run", prompt="the cat", max_tokens=10, temperature=0.7, top_p=0.9,
                                         seed=11)
        streamed = "".join(chunk.choices[0].text for chunk in client.completions.create(
            model="lm-run", prompt="the cat", max_tokens=10, temperature=0.7, top_p=0.9, seed=11, stream=True)
            if chunk.choices)
        with pytest.raises(openai.BadRequestError) as refused:
            client.completions.create(model="lm-run", prompt="the", temperature=-1)
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/openai/v1", api_key="wrong", max_retries=0).completions.create(
                model="lm-run", prompt="the")
    expected = _generate(runs["lm"], capsys, "--prompt", "the cat", "--max-tokens", "10", "--temperature", "0.7",
                         "--top-p", "0.9", "--seed", "11")
    assert "the cat" + done.choices[0].text + "\n" == expected and streamed == done.choices[0].text
    assert done.usage.completion_tokens == 10
    assert refused.value.body["param"] == "temperature"
