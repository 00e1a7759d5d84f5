"""Traces end to end with the real SDKs at once: the example FastAPI app
(examples/fastapi-app) traced by opentelemetry-sdk 1.45.2 (OTLP/HTTP
protobuf to Sightline's /v1/traces), reporting errors and transactions with
sentry-sdk 2.75.0, its structlog lines shipped by `sightline run`. One
request id then answers with its logs, its error, its spans (both SDKs'
trees) and its route's rate and latency; a failed flow shows its failing
span; `sightline request ID` prints the timeline.
"""

import os
import subprocess

import requests

from conftest import Sightline, TOKEN
from test_sentry import CONFIG, App, api, request_view, wait_for


def flush(app):
    app.flush()
    r = requests.post(app.url + "/admin/otel/flush", timeout=30)
    assert r.status_code == 200 and r.json()["flushed"] is True, r.text


def nodes(trees):
    for n in trees:
        yield n
        yield from nodes(n["children"])


def test_one_request_id_is_logs_error_spans_and_route(tmp_path, monkeypatch):
    sightline = Sightline(tmp_path / "data", config_text=CONFIG + "\n[traces]\nred_interval_secs = 1\n")
    sightline.start()
    app = None
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sightline.url)
        app = App(sightline, tmp_path)
        # Traffic on the route, then the failing request.
        for i in range(5):
            app.call("POST", "/assessments/a-1/submit", 200, request_id=f"req-ok-{i}", user="u-1",
                     json={"answers": {"q1": 1}})
        rid = "req-traced-fail"
        app.call("POST", "/assessments/a-2/submit", 500, request_id=rid, user="u-7",
                 json={"answers": {"q4": 3}})
        flow = app.call("POST", "/assessments/a-2/retake?fail_at=clear_answers", 500,
                        request_id="req-traced-retake", user="u-7").json()
        flush(app)

        def ready(v):
            return (v is not None and v["errors"] and v["logs"] and len(v["spans"]) == 2
                    and v["route"] and v["route"]["rate_per_s"])
        view = wait_for(lambda: request_view(sightline, rid), ready, "logs, error, spans and route")

        # What it logged (shipped stdout), joined on request_id.
        events = [l["message"] for l in view["logs"]]
        assert "assessment_submit_failed" in events, events
        # What it raised (sentry-sdk), once.
        assert len(view["errors"]) == 1, view["errors"]
        assert view["errors"][0]["title"].startswith("ValueError: score out of range")
        # Where its time went: the OpenTelemetry tree and the Sentry transaction.
        by_source = {t["source"]: t for t in view["spans"]}
        otel = by_source["otlp"]
        # The app's server span (FastAPI's own spans may wrap it) carries the id.
        server = [n for n in nodes([otel]) if n["request_id"] == rid]
        assert len(server) == 1, otel
        server = server[0]
        assert server["name"] == "POST /assessments/{assessment_id}/submit"
        assert server["kind"] == "server" and server["status"] == "error"
        assert server["service"] == "assessments"
        assert server["attributes"]["http.response.status_code"] == 500
        scoring = [n for n in nodes([server]) if n["name"] == "score_submission"]
        assert len(scoring) == 1 and scoring[0]["status"] == "error", server
        exc = [e for e in scoring[0]["events"] if e["name"] == "exception"]
        assert exc and exc[0]["attributes"]["exception.type"] == "ValueError", scoring
        assert server["offset_ms"] <= scoring[0]["offset_ms"] <= server["offset_ms"] + server["duration_ms"]
        sentry = by_source["sentry"]
        assert sentry["op"] == "http.server" and sentry["name"] == "/assessments/{assessment_id}/submit"
        assert sentry["request_id"] == rid
        # The logs carry the OTel trace id: the trace view has them.
        trace = api(sightline, f"/api/v1/traces/{otel['trace_id']}")
        assert "assessment_submit_failed" in [l["message"] for l in trace["logs"]]
        assert trace["summary"]["status"] == "error"
        # The route around that time, from the span RED series.
        route = view["route"]
        assert route["service"] == "assessments"
        assert route["operation"] == "POST /assessments/{assessment_id}/submit"
        assert 0 < route["error_ratio"] < 1, route
        assert 0 < route["p50_ms"] <= route["p99_ms"], route

        # RED in PromQL.
        op = "POST /assessments/{assessment_id}/submit"
        stored = api(sightline, "/api/v1/traces", service="assessments", name=op, start="-1h", limit="100")
        assert len(stored["traces"]) == 6, stored
        want = sum(sum(1 for n in nodes(api(sightline, f"/api/v1/traces/{t['trace_id']}")["spans"])
                       if n["name"] == op and n["service"] == "assessments")
                   for t in stored["traces"])
        q = wait_for(lambda: api(sightline, "/api/v1/query",
                                 query=f'sum(sightline_span_calls_total{{service="assessments",operation="{op}"}})'),
                     lambda q: q["data"]["result"] and q["data"]["result"][0]["value"][1] == str(want),
                     f"{want} calls of {op}")

        # Search: the failed requests of the service.
        found = api(sightline, "/api/v1/traces", service="assessments", status="error")["traces"]
        assert otel["trace_id"] in [t["trace_id"] for t in found]

        # The failed flow: its request's spans show the failing step.
        f = wait_for(lambda: api(sightline, f"/api/v1/flows/{flow['flow_id']}"),
                     lambda f: f["spans"] and f["errors"], "flow spans and errors")
        assert f["status"] == "failed" and f["failed_at_step"] == "clear_answers"
        failing = [n for n in nodes(f["spans"]) if n["status"] == "error" and n["name"].startswith("retake.")]
        assert [n["name"] for n in failing] == ["retake.clear_answers"], f["spans"]
        assert failing[0]["events"][0]["attributes"]["exception.type"].endswith("StepFailed")
        assert f["errors"][0]["title"].startswith("StepFailed")

        # One timeline in the terminal.
        out = subprocess.run([os.environ["SIGHTLINE_BIN"], "request", rid], capture_output=True, text=True,
                             env={**os.environ, "SIGHTLINE_URL": sightline.url,
                                  "SIGHTLINE_API_TOKEN": TOKEN, "NO_COLOR": "1"}, timeout=30)
        assert out.returncode == 0, out.stderr
        for want in ("score_submission", "█", "assessment_submit_failed", "ValueError", "route"):
            assert want in out.stdout, out.stdout
    finally:
        if app is not None:
            app.stop()
        sightline.proc.kill()
        sightline.proc.wait()
