"""The Open Inference Protocol (KServe v2) under ``/v2``: metadata, readiness, inference in JSON
and in the binary tensor extension equal to ``lstmkit predict``, errors naming the tensor, and
``tritonclient`` against a real server process."""

import json

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

from fastapi.testclient import TestClient  # noqa: E402

from lstmkit.runs import predict  # noqa: E402
from lstmkit.serve import create_app, load_models  # noqa: E402
from serving import TOKEN, ServerProcess, token_file  # noqa: E402

SERIES = [[[1.0, 0.1], [0.9, -0.2], [1.1, 0.0]], [[-1.0, 0.0]] * 5]


@pytest.fixture(scope="module")
def client(runs):
    app = create_app(load_models(list(runs.values())), [TOKEN])
    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield test_client


def _padded(sequences):
    lengths = [len(s) for s in sequences]
    width = len(sequences[0][0])
    x = np.zeros((len(sequences), max(lengths), width), np.float32)
    for i, s in enumerate(sequences):
        x[i, :len(s)] = s
    return x, np.asarray(lengths, np.int64)


def _infer(client, name, inputs, **extra):
    answer = client.post(f"/v2/models/{name}/infer", json={"inputs": inputs, **extra})
    return answer.status_code, answer.json()


def test_metadata_readiness_and_health(client):
    assert client.get("/v2/health/live", headers={"Authorization": ""}).json() == {"live": True}
    assert client.get("/v2/health/ready", headers={"Authorization": ""}).json() == {"ready": True}
    assert client.get("/v2").json()["extensions"] == ["binary_tensor_data"]
    meta = client.get("/v2/models/classify-run").json()
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, -1, 2]},
                              {"name": "lengths", "datatype": "INT64", "shape": [-1], "parameters": {"optional": True}}]
    assert meta["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
                               {"name": "label", "datatype": "BYTES", "shape": [-1]}]
    assert client.get("/v2/models/lm-run/ready").json() == {"name": "lm-run", "ready": True}
    assert client.get("/v2/models/nothing").status_code == 404
    assert client.get("/v2/models/lm-run", headers={"Authorization": ""}).status_code == 401


def test_inference_equals_predict_for_each_task(client, runs):
    x, lengths = _padded(SERIES)
    status, out = _infer(client, "classify-run", [
        {"name": "x", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()},
        {"name": "lengths", "datatype": "INT64", "shape": [2], "data": lengths.tolist()}], id="r1")
    assert status == 200 and out["id"] == "r1" and out["model_name"] == "classify-run"
    expected = predict(runs["classify"], [{"x": s} for s in SERIES])
    outputs = {o["name"]: o for o in out["outputs"]}
    assert outputs["label"]["data"] == [e["label"] for e in expected]
    assert np.allclose(np.reshape(outputs["probabilities"]["data"], (2, 2)),
                       [[e["probabilities"][c] for c in ("c0", "c1")] for e in expected], atol=1e-6)

    texts = ["the cat sat on the mat", "a dog ran"]
    status, out = _infer(client, "lm-run", [{"name": "text", "datatype": "BYTES", "shape": [2], "data": texts}])
    assert status == 200
    assert out["outputs"][0]["data"] == pytest.approx([p["perplexity"] for p in predict(runs["lm"], texts)], rel=1e-6)

    history = (2 + np.sin(2 * np.pi * np.arange(30) / 12)).astype(np.float32)
    status, out = _infer(client, "forecast-run", [{"name": "history", "datatype": "FP32", "shape": [1, 30],
                                                   "data": history.tolist()}], outputs=[{"name": "forecast"}])
    assert status == 200 and out["outputs"][0]["shape"] == [1, 3]
    assert out["outputs"][0]["data"] == pytest.approx(predict(runs["forecast"], [{"history": history.tolist()}])[0]
                                                      ["forecast"], rel=1e-5)

    values = np.sin(np.arange(30) / 2).astype(np.float32)
    status, out = _infer(client, "anomaly-run", [{"name": "values", "datatype": "FP32", "shape": [1, 30],
                                                  "data": values.tolist()}])
    want = predict(runs["anomaly"], [{"values": values.tolist()}])[0]
    scores = {o["name"]: o for o in out["outputs"]}["scores"]["data"]
    assert status == 200 and scores == pytest.approx(want["scores"], rel=1e-5, abs=1e-7)


