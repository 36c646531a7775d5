"""Several ``lstmkit serve`` replicas behind HAProxy: the configuration that routes each session
to the replica that holds it and spreads everything else.

Each replica runs with ``--replica NAME``, which starts every session id it makes
(``NAME-...``); the proxy sends ``/v1/sessions/NAME-...`` to replica NAME and every other
request (predictions, new sessions, resumed ones, the OpenAI and KServe routes) round-robin to
the replicas its health checks (``/readyz``) find up. When a session's replica is down, the
proxy answers 503 with a JSON body that says what to do: open a new session, or resume one from
its exported state (``POST /v1/models/NAME/sessions`` with ``{"state": ...}``), which any
replica can.

>>> print(haproxy_config({"a": 8001, "b": 8002}, port=8000, errors="/etc/lstmkit"))  # doctest: +ELLIPSIS
global
...
    use_backend replica_a if { path_beg /v1/sessions/a- }
...
"""

from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["REPLICA", "haproxy_config", "session_down_response", "write_haproxy"]

#: A replica's name: it starts the ids of its sessions and names its HAProxy backend.
REPLICA = re.compile(r"[a-z0-9]{1,16}")


def session_down_response() -> str:
    """The raw HTTP response HAProxy gives for a session whose replica is down."""
    body = json.dumps({"detail": "the server holding this session is down or restarting: open a new session, or "
                                 "resume this one on another replica from its exported state (POST "
                                 "/v1/models/NAME/sessions with {\"state\": ...} from GET /v1/sessions/ID/state)"})
    return ("HTTP/1.0 503 Service Unavailable\r\nCache-Control: no-cache\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}")


def haproxy_config(replicas: dict[str, int], *, port: int, errors: str | Path, host: str = "127.0.0.1") -> str:
    """An HAProxy configuration listening on ``host:port`` in front of ``replicas`` (name ->
    port on ``host``); ``errors``: the folder of ``session-down.http`` (:func:`write_haproxy`
    writes both)."""
    if not replicas:
        raise ValueError("haproxy_config: argument 'replicas' expected at least one replica, got none")
    for name, replica_port in replicas.items():
        if not REPLICA.fullmatch(name):
            raise ValueError(f"haproxy_config: replica name expected 1 to 16 lowercase letters and digits, got {name!r}")
        if isinstance(replica_port, bool) or not isinstance(replica_port, int) or not 0 < replica_port < 65536:
            raise ValueError(f"haproxy_config: replica {name!r}: expected a port in 1..65535, got {replica_port!r}")
    servers = [f"    server {name} {host}:{p} check inter 1s fall 2 rise 1" for name, p in replicas.items()]
    lines = ["global", "    maxconn 4096", "", "defaults", "    mode http", "    option httplog",
             "    timeout connect 2s", "    timeout client 300s", "    timeout server 300s", "    timeout tunnel 1h",
             "    retries 2", "", "frontend lstmkit", f"    bind {host}:{port}"]
    lines += [f"    use_backend replica_{name} if {{ path_beg /v1/sessions/{name}- }}" for name in replicas]
    lines += ["    default_backend replicas", "", "backend replicas", "    balance roundrobin",
              "    option redispatch", "    option httpchk GET /readyz", *servers]
    for name, line in zip(replicas, servers):
        lines += ["", f"backend replica_{name}", "    option httpchk GET /readyz",
                  f"    errorfile 503 {Path(errors) / 'session-down.http'}", line]
    return "\n".join(lines) + "\n"


def write_haproxy(folder: str | Path, replicas: dict[str, int], *, port: int, host: str = "127.0.0.1") -> Path:
    """:func:`haproxy_config` and its error page written into ``folder``; the config's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "session-down.http").write_text(session_down_response())
    path = folder / "haproxy.cfg"
    path.write_text(haproxy_config(replicas, port=port, errors=folder, host=host))
    return path
