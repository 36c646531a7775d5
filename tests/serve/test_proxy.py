"""Two ``lstmkit serve`` replicas behind a real HAProxy: each session stays on its replica,
predictions spread over both, a stopped replica's sessions get a 503 that says what to do, and a
session exported from it resumes on the other through the proxy."""

import shutil
import subprocess
import time

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

from lstmkit.serve import Client, ServerError, write_haproxy  # noqa: E402
from lstmkit.serve.proxy import haproxy_config  # noqa: E402
from serving import TOKEN, ServerProcess, free_port, token_file  # noqa: E402

HAPROXY = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")


def test_the_config_routes_sessions_by_their_replica_and_checks_names():
    config = haproxy_config({"a": 8001, "b2": 8002}, port=8000, errors="/x")
    assert "use_backend replica_a if { path_beg /v1/sessions/a- }" in config
    assert "server b2 127.0.0.1:8002 check" in config and "errorfile 503 /x/session-down.http" in config
    with pytest.raises(ValueError, match="replica name expected 1 to 16 lowercase letters and digits, got 'A-1'"):
        haproxy_config({"A-1": 8001}, port=8000, errors="/x")
    with pytest.raises(ValueError, match="expected a port in 1..65535, got 0"):
        haproxy_config({"a": 0}, port=8000, errors="/x")


@pytest.mark.skipif(HAPROXY is None, reason="HAProxy is not installed: apt-get install --no-install-recommends haproxy")
def test_sessions_stay_on_their_replica_behind_haproxy(runs, tmp_path):
    tokens = token_file(tmp_path)
    a, b = ServerProcess(runs["lm"], tokens, "--replica", "a"), ServerProcess(runs["lm"], tokens, "--replica", "b")
    port = free_port()
    with a, b:
        config = write_haproxy(tmp_path / "proxy", {"a": a.port, "b": b.port}, port=port)
        assert subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True).returncode == 0
        proxy = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            client = Client(f"http://127.0.0.1:{port}", TOKEN, timeout=30)
            deadline = time.monotonic() + 30
            while not _ready(client) and time.monotonic() < deadline:
                time.sleep(0.2)
            sessions = [client.open_session("lm-run", start={"prefix": "the cat"}) for _ in range(4)]
            assert {s.split("-")[0] for s in sessions} == {"a", "b"}             # new sessions spread
            steps = [{"text": "sat on"}, {"generate": 4, "seed": 1}]
            outputs = {sid: client.steps(sid, steps) for sid in sessions}        # each reaches its own replica
            assert len({str(o) for o in outputs.values()}) == 1                  # the same model, the same text
            on_a = next(s for s in sessions if s.startswith("a-"))
            on_b = next(s for s in sessions if s.startswith("b-"))
            exported = client.export_session(on_a)
            expected = client.steps(on_a, [{"text": "on the mat"}])               # what a would answer next
            a.process.terminate()
            a.process.wait(timeout=60)
            with pytest.raises(ServerError) as down:
                client.steps(on_a, [{"text": "on"}])
            assert down.value.status == 503 and "resume this one on another replica" in str(down.value.detail)
            assert client.steps(on_b, [{"text": "on"}])                         # the other replica goes on
            moved = client.open_session("lm-run", state=exported["state"])       # resumed through the proxy, on b
            assert moved.startswith("b-") and client.steps(moved, [{"text": "on the mat"}]) == expected
            client.close()
        finally:
            proxy.terminate()
            proxy.wait(timeout=30)


def _ready(client) -> bool:
    try:
        return client.ready()
    except Exception:
        return False
