"""The Open Inference Protocol (KServe v2; Triton, Seldon MLServer, TorchServe's KServe mode)
under ``/v2``, for every served run whose task has a tensor form (``Task.tensors``).

``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/NAME`` (its input and
output tensors), ``/v2/models/NAME/ready`` and ``POST /v2/models/NAME/infer``: the inputs as
JSON ``data`` or in the binary tensor extension (``Inference-Header-Content-Length``, as
``tritonclient`` sends them), the outputs as JSON. An inference is ``lstmkit predict`` on the
records the tensors hold (tested equal); errors are 400 ``{"error": "..."}`` naming the tensor.
The same bearer tokens as every other route, but for the health routes.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..runs.tensors import DATATYPES, TensorSpec
from .http import Refused
from .server import Server

__all__ = ["inference_app", "read_tensors"]

_NUMERIC = {"FP32": "<f4", "FP64": "<f8", "INT32": "<i4", "INT64": "<i8"}


def _bytes_elements(raw: bytes, name: str) -> list[bytes]:
    """The elements of a BYTES tensor in the binary extension: each a 4-byte little-endian length
    and its bytes."""
    out, at = [], 0
    while at < len(raw):
        if at + 4 > len(raw):
            raise Refused(400, f"input {name!r}: binary BYTES data ends inside an element's length")
        size = int.from_bytes(raw[at:at + 4], "little")
        if at + 4 + size > len(raw):
            raise Refused(400, f"input {name!r}: binary BYTES data ends inside an element")
        out.append(raw[at + 4:at + 4 + size])
        at += 4 + size
    return out


def _array(entry: dict, spec: TensorSpec, binary: bytes | None) -> np.ndarray:
    name, datatype, shape = entry["name"], entry.get("datatype"), entry.get("shape")
    if datatype != spec.datatype:
        raise Refused(400, f"input {name!r}: expected datatype {spec.datatype}, got {datatype!r}")
    if (not isinstance(shape, list) or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape)
            or len(shape) != len(spec.shape) or any(w not in (-1, d) for w, d in zip(spec.shape, shape))):
        raise Refused(400, f"input {name!r}: expected shape {spec.shape} (-1: any size), got {shape!r}")
    count = math.prod(shape)
    if binary is not None:
        if datatype == "BYTES":
            values = _bytes_elements(binary, name)
            if len(values) != count:
                raise Refused(400, f"input {name!r}: expected {count} elements for shape {shape}, got {len(values)}")
            return np.asarray(values, dtype=np.object_).reshape(shape)
        width = np.dtype(_NUMERIC[datatype]).itemsize
        if len(binary) != count * width:
            raise Refused(400, f"input {name!r}: expected {count * width} bytes for shape {shape}, got {len(binary)}")
        return np.frombuffer(binary, dtype=_NUMERIC[datatype]).reshape(shape)
    data = None
    if isinstance(entry.get("data"), list):
        try:
            data = np.asarray(entry["data"], dtype=np.object_ if datatype == "BYTES" else DATATYPES[datatype]).ravel()
        except (ValueError, TypeError, OverflowError):
            raise Refused(400, f"input {name!r}: expected \"data\" of {datatype} values (a flat or nested list of "
                                "one shape)") from None
    if data is None or data.size != count:
        got = "no data" if data is None else f"{data.size} values"
        raise Refused(400, f"input {name!r}: expected {count} values (shape {shape}) in \"data\", got {got}")
    if datatype == "BYTES" and not all(isinstance(v, str) for v in data.tolist()):
        raise Refused(400, f"input {name!r}: expected strings in \"data\" (BYTES)")
    if datatype in ("FP32", "FP64") and not np.isfinite(data.astype(np.float64)).all():
        raise Refused(400, f"input {name!r}: expected finite numbers")
    return data.reshape(shape)


def read_tensors(header: dict, binary: bytes, specs: list[TensorSpec]) -> dict[str, np.ndarray]:
    """The named input arrays of an inference request (``header``: its JSON part; ``binary``: the
    bytes after it), checked against ``specs``."""
    entries = header.get("inputs")
    if not isinstance(entries, list) or not entries:
        raise Refused(400, "expected \"inputs\": a list of tensors")
    known = {spec.name: spec for spec in specs}
    tensors, at = {}, 0
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise Refused(400, "expected each input to be an object with a \"name\"")
        spec = known.get(entry["name"])
        if spec is None:
            raise Refused(400, f"input {entry['name']!r}: not an input of this model (inputs: {sorted(known)})")
        size = (entry.get("parameters") or {}).get("binary_data_size")
        chunk = None
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0 or at + size > len(binary):
                raise Refused(400, f"input {entry['name']!r}: binary_data_size {size!r} past the body's end")
            chunk, at = binary[at:at + size], at + size
        tensors[entry["name"]] = _array(entry, spec, chunk)
    missing = [spec.name for spec in specs if not spec.optional and spec.name not in tensors]
    if missing:
        raise Refused(400, f"missing inputs {missing} (inputs: {[s.describe() for s in specs]})")
    return tensors


def _output(name: str, array: np.ndarray, datatype: str) -> dict:
    data = [v.decode("utf-8") if isinstance(v, bytes) else v for v in array.ravel().tolist()]
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": data}


def inference_app(server: Server) -> FastAPI:
    """The Open Inference Protocol's routes over ``server``'s runs, to mount at ``/v2``."""
    app = FastAPI(title="lstmkit serve: Open Inference Protocol", version="2", docs_url=None, redoc_url=None)
    authorised = server.authorised()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused):
        return JSONResponse({"error": error.message}, status_code=error.status)

    def form(name: str):
        served = server.served(name)
        if served.task.tensors is None:
            raise Refused(400, f"model {name!r} (task {served.task.name!r}) has no tensor form")
        return served, served.task.tensors(served.run.fitted)

    @app.get("/")
    def metadata() -> dict:
        return {"name": "lstmkit", "version": importlib.metadata.version("lstmkit"), "extensions": ["binary_tensor_data"]}

    @app.get("/health/live")
    def live() -> dict:
        return {"live": True}

    @app.get("/health/ready")
    def ready() -> dict:
        return {"ready": True}

    @app.get("/models/{name}", dependencies=[Depends(authorised)])
    def model_metadata(name: str) -> dict:
        served, tensors = form(name)
        return {"name": name, "versions": ["1"], "platform": f"lstmkit_{served.task.name}",
                "inputs": [s.describe() for s in tensors.inputs()], "outputs": [s.describe() for s in tensors.outputs()]}

    @app.get("/models/{name}/ready", dependencies=[Depends(authorised)])
    def model_ready(name: str) -> dict:
        form(name)
        return {"name": name, "ready": True}

    @app.post("/models/{name}/infer", dependencies=[Depends(authorised)])
    async def infer(name: str, request: Request) -> JSONResponse:
        served, tensors = form(name)
        body = await request.body()
        length = request.headers.get("inference-header-content-length")
        if length is not None and (not length.isdigit() or int(length) > len(body)):
            raise Refused(400, f"Inference-Header-Content-Length {length!r}: expected the JSON header's size in "
                                f"bytes, at most the body's {len(body)}")
        split = int(length) if length is not None else len(body)
        try:
            header: Any = json.loads(body[:split])
        except (ValueError, RecursionError) as error:
            raise Refused(400, f"the request is not JSON ({type(error).__name__})") from None
        if not isinstance(header, dict):
            raise Refused(400, "expected a JSON object with \"inputs\"")
        inputs = read_tensors(header, body[split:], tensors.inputs())
        wanted = [o.get("name") if isinstance(o, dict) else o for o in header.get("outputs") or []]
        specs = {s.name: s for s in tensors.outputs()}
        unknown = [w for w in wanted if w not in specs]
        if unknown:
            raise Refused(400, f"outputs {unknown}: not outputs of this model (outputs: {sorted(specs)})")
        try:
            records = tensors.records(inputs)
            predictions = served.predict(records)
        except (ValueError, TypeError) as error:
            raise Refused(400, str(error)) from None
        arrays = tensors.tensors(predictions)
        server.metrics.predicted.labels(name).inc(len(records))
        out = {"model_name": name, "model_version": "1",
               "outputs": [_output(n, arrays[n], specs[n].datatype) for n in (wanted or list(specs))]}
        if "id" in header:
            out["id"] = header["id"]
        return JSONResponse(out)

    return app
