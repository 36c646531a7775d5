"""``lstmkit serve``: predictions equal ``lstmkit predict``, bearer tokens, body cap, malformed
records, metrics, the client against a real server process, and the streaming sessions of every
task that has them (each equal to ``predict`` on the same prefix; batched, exported, resumed,
expired and owned by their token)."""

import json
import time

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("lightning", reason="the training extras are not installed")

from fastapi.testclient import TestClient  # noqa: E402

from lstmkit import cli  # noqa: E402
from lstmkit.serve import ServerError, create_app, load_models, load_tokens  # noqa: E402
from lstmkit.runs import load_config  # noqa: E402
from lstmkit.runs import predict  # noqa: E402
from lstmkit.train.runner import train  # noqa: E402

from serving import TOKEN, ServerProcess, token_file  # noqa: E402
from toy import two_class_series  # noqa: E402


@pytest.fixture(scope="module")
def client(runs):
    app = create_app(load_models(list(runs.values())), [TOKEN, "a-second-token-of-32-characters-"], max_body=4096)
    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield test_client


def test_predictions_equal_lstmkit_predict_for_every_task(client, runs):
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert set(models) == {"classify-run", "lm-run", "anomaly-run", "forecast-run"}
    assert models["lm-run"]["sessions"] and models["anomaly-run"]["sessions"] and not models["classify-run"]["sessions"]
    assert "x" in models["classify-run"]["input_schema"]["properties"]
    records = {"classify-run": [{"x": [[1.0, 0.1], [0.9, -0.2]]}, {"x": [[-1.0, 0.0]] * 5}],
               "lm-run": [{"text": "the cat sat"}, "a dog ran on a zebra"],
               "anomaly-run": [{"values": np.sin(np.arange(30) / 2).round(3).tolist()}]}
    for name, batch in records.items():
        answer = client.post(f"/v1/models/{name}/predict", json={"records": batch})
        assert answer.status_code == 200, answer.text
        expected = predict(runs[name.removesuffix("-run")], batch)
        assert answer.json() == {"model": name, "predictions": json.loads(json.dumps(expected))}


def test_tokens_are_required_and_checked(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz", headers={"Authorization": ""}).json()["status"] == "ready"
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong-token-of-32-characters-xxxx"},
                    {"Authorization": f"Basic {TOKEN}"}):
        answer = client.get("/v1/models", headers=headers)
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer TOKEN" in answer.json()["detail"]
    assert client.get("/v1/models", headers={"Authorization": "Bearer a-second-token-of-32-characters-"}).status_code == 200
    assert client.post("/v1/models/lm-run/predict", json={"records": ["x"]}, headers={"Authorization": ""}).status_code == 401


