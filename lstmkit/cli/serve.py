"""``lstmkit serve``: trained runs behind HTTP for real-time clients (FastAPI on uvicorn)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import re
import sys
from collections.abc import Sequence

from .arguments import non_negative_int, positive_int
from .errors import guarded

__all__ = ["main"]


def _port(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port in 1..65535, got {value}")
    return value


def _loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    return host == "localhost" or ipaddress.ip_address(host).is_loopback


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lstmkit serve", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve trained runs over HTTP, read-only: nothing can be loaded or changed through the API. "
                    "Every route but /healthz, /readyz, /openapi.json and /docs needs `Authorization: Bearer TOKEN`.",
        epilog="routes:\n"
               "  GET  /v1/models                    the models, their input and output schemas\n"
               "  POST /v1/models/NAME/predict       {\"records\": [...]} -> {\"predictions\": [...]}\n"
               "  POST /v1/models/NAME/sessions      open a streaming session: {\"start\": {...}} or {\"state\": ...}\n"
               "  POST /v1/sessions/ID/steps         {\"steps\": [...]} -> {\"outputs\": [...]}; "
               "WebSocket /v1/sessions/ID/stream\n"
               "  GET  /v1/sessions/ID/state         export a session; DELETE /v1/sessions/ID closes it\n"
               "  GET  /healthz, /readyz, /metrics   liveness, readiness, Prometheus metrics\n"
               "examples:\n"
               "  lstmkit serve runs/RUN_A runs/RUN_B --port 8000\n"
               "  curl -H \"Authorization: Bearer $(cat ~/.config/lstmkit/serve-token)\" "
               "http://127.0.0.1:8000/v1/models")
    parser.add_argument("runs", nargs="+", help="run directories (or checkpoint files); a model's NAME is its "
                                                "directory's name")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine "
                                                            "only)")
    parser.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    parser.add_argument("--token-file", help="file of accepted bearer tokens, one per line, mode 600 (default: "
                                             "~/.config/lstmkit/serve-token, created with a new token if missing)")
    parser.add_argument("--max-body", type=positive_int, default=1 << 20,
                        help="largest request body in bytes; larger ones get 413 (default 1048576)")
    parser.add_argument("--max-sessions", type=positive_int, default=1000,
                        help="streaming sessions alive at once; more get 429 (default 1000)")
    parser.add_argument("--idle-timeout", type=positive_int, default=300,
                        help="seconds after which an unused session is dropped (default 300)")
    parser.add_argument("--max-batch", type=positive_int, default=64,
                        help="most sessions whose steps run as one batch (default 64)")
    parser.add_argument("--max-wait-ms", type=non_negative_int, default=0,
                        help="milliseconds a step waits for other sessions' steps to batch with; the steps that "
                             "arrive while a batch runs form the next one anyway (default 0)")
    parser.add_argument("--replica", help="this server's name among replicas behind a proxy (1 to 16 lowercase "
                                          "letters and digits): it starts every session id, so the proxy routes a "
                                          "session to its replica (lstmkit.serve.proxy.write_haproxy)")
    args = parser.parse_args(argv)
    if args.replica is not None and not re.fullmatch(r"[a-z0-9]{1,16}", args.replica):
        parser.error(f"argument --replica: expected 1 to 16 lowercase letters and digits, got {args.replica!r}")
    try:
        ipaddress.ip_address(args.host)
    except ValueError:
        if args.host != "localhost":
            parser.error(f"argument --host: expected an IP address, got {args.host!r}")

    def run() -> None:
        import uvicorn

        from ..serve import create_app, load_models, load_tokens
        tokens, path, created = load_tokens(args.token_file)
        models = load_models(args.runs)
        app = create_app(models, tokens, max_body=args.max_body, max_sessions=args.max_sessions,
                         idle_timeout=args.idle_timeout, max_batch=args.max_batch, max_wait=args.max_wait_ms / 1000,
                         replica=args.replica)
        print(f"lstmkit serve: {len(models)} model(s): {', '.join(models)}", file=sys.stderr)
        if not _loopback(args.host):
            print(f"lstmkit serve: warning: listening on {args.host}, reachable from other machines; anyone with a "
                  f"token of {path} can use these models (put a TLS proxy in front)", file=sys.stderr)
        print(f"lstmkit serve: bearer token{'s' if len(tokens) > 1 else ''} from {path}"
              + (" (created now, mode 600)" if created else ""), file=sys.stderr)
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"lstmkit serve: try the models in a browser at http://{host}:{args.port}/ui (it asks for the token) "
              f"and the API at /docs", file=sys.stderr)
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="info")

    return guarded("lstmkit serve", run)
