"""``lstmkit serve``: trained runs behind HTTP for real-time clients (FastAPI on uvicorn)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from collections.abc import Sequence

from .arguments import positive_int
from .errors import guarded

__all__ = ["main"]


def _port(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port in 1..65535, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lstmkit serve", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve trained runs over HTTP, read-only: nothing can be loaded or changed through the API. "
                    "Every route but /healthz, /readyz and /openapi.json needs `Authorization: Bearer TOKEN`.",
        epilog="routes:\n"
               "  GET  /v1/models                    the models, their input and output schemas\n"
               "  POST /v1/models/NAME/predict       {\"records\": [...]} -> {\"predictions\": [...]}\n"
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
    args = parser.parse_args(argv)
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
        app = create_app(models, tokens, max_body=args.max_body)
        print(f"lstmkit serve: {len(models)} model(s): {', '.join(models)}", file=sys.stderr)
        print(f"lstmkit serve: bearer token{'s' if len(tokens) > 1 else ''} from {path}"
              + (" (created now, mode 600)" if created else ""), file=sys.stderr)
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="info")

    return guarded("lstmkit serve", run)