def test_bad_requests_get_4xx_naming_the_field(client):
    answer = client.post("/v1/models/classify-run/predict", json={"records": [{"x": [[1.0, 2.0, 3.0]]}]})
    assert answer.status_code == 422 and "record 0" in answer.json()["detail"]
    answer = client.post("/v1/models/classify-run/predict", content=b'{"records": [{"x": [[NaN, 1.0]]}]}',
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    answer = client.post("/v1/models/lm-run/predict", json={"records": [{"txt": "the cat"}]})
    assert answer.status_code == 422 and "text" in answer.json()["detail"]
    answer = client.post("/v1/models/lm-run/predict", json={"records": []})
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "records"]
    answer = client.post("/v1/models/lm-run/predict", content=b"{not json", headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    answer = client.post("/v1/models/nothing/predict", json={"records": ["x"]})
    assert answer.status_code == 404 and "classify-run" in answer.json()["detail"]
    answer = client.post("/v1/models/lm-run/predict", json={"records": ["the cat " * 1000]})
    assert answer.status_code == 413 and "4096 bytes" in answer.json()["detail"]
    answer = client.post("/v1/models/lm-run/predict", json={"records": ["the cat"], "beam": 5})   # not a field
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "beam"]
    answer = client.post("/v1/models/lm-run/predict", json={"records": ["the cat"], "decode": {"beam": 5}})
    assert answer.status_code == 422 and "decodes with a beam" in answer.json()["detail"]
    nested = b'{"records": [' + b"[" * 1500 + b"]" * 1500 + b"]}"
    answer = client.post("/v1/models/lm-run/predict", content=nested, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422 and answer.json()["detail"][0]["msg"] == "JSON nested too deeply to read"

    def chunks():                                                    # no Content-Length: counted as it streams in
        yield b'{"records": ["'
        for _ in range(100):
            yield b"the cat sat on the mat " * 4
        yield b'"]}'
    answer = client.post("/v1/models/lm-run/predict", content=chunks(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 413


def test_metrics_count_requests_by_route_and_status(client):
    client.post("/v1/models/lm-run/predict", json={"records": ["the cat", "a dog"]})
    text = client.get("/metrics").text
    assert 'lstmkit_requests_total{method="POST",route="/v1/models/{name}/predict",status="200"}' in text
    assert 'lstmkit_predicted_records_total{model="lm-run"}' in text
    assert 'lstmkit_request_seconds_bucket{le="0.001",route="/v1/models/{name}/predict"}' in text


def test_tokens_file_is_created_private_and_refused_when_others_can_read_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    tokens, path, created = load_tokens(None)
    assert created and path == tmp_path / "lstmkit" / "serve-token" and len(tokens[0]) >= 32
    assert (path.stat().st_mode & 0o777) == 0o600
    assert load_tokens(None) == (tokens, path, False)
    path.chmod(0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        load_tokens(path)
    short = tmp_path / "short"
    short.write_text("# comment\nabc\n")
    short.chmod(0o600)
    with pytest.raises(ValueError, match="at least 16 characters"):
        load_tokens(short)


def test_the_client_against_a_real_server_process(runs, tmp_path):
    server = ServerProcess(runs["lm"], token_file(tmp_path))
    with server as client:
        assert [m["name"] for m in client.models()] == ["lm-run"]
        assert client.predict("lm-run", ["the cat sat"]) == json.loads(json.dumps(predict(runs["lm"], ["the cat sat"])))
        with pytest.raises(ServerError) as error:
            client.predict("lm-run", [{"txt": 1}])
        assert error.value.status == 422
        sid = client.open_session("lm-run", start={"prefix": "the cat"})
        by_request = client.steps(sid, [{"generate": 5, "seed": 9}])[0]
        other = client.open_session("lm-run", start={"prefix": "the cat"})
        with client.stream(other) as step:
            assert step({"generate": 5, "seed": 9}) == by_request
            with pytest.raises(ServerError, match="exactly one"):
                step({"text": "a", "generate": 1})
        client.close_session(sid)
        with pytest.raises(ServerError) as error:
            client.steps(sid, [{"text": "on"}])
        assert error.value.status == 404
    stderr = server.stderr
    assert server.process.returncode in (0, -15) and "Application shutdown complete" in stderr, stderr  # graceful
    assert f"bearer token from {server.token_file}" in stderr
    access = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any(a["path"] == "/v1/models/lm-run/predict" and a["status"] == 422 for a in access)


def test_a_session_moves_from_one_server_process_to_another(runs, tmp_path):
    tokens = token_file(tmp_path)
    steps = [{"text": "sat on"}, {"generate": 6, "seed": 4}]
    with ServerProcess(runs["lm"], tokens) as first, ServerProcess(runs["lm"], tokens) as second:
        sid = first.open_session("lm-run", start={"prefix": "the cat"})
        first.steps(sid, [{"text": "a dog ran"}])
        moved = second.open_session("lm-run", state=first.export_session(sid)["state"])
        assert second.steps(moved, steps) == first.steps(sid, steps)


def test_the_engine_is_ready_before_the_models_are(runs, monkeypatch):
    from lstmkit import _engine
    monkeypatch.setattr(_engine, "_state", {"tried": False, "ext": None, "error": None})
    load_models([runs["lm"]])
    assert _engine._state["tried"]                              # built or loaded: no compile in a request


def test_serve_command_errors(runs, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["serve", str(runs["lm"]), "--port", "70000"])
    assert "expected a port in 1..65535" in capsys.readouterr().err
    assert cli.main(["serve", str(tmp_path / "nowhere"), "--token-file", str(tmp_path / "none")]) == 2
    assert "token file" in capsys.readouterr().err
    token_file = tmp_path / "tokens"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    assert cli.main(["serve", str(runs["lm"]), str(runs["lm"]), "--token-file", str(token_file)]) == 2
    assert "two runs are both named 'lm-run'" in capsys.readouterr().err


@pytest.mark.parametrize("host, warned", [("0.0.0.0", True), ("192.168.1.5", True), ("127.0.0.1", False),
                                          ("localhost", False), ("::1", False)])
def test_serving_beyond_this_machine_is_said(runs, tmp_path, capsys, monkeypatch, host, warned):
    import uvicorn
    listened = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: listened.append(options["host"]))  # never binds
    token_file = tmp_path / "tokens"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    assert cli.main(["serve", str(runs["lm"]), "--host", host, "--token-file", str(token_file)]) == 0
    err = capsys.readouterr().err
    assert listened == [host] and ("reachable from other machines" in err) == warned
    assert not warned or str(token_file) in err


# ---------------------------------------------------------------------------------------------
# streaming sessions


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _session_app(runs, **options):
    return create_app(load_models([runs["lm"], runs["classify"], runs["anomaly"], runs["forecast"]]),
                      [TOKEN, "a-second-token-of-32-characters-"], **options)


def _headers(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


def test_a_session_reads_and_generates_as_the_model_does_on_the_whole_text(runs):
    import torch

    from lstmkit.models.generation import generate
    from lstmkit.runs import load_run
    loaded = load_run(runs["lm"])
    task, meta, model = loaded.task, loaded.fitted, loaded.model
    vocab = meta.vocab
    with TestClient(_session_app(runs)) as client:
        opened = client.post("/v1/models/lm-run/sessions", json={"start": {"prefix": "the cat"}}, headers=_headers())
        assert opened.status_code == 201, opened.text
        sid = opened.json()["session"]
        assert len(sid) >= 32 and opened.json()["output"]["tokens"] == ["the", "cat"]
        answer = client.post(f"/v1/sessions/{sid}/steps", headers=_headers(),
                             json={"steps": [{"text": "sat on the zebra"}, {"generate": 8, "seed": 5}]})
        assert answer.status_code == 200, answer.text
        read, generated = answer.json()["outputs"]
    ids = meta.ids(["<eos>", "the", "cat", "sat", "on", "the", "zebra"])
    expected = task.log_probs(model, ids)[2:]                              # the four read tokens
    assert read["tokens"] == ["sat", "on", "the", "<unk>"] and read["unknown"] == 1
    assert torch.allclose(torch.tensor(read["log_probs"], dtype=torch.float64), expected, atol=2e-6)
    alone = [vocab[t] for t in generate(model, ids.tolist(), max_tokens=8, seed=5)]
    assert generated["tokens"] == alone


def test_concurrent_sessions_run_in_batches_equal_to_each_session_alone(runs):
    from concurrent.futures import ThreadPoolExecutor
    prefixes = ["the cat", "a dog ran", "the", "on a log", "the mat"]
    steps = [{"text": "sat on the mat"}, {"generate": 6, "seed": 1, "temperature": 0.8}, {"text": "a dog"}]

    def run_all(client, concurrent: bool):
        sids = [client.post("/v1/models/lm-run/sessions", json={"start": {"prefix": p}}, headers=_headers())
                .json()["session"] for p in prefixes]

        def one(sid):
            return client.post(f"/v1/sessions/{sid}/steps", json={"steps": steps}, headers=_headers()).json()["outputs"]
        if not concurrent:
            return [one(sid) for sid in sids]
        with ThreadPoolExecutor(len(sids)) as pool:
            return list(pool.map(one, sids))

    with TestClient(_session_app(runs, max_batch=1, max_wait=0)) as client:
        alone = run_all(client, concurrent=False)
    with TestClient(_session_app(runs, max_batch=64, max_wait=0.05)) as client:
        together = run_all(client, concurrent=True)
        metrics = client.get("/metrics", headers=_headers()).text
    batched = [line for line in metrics.splitlines() if line.startswith('lstmkit_step_batch_size_bucket{le="1.0"')]
    total = [line for line in metrics.splitlines() if line.startswith("lstmkit_step_batch_size_count")]
    assert float(batched[0].split()[-1]) < float(total[0].split()[-1])        # some steps ran in batches of > 1
    for a, b in zip(alone, together):
        for x, y in zip(a, b):
            assert x["tokens"] == y["tokens"]
            if "log_probs" in x:
                assert np.allclose(x["log_probs"], y["log_probs"], atol=1e-6)


def test_an_exported_session_resumes_exactly_in_another_server(runs):
    steps = {"steps": [{"generate": 5, "seed": 2}, {"text": "the cat sat"}]}
    with TestClient(_session_app(runs)) as first:
        sid = first.post("/v1/models/lm-run/sessions", json={"start": {"prefix": "a dog"}}, headers=_headers()).json()["session"]
        first.post(f"/v1/sessions/{sid}/steps", json={"steps": [{"text": "ran on"}]}, headers=_headers())
        exported = first.get(f"/v1/sessions/{sid}/state", headers=_headers()).json()
        assert exported["model"] == "lm-run"
        original = first.post(f"/v1/sessions/{sid}/steps", json=steps, headers=_headers()).json()["outputs"]
    with TestClient(_session_app(runs)) as second:
        resumed = second.post("/v1/models/lm-run/sessions", json={"state": exported["state"]}, headers=_headers())
        assert resumed.status_code == 201 and resumed.json()["output"] == {"resumed": True}
        again = second.post(f"/v1/sessions/{resumed.json()['session']}/steps", json=steps, headers=_headers())
        assert again.json()["outputs"] == original
        both = second.post("/v1/models/lm-run/sessions", json={"start": {"prefix": "a"}, "state": exported["state"]},
                           headers=_headers())
        assert both.status_code == 422 and "got both" in both.text
        sid = resumed.json()["session"]
        huge = second.post(f"/v1/sessions/{sid}/steps", json={"steps": [{"generate": 2, "seed": 2**70}]},
                           headers=_headers())
        assert huge.status_code == 422 and "seed" in huge.text and "Overflow" not in huge.text
        bad = dict(exported["state"], logits=exported["state"]["logits"][:3])
        answer = second.post("/v1/models/lm-run/sessions", json={"state": bad}, headers=_headers())
        assert answer.status_code == 422 and "logits" in answer.json()["detail"]


def test_sessions_expire_are_capped_belong_to_their_token_and_close(runs):
    clock = _Clock()
    with TestClient(_session_app(runs, max_sessions=2, idle_timeout=60, clock=clock)) as client:
        first = client.post("/v1/models/lm-run/sessions", json={}, headers=_headers()).json()["session"]
        second = client.post("/v1/models/lm-run/sessions", json={}, headers=_headers()).json()["session"]
        full = client.post("/v1/models/lm-run/sessions", json={}, headers=_headers())
        assert full.status_code == 429 and "maximum of 2 sessions" in full.json()["detail"]
        assert full.headers["retry-after"] == "60"
        other = client.post(f"/v1/sessions/{first}/steps", json={"steps": [{"text": "the"}]},
                            headers=_headers("a-second-token-of-32-characters-"))
        assert other.status_code == 404                                   # another token's session does not exist
        clock.now = 50
        assert client.post(f"/v1/sessions/{first}/steps", json={"steps": [{"text": "the"}]},
                           headers=_headers()).status_code == 200
        clock.now = 100                                                   # second idle for 100 s, first for 50 s
        assert client.post(f"/v1/sessions/{second}/steps", json={"steps": [{"text": "the"}]},
                           headers=_headers()).status_code == 404
        assert client.delete(f"/v1/sessions/{first}", headers=_headers()).status_code == 204
        assert client.delete(f"/v1/sessions/{first}", headers=_headers()).status_code == 404
        assert 'lstmkit_active_sessions 0.0' in client.get("/metrics", headers=_headers()).text
        bad = client.post("/v1/models/lm-run/sessions", json={"start": {"prefx": "the"}}, headers=_headers())
        assert bad.status_code == 422 and "prefx" in bad.json()["detail"]
        sid = client.post("/v1/models/lm-run/sessions", json={}, headers=_headers()).json()["session"]
        for step, field in (({"text": "a", "generate": 2}, "exactly one"), ({"generate": 0}, "generate"),
                            ({"generate": 2, "top_p": 1.5}, "top_p")):
            answer = client.post(f"/v1/sessions/{sid}/steps", json={"steps": [step]}, headers=_headers())
            assert answer.status_code == 422 and field in answer.json()["detail"], answer.text
        answer = client.post("/v1/models/classify-run/sessions", json={}, headers=_headers())
        assert answer.status_code == 409 and "no streaming sessions" in answer.json()["detail"]
        assert client.post("/v1/models/lm-run/sessions", json={}).status_code == 401


def test_an_anomaly_session_scores_each_point_as_predict_does_in_the_whole_series(runs):
    from concurrent.futures import ThreadPoolExecutor
    rng = np.random.default_rng(1)
    series = [np.sin(2 * np.pi * np.arange(60) / 12) + 0.1 * rng.normal(size=60) for _ in range(3)]
    series[1][40:43] += 3.0
    expected = predict(runs["anomaly"], [{"values": v.tolist()} for v in series])
    with TestClient(_session_app(runs, max_wait=0.02)) as client:
        def session(values):
            opened = client.post("/v1/models/anomaly-run/sessions", json={"start": {"values": values[:5].tolist()}},
                                 headers=_headers())
            assert opened.status_code == 201, opened.text
            sid, outputs = opened.json()["session"], [opened.json()["output"]]
            for chunk in (values[5:20], values[20:21], values[21:]):
                answer = client.post(f"/v1/sessions/{sid}/steps", json={"steps": [{"values": chunk.tolist()}]},
                                     headers=_headers())
                outputs += answer.json()["outputs"]
            return outputs
        with ThreadPoolExecutor(3) as pool:                              # three sessions at once: batched
            results = list(pool.map(session, series))
        bad = client.post(f"/v1/sessions/{client.post('/v1/models/anomaly-run/sessions', json={}, headers=_headers()).json()['session']}/steps",
                          json={"steps": [{"values": [1e300]}]}, headers=_headers())
        assert bad.status_code == 422 and "float32" in bad.json()["detail"]
        for value in (True, "1"):                                        # a number, not one by coercion
            bad = client.post("/v1/models/anomaly-run/sessions", json={"start": {"values": [1.0, value]}},
                              headers=_headers())
            assert bad.status_code == 422 and "values.1" in str(bad.json()["detail"]), bad.text
    for outputs, want in zip(results, expected):
        scores = [s for o in outputs for s in o["scores"]]
        assert np.allclose(scores, want["scores"], rtol=1e-6, atol=1e-9)
        assert [i for o in outputs for i in o["anomalies"]] == want["anomalies"]


def test_a_forecast_session_forecasts_as_predict_does_from_the_same_history(runs):
    values = (2 + np.sin(np.arange(40) / 2)).round(4)
    with TestClient(_session_app(runs)) as client:
        opened = client.post("/v1/models/forecast-run/sessions", json={"start": {"values": values[:5].tolist(), "start": 7}},
                             headers=_headers())
        assert opened.status_code == 201 and opened.json()["output"] == {"forecast": None}   # fewer than the window
        sid, seen = opened.json()["session"], 5
        for end in (12, 13, 30, 40):
            answer = client.post(f"/v1/sessions/{sid}/steps", json={"steps": [{"values": values[seen:end].tolist()}]},
                                 headers=_headers())
            [expected] = predict(runs["forecast"], [{"history": values[:end].tolist(), "start": 7}])
            assert np.allclose(answer.json()["outputs"][0]["forecast"], expected["forecast"], rtol=1e-6)
            seen = end
        refused = client.post(f"/v1/sessions/{sid}/steps", json={"steps": [{"values": [-5.0]}]}, headers=_headers())
        assert refused.status_code == 422 and "sqrt" in refused.json()["detail"]
        after = client.post(f"/v1/sessions/{sid}/steps", json={"steps": [{"values": [2.5]}]}, headers=_headers())
        [expected] = predict(runs["forecast"], [{"history": [*values.tolist(), 2.5], "start": 7}])
        assert np.allclose(after.json()["outputs"][0]["forecast"], expected["forecast"], rtol=1e-6)  # unchanged by it


def test_the_websocket_form_gives_the_same_outputs_as_requests(runs):
    from starlette.websockets import WebSocketDisconnect
    steps = [{"text": "the cat sat"}, {"generate": 4, "seed": 3}]
    with TestClient(_session_app(runs)) as client:
        sids = [client.post("/v1/models/lm-run/sessions", json={"start": {"prefix": "a dog"}}, headers=_headers())
                .json()["session"] for _ in range(2)]
        expected = client.post(f"/v1/sessions/{sids[0]}/steps", json={"steps": steps}, headers=_headers()).json()
        with client.websocket_connect(f"/v1/sessions/{sids[1]}/stream", headers=_headers()) as socket:
            got = []
            for step in steps:
                socket.send_text(json.dumps(step))
                got.append(json.loads(socket.receive_text()))
            socket.send_text(json.dumps({"generate": -1}))
            refused = json.loads(socket.receive_text())
            socket.send_text("{not json")
            not_json = json.loads(socket.receive_text())
        assert got == expected["outputs"]
        assert refused["status"] == 422 and "generate" in refused["error"] and not_json["status"] == 422
        for headers, path in ((_headers("wrong-token-of-32-characters-xxxxx"), sids[1]), (_headers(), "nothing")):
            with pytest.raises(WebSocketDisconnect):
                with client.websocket_connect(f"/v1/sessions/{path}/stream", headers=headers) as socket:
                    socket.receive_text()


def test_websocket_messages_are_bounded_and_bad_frames_get_an_error_reply(runs):
    from starlette.websockets import WebSocketDisconnect
    with TestClient(_session_app(runs, max_body=16384)) as client:
        sid = client.post("/v1/models/lm-run/sessions", json={"start": {}}, headers=_headers()).json()["session"]
        with client.websocket_connect(f"/v1/sessions/{sid}/stream", headers=_headers()) as socket:
            replies = []
            for send in (lambda: socket.send_bytes(b"\x00\x01"),                      # a binary frame
                         lambda: socket.send_text("[" * 3000 + "]" * 3000),            # nested past the parser
                         lambda: socket.send_text(json.dumps({"text": "a" * 10_001})),  # too long a step
                         lambda: socket.send_text("x" * 20_000)):                       # past --max-body
                send()
                replies.append(json.loads(socket.receive_text()))
            socket.send_text(json.dumps({"text": "the cat"}))
            still = json.loads(socket.receive_text())                            # the socket lives on
            assert client.delete(f"/v1/sessions/{sid}", headers=_headers()).status_code == 204
            socket.send_text(json.dumps({"text": "the cat"}))
            with pytest.raises(WebSocketDisconnect) as ended:                     # the session is gone: so is the socket
                socket.receive_text()
    assert [r["status"] for r in replies] == [422, 422, 422, 413], replies
    assert "binary frame" in replies[0]["error"] and "nested too deeply" in replies[1]["error"]
    assert "text" in replies[2]["error"] and "10000" in replies[2]["error"].replace(",", "")
    assert still["tokens"] == ["the", "cat"] and ended.value.code == 4404


def test_the_api_docs_work_offline_and_declare_the_bearer_scheme(client, monkeypatch, tmp_path):
    from lstmkit.serve import docs
    page = client.get("/docs", headers={"Authorization": ""})
    if page.status_code == 404:
        pytest.skip(page.json()["detail"])
    assert page.status_code == 200 and "cdn" not in page.text.lower() and "//" not in page.text.replace("://", "")
    assert client.get("/docs/assets/swagger-ui-bundle.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/docs/assets/../auth.py").status_code == 404
    schema = client.get("/openapi.json", headers={"Authorization": ""}).json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "/v1/sessions/{sid}/steps" in schema["paths"]
    monkeypatch.setenv("LSTMKIT_DATA", str(tmp_path))
    monkeypatch.setattr("sys.prefix", str(tmp_path))                   # no tarball anywhere
    assert "npm pack swagger-ui-dist@5.35.0" in docs._assets()


# ---------------------------------------------------------------------------------------------
# schema fuzzing: whatever the OpenAPI schema allows, the server answers without a 5xx

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")


def test_no_request_the_schema_allows_gets_a_server_error(runs):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    schema = schemathesis.openapi.from_asgi("/openapi.json", _session_app(runs, max_sessions=5))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    seen = set()

    @given(st.data())
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(operation, data):
        case = data.draw(operation.as_strategy())
        for token in (TOKEN, "wrong-token-of-32-characters-xxxxx"):
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            assert response.status_code < 500, (case.method, case.path, case.body, response.text)
            seen.add((case.method, case.path, response.status_code))

    for operation in operations:
        check(operation)
    assert {path for _, path, _ in seen} == {o.path for o in operations}
    assert {"POST /v1/models/{name}/predict 422", "POST /v1/models/{name}/sessions 201",
            "GET /v1/models 401"} <= {f"{m} {p} {status}" for m, p, status in seen}   # served names are drawn


@pytest.mark.parametrize("mount,least", [("/openai/v1", 2), ("/v2", 5)])
def test_no_request_the_protocols_schemas_allow_gets_a_server_error(runs, mount, least):
    """The mounted protocols (OpenAI completions, the Open Inference Protocol) publish their own
    schemas at MOUNT/openapi.json; fuzzed through the whole application, as clients reach them."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    app = _session_app(runs, max_sessions=5)
    [sub] = [route.app for route in app.routes if getattr(route, "path", None) == mount]
    schema = schemathesis.openapi.from_asgi("/openapi.json", sub)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= least
    client, seen = TestClient(app), set()

    @given(st.data())
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(operation, data):
        case = data.draw(operation.as_strategy())
        for token in (TOKEN, "wrong-token-of-32-characters-xxxxx"):
            kwargs = case.as_transport_kwargs(base_url=mount, headers={"Authorization": f"Bearer {token}"})
            response = client.request(**{k: v for k, v in kwargs.items() if k in ("method", "url", "headers", "params",
                                                                                   "json", "content")})
            assert response.status_code < 500, (case.method, case.path, case.body, response.text)
            seen.add((case.path, response.status_code))

    for operation in operations:
        check(operation)
    assert {path for path, _ in seen} == {o.path for o in operations}
    assert any(status == 401 for _, status in seen) and any(status < 300 for _, status in seen)


@pytest.mark.parametrize("pooling,cell,layers", [("last", "lstm", 1), ("mean", "gru", 2), ("max", "peephole", 2)])
def test_a_classifier_session_gives_the_probabilities_of_the_prefix_as_predict_does(tmp_path, pooling, cell, layers):
    rng = np.random.default_rng(0)
    two_class_series(tmp_path / "series.jsonl", 40, rng)
    run = tmp_path / f"classify-{pooling}"
    train(load_config(None, ["data.dataset=files", f"data.train_file={tmp_path / 'series.jsonl'}", "model.hidden_size=6",
                             f"model.cell={cell}", f"model.num_layers={layers}", "model.bidirectional=false",
                             f"model.pooling={pooling}", "model.residual=false", "optim.epochs=1", "data.batch_size=16",
                             "trainer.progress_bar=false"]), run, quiet=True)
    x = rng.normal(0, 1, (9, 2)).round(3)
    with TestClient(create_app(load_models([run]), [TOKEN])) as client:
        opened = client.post(f"/v1/models/{run.name}/sessions", json={"start": {"x": x[:2].tolist()}}, headers=_headers())
        assert opened.status_code == 201, opened.text
        sid, outputs = opened.json()["session"], [(2, opened.json()["output"])]
        for end in (3, 7, 9):
            answer = client.post(f"/v1/sessions/{sid}/steps", json={"steps": [{"x": x[outputs[-1][0]:end].tolist()}]},
                                 headers=_headers())
            outputs.append((end, answer.json()["outputs"][0]))
        exported = client.get(f"/v1/sessions/{sid}/state", headers=_headers()).json()["state"]
        moved = client.post(f"/v1/models/{run.name}/sessions", json={"state": exported}, headers=_headers())
        more = {"steps": [{"x": [[0.5, -0.5]]}]}
        assert (client.post(f"/v1/sessions/{moved.json()['session']}/steps", json=more, headers=_headers()).json()["outputs"]
                == client.post(f"/v1/sessions/{sid}/steps", json=more, headers=_headers()).json()["outputs"])
        wrong = client.post(f"/v1/sessions/{sid}/steps", json={"steps": [{"x": [[1.0, 2.0, 3.0]]}]}, headers=_headers())
        assert wrong.status_code == 422 and "2 features" in wrong.json()["detail"]
    for end, output in outputs:
        [expected] = predict(run, [{"x": x[:end].tolist()}])
        assert output["label"] == expected["label"]
        assert np.allclose(list(output["probabilities"].values()), list(expected["probabilities"].values()), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# readiness: nothing left to compile or initialise after /readyz

def test_a_first_request_after_readiness_costs_what_later_ones_cost_with_an_empty_home(runs, tmp_path, monkeypatch):
    for name in ("LSTMKIT_ENGINE_DIR", "XDG_CACHE_HOME", "LSTMKIT_ENGINE"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))                   # a new container, another user: no cache
    record = {"x": [[0.5, -0.5]] * 6}
    with ServerProcess(runs["classify"], token_file(tmp_path)) as client:
        times = []
        for _ in range(8):
            start = time.perf_counter()
            client.predict("classify-run", [record])
            times.append(time.perf_counter() - start)
    later = sorted(times[1:])[len(times) // 2]
    assert times[0] < max(5 * later, later + 0.05), times     # no compile, no first-call set-up left
    assert not (home / ".cache" / "lstmkit").exists()       # no engine was built for this HOME


def test_each_served_model_is_warmed_up_with_its_task_example(runs, monkeypatch):
    from lstmkit.serve.models import ServedModel
    seen = []
    monkeypatch.setattr(ServedModel, "predict", lambda self, records, **_: seen.append((self.name, records)))
    load_models(list(runs.values()))
    assert sorted(name for name, _ in seen) == sorted(path.name for path in runs.values())
    for path in runs.values():                              # each example is a record its run predicts
        assert predict(path, [r for name, records in seen if name == path.name for r in records])