def test_the_binary_tensor_extension_is_read(client, runs):
    x, lengths = _padded(SERIES)
    header = {"inputs": [{"name": "x", "datatype": "FP32", "shape": list(x.shape),
                          "parameters": {"binary_data_size": x.nbytes}},
                         {"name": "lengths", "datatype": "INT64", "shape": [2],
                          "parameters": {"binary_data_size": lengths.nbytes}}]}
    head = json.dumps(header).encode()
    answer = client.post("/v2/models/classify-run/infer", content=head + x.tobytes() + lengths.tobytes(),
                         headers={"Inference-Header-Content-Length": str(len(head)),
                                  "Content-Type": "application/octet-stream"})
    assert answer.status_code == 200, answer.text
    labels = {o["name"]: o for o in answer.json()["outputs"]}["label"]["data"]
    assert labels == [e["label"] for e in predict(runs["classify"], [{"x": s} for s in SERIES])]
    raw = b"".join(len(t).to_bytes(4, "little") + t for t in [b"the cat sat", b"a dog"])
    head = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2],
                                   "parameters": {"binary_data_size": len(raw)}}]}).encode()
    answer = client.post("/v2/models/lm-run/infer", content=head + raw,
                         headers={"Inference-Header-Content-Length": str(len(head))})
    assert answer.status_code == 200 and len(answer.json()["outputs"][0]["data"]) == 2


@pytest.mark.parametrize("inputs, message", [
    ([{"name": "x", "datatype": "FP64", "shape": [1, 1, 2], "data": [0.0, 1.0]}], "expected datatype FP32, got 'FP64'"),
    ([{"name": "x", "datatype": "FP32", "shape": [1, 1, 3], "data": [0.0, 1.0, 2.0]}], "expected shape [-1, -1, 2]"),
    ([{"name": "x", "datatype": "FP32", "shape": [1, 2, 2], "data": [0.0, 1.0]}], "expected 4 values"),
    ([{"name": "y", "datatype": "FP32", "shape": [1], "data": [0.0]}], "'y': not an input of this model"),
    ([{"name": "lengths", "datatype": "INT64", "shape": [1], "data": [1]}], "missing inputs ['x']"),
    ([{"name": "x", "datatype": "FP32", "shape": [1, 1, 2], "data": ["a", "b"]}], "expected \"data\" of FP32 values"),
    ([{"name": "x", "datatype": "FP32", "shape": [1, 1, 2], "data": [[1.0, 2.0], [3.0]]}], "of one shape"),
    ([{"name": "x", "datatype": "FP32", "shape": [1, 2, 2], "data": [0.0, 1.0, 2.0, 3.0]},
      {"name": "lengths", "datatype": "INT64", "shape": [1], "data": [3]}], "expected lengths from 1 to 2"),
])
def test_bad_tensors_are_400_naming_the_tensor(client, inputs, message):
    status, out = _infer(client, "classify-run", inputs)
    assert status == 400 and message in out["error"], out


def test_tritonclient_against_a_real_server(runs, tmp_path):
    http = pytest.importorskip("tritonclient.http")
    server = ServerProcess(runs["classify"], token_file(tmp_path))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    x, lengths = _padded(SERIES)
    with server:
        client = http.InferenceServerClient(server.url.removeprefix("http://"))
        assert client.is_server_live(headers=headers) and client.is_model_ready("classify-run", headers=headers)
        assert [i["name"] for i in client.get_model_metadata("classify-run", headers=headers)["inputs"]] == \
            ["x", "lengths"]
        inputs = [http.InferInput("x", list(x.shape), "FP32"), http.InferInput("lengths", [2], "INT64")]
        inputs[0].set_data_from_numpy(x)                       # binary, as tritonclient sends by default
        inputs[1].set_data_from_numpy(lengths)
        result = client.infer("classify-run", inputs, headers=headers)
        with pytest.raises(Exception, match="expected datatype FP32"):
            bad = http.InferInput("x", list(x.shape), "FP64")
            bad.set_data_from_numpy(x.astype(np.float64))
            client.infer("classify-run", [bad], headers=headers)
        client.close()
    expected = predict(runs["classify"], [{"x": s} for s in SERIES])
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")]
    assert labels == [e["label"] for e in expected]
    assert np.allclose(result.as_numpy("probabilities"), [[e["probabilities"][c] for c in ("c0", "c1")]
                                                          for e in expected], atol=1e-6)
