"""Error tracking with the real sentry-sdk: the example FastAPI app
(examples/fastapi-app) runs under `sightline run` (so its structlog lines are
shipped too) with SENTRY_DSN pointing at a real `sightline serve`. The SDK
sends what it sends in production (envelopes compressed with brotli, or gzip
without it; events, transactions, sessions, check-ins, logs, client reports);
the tests then ask Sightline's API what a developer would: which issues, why
grouped so, what the request did, is the cron job healthy.

Every test starts its own server and app, so counts are exact. The app flushes
the SDK on request (POST /admin/sentry/flush), and Sightline answers an
envelope only once its items are queryable; log lines shipped by
`sightline run` are polled for with a deadline.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
import sentry_sdk
from conftest import Sightline, _free_port

APP_DIR = Path(__file__).resolve().parents[2] / "examples" / "fastapi-app"
PROJECT_ID = 42
KEY = "0123456789abcdef0123456789abcdef"
KIOSK_ID = 43
KIOSK_KEY = "fedcba9876543210fedcba9876543210"
CONFIG = f"""
[[projects]]
name = "shop"
id = {PROJECT_ID}
keys = ["{KEY}"]

[[projects]]
name = "kiosk"
id = {KIOSK_ID}
keys = ["{KIOSK_KEY}"]
keep_ip_address = true
"""
RELEASE = "assessments@1.4.2"
ENVIRONMENT = "staging"
BIND_PASSWORD = "bind-pw-7f3a9c"  # the app's directory password (a frame variable)
POLL_SECS = 15
HEX32 = re.compile(r"[0-9a-f]{32}")


def rfc3339(s: str) -> datetime:
    """An RFC 3339 timestamp as an aware datetime, to the microsecond."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", s or "")
    assert m, f"not an RFC 3339 timestamp: {s!r}"
    frac = (m.group(2) or "")[:6].ljust(6, "0")
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(f"{m.group(1)}.{frac}{tz}")


def wait_for(fetch, done, what, secs=POLL_SECS):
    """Calls fetch() until done(result) holds; fails with the last result at the deadline."""
    deadline = time.monotonic() + secs
    while True:
        result = fetch()
        if done(result):
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}; last answer: {result!r}"
        time.sleep(0.1)


def api(sightline, path, **params):
    r = sightline.get(path, **params)
    assert r.status_code == 200, f"GET {path} {params}: {r.status_code} {r.text}"
    return r.json()


def request_view(sightline, request_id):
    """GET /api/v1/requests/{id}, or None while nothing of it is stored (404)."""
    r = sightline.get(f"/api/v1/requests/{request_id}")
    if r.status_code == 404:
        return None
    assert r.status_code == 200, f"request {request_id}: {r.status_code} {r.text}"
    return r.json()


def issues(sightline, **params):
    return api(sightline, "/api/v1/issues", **params)["issues"]


def tag_counts(issue_detail):
    """The issue's tag distribution as {key: {value: count}}, checking totals."""
    out = {}
    for t in issue_detail["tags"]:
        values = {v["value"]: v["count"] for v in t["values"]}
        assert t["total"] == sum(values.values()), t
        assert t["distinct"] == len(values), t
        out[t["key"]] = values
    return out


def in_app_frames(event):
    return [f for e in event["exception"]["values"] for f in e["stacktrace"]["frames"] if f.get("in_app")]


class App:
    """The example app under `sightline run`, reporting to Sightline with sentry-sdk."""

    def __init__(self, sightline: Sightline, tmp_path: Path, brotli: bool = True):
        self.sightline = sightline
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path = tmp_path / "app.stdout"
        self.stderr_path = tmp_path / "app.stderr"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
        env.update(
            SENTRY_DSN=f"http://{KEY}@127.0.0.1:{sightline.port}/{PROJECT_ID}",
            SENTRY_RELEASE=RELEASE,
            SENTRY_ENVIRONMENT=ENVIRONMENT,
            DIRECTORY_BIND_PASSWORD=BIND_PASSWORD,
            LOG_LEVEL="DEBUG",
        )
        if not brotli:
            env["SENTRY_WITHOUT_BROTLI"] = "1"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [os.environ["SIGHTLINE_BIN"], "run", "--service", "assessments", "--server", sightline.url,
                 "--", sys.executable, "-m", "uvicorn", "app:app", "--port", str(self.port)],
                cwd=APP_DIR, env=env, stdout=out, stderr=err, start_new_session=True)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        self.sentry = requests.get(self.url + "/admin/sentry", timeout=5).json()
        assert self.sentry["enabled"] is True, self.sentry

    def _wait_healthy(self):
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, f"the app exited {self.proc.returncode}: {self.stderr()}"
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"the app never became healthy: {self.stderr()}"
            time.sleep(0.1)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def call(self, method, path, expect, request_id=None, user=None, headers=None, echo=True, **kw):
        """One request; `echo=False` when it crashes the app (no x-request-id echoed)."""
        h = dict(headers or {})
        if request_id:
            h["x-request-id"] = request_id
        if user:
            h["x-user-id"] = user
        r = requests.request(method, self.url + path, headers=h, timeout=15, **kw)
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        if request_id and echo:
            assert r.headers["x-request-id"] == request_id
        return r

    def flush(self):
        """Waits until the SDK has sent everything it queued (and Sightline stored it)."""
        r = requests.post(self.url + "/admin/sentry/flush", timeout=30)
        assert r.status_code == 200, r.text

    def settle(self, fetch, done, what):
        """Flushes the SDK until done(fetch()) holds: an unhandled error's event
        and a request's session are queued as the request unwinds, which may be
        after its response was read."""
        def flushed():
            self.flush()
            return fetch()
        return wait_for(flushed, done, what)

    def settle_events(self, n):
        """Flushes until Sightline holds `n` error events; their issues."""
        return self.settle(lambda: issues(self.sightline),
                           lambda l: sum(i["count"] for i in l) == n, f"{n} error events")

    def stop(self):
        try:  # the shipper and the app it started
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


@pytest.fixture
def start_stack(tmp_path):
    """start_stack(brotli=True) -> (sightline, app); both stopped after the test."""
    started = []

    def start(brotli=True):
        sightline = Sightline(tmp_path / "data", config_text=CONFIG)
        started.append(sightline)
        sightline.start()
        app = App(sightline, tmp_path, brotli=brotli)
        started.append(app)
        return sightline, app

    yield start
    for thing in reversed(started):
        if isinstance(thing, App):
            thing.stop()
        elif thing.proc is not None and thing.proc.poll() is None:
            thing.proc.kill()
            thing.proc.wait()


@pytest.fixture
def stack(start_stack):
    return start_stack()


# --------------------------------------------------------------- 1. handled


def test_handled_error_with_scope_tags_context_user_and_its_request(stack):
    sightline, app = stack
    rid = "req-sentry-handled"
    app.call("POST", "/assessments/a-2/submit", 500, request_id=rid, user="u-7",
             json={"answers": {"q4": 3}})
    app.flush()

    listed = issues(sightline, project="shop")
    assert len(listed) == 1, listed
    issue = listed[0]
    assert issue["title"] == "ValueError: score out of range for assessment a-2: 120"
    assert issue["culprit"] == "/assessments/{assessment_id}/submit"
    assert issue["level"] == "error"
    assert issue["status"] == "unresolved" and issue["substatus"] is None
    assert issue["count"] == 1 and issue["users"] == 1
    assert issue["first_release"] == issue["last_release"] == RELEASE
    assert issue["environments"] == [ENVIRONMENT]
    assert issue["first_seen"] == issue["last_seen"]
    assert issues(sightline, project=str(PROJECT_ID), q="score out of range") == listed
    assert issues(sightline, q="no such error anywhere") == []

    detail = api(sightline, f"/api/v1/issues/{issue['id']}")
    assert tag_counts(detail) == {
        "request_id": {rid: 1},
        "assessment_id": {"a-2": 1},
        "user": {"id:u-7": 1},
        "level": {"error": 1},
        "environment": {ENVIRONMENT: 1},
        "release": {RELEASE: 1},
        "transaction": {"/assessments/{assessment_id}/submit": 1},
        "server_name": {detail["latest_event"]["server_name"]: 1},
    }

    event = api(sightline, f"/api/v1/events/{issue['last_event_id']}")
    assert event["issue_id"] == issue["id"]
    assert event["event_id"] == issue["last_event_id"]
    assert {k: v for k, v in detail["latest_event"].items() if k not in ("issue_id", "project_id")} \
        == {k: v for k, v in event.items() if k not in ("issue_id", "project_id")}
    assert event["title"] == issue["title"] and event["level"] == "error"
    assert event["release"] == RELEASE and event["environment"] == ENVIRONMENT
    assert event["tags"] == {"request_id": rid, "assessment_id": "a-2"}
    assert event["user"] == {"id": "u-7"}
    # set_context arrives as sent, minus what before_send removed (the answers).
    assert event["contexts"]["submission"] == {"questions": 1, "max_score": 100}
    trace_id = event["contexts"]["trace"]["trace_id"]
    assert HEX32.fullmatch(trace_id), event["contexts"]["trace"]
    (exc,) = event["exception"]["values"]
    assert exc["type"] == "ValueError"
    assert exc["value"] == "score out of range for assessment a-2: 120"
    assert exc["mechanism"]["handled"] is True
    (frame,) = in_app_frames(event)
    assert (frame["module"], frame["function"]) == ("app", "submit")
    assert "raise ValueError" in frame["context_line"]
    assert frame["pre_context"] and frame["post_context"]
    assert frame["vars"]["assessment_id"] == "'a-2'" and frame["vars"]["score"] == "120"
    assert event["grouping"]["variant"] == "in-app-stacktrace"
    assert event["grouping"]["components"] == ["ValueError", "app.submit"]
    assert event["grouping"]["hash"] == issue["fingerprint"]

    (summary,) = api(sightline, f"/api/v1/issues/{issue['id']}/events")["events"]
    assert summary == {"event_id": event["event_id"], "issue_id": issue["id"],
                       "timestamp": event["timestamp"], "level": "error", "title": issue["title"],
                       "request_id": rid, "trace_id": trace_id, "release": RELEASE,
                       "environment": ENVIRONMENT, "user": "id:u-7"}

    # The request view: the structlog lines of the request and its error, one request id.
    assert event["links"]["request"] == f"/api/v1/requests/{rid}"
    view = wait_for(lambda: api(sightline, event["links"]["request"]),
                    lambda v: len(v["logs"]) >= 2, "the request's log lines")
    assert [l["message"] for l in view["logs"]] == ["assessment_started", "assessment_submit_failed"]
    assert all(l["request_id"] == rid and l["service"] == "assessments" for l in view["logs"])
    assert view["errors"] == [summary]
    failed_line = view["logs"][1]
    assert failed_line["level"] == "error"
    assert f"ValueError: {exc['value']}" in failed_line["exception"]
    assert event["links"]["request_logs"] == "/api/v1/logs?q=" + requests.utils.quote(
        f'request_id:"{rid}"', safe="")
    request_logs = api(sightline, event["links"]["request_logs"])["logs"]
    assert sorted(l["message"] for l in request_logs) == ["assessment_started", "assessment_submit_failed"]

    # The Sentry log the handler wrote shares the error's trace.
    assert event["links"]["trace_logs"] == "/api/v1/logs?q=" + requests.utils.quote(
        f'trace_id:"{trace_id}"', safe="")
    trace_logs = api(sightline, event["links"]["trace_logs"])["logs"]
    scored = [l for l in trace_logs if l["message"] == "assessment a-2 could not be scored"]
    assert len(scored) == 1, trace_logs
    assert scored[0]["level"] == "error" and scored[0]["service"] == "assessments"


# --------------------------------------------------------------- 2. unhandled


def test_unhandled_error_is_an_issue_with_in_app_frames_and_a_crashed_session(stack):
    sightline, app = stack
    rid = "req-sentry-crash"
    r = app.call("GET", "/assessments/never-taken/stats", 500, request_id=rid, echo=False)
    assert r.text == "Internal Server Error"
    (issue,) = app.settle_events(1)
    assert issue["title"] == "ZeroDivisionError: division by zero"
    assert issue["type"] == "ZeroDivisionError" and issue["value"] == "division by zero"
    assert issue["culprit"] == "/assessments/{assessment_id}/stats"
    assert issue["level"] == "error" and issue["count"] == 1
    assert issue["users"] == 0, "no user was set"

    event = api(sightline, f"/api/v1/events/{issue['last_event_id']}")
    (exc,) = event["exception"]["values"]
    assert exc["mechanism"]["handled"] is False
    assert exc["mechanism"]["type"] == "starlette"
    frames = exc["stacktrace"]["frames"]
    assert frames[-1]["in_app"] is True, "the innermost frame is the app's"
    assert (frames[-1]["module"], frames[-1]["function"]) == ("app", "stats")
    assert "sum(scores) / len(scores)" in frames[-1]["context_line"]
    assert frames[-1]["vars"]["scores"] == []
    framework = [f for f in frames if "site-packages" in f["abs_path"]]
    assert framework and not any(f["in_app"] for f in framework), "library frames are not in-app"
    assert event["grouping"]["variant"] == "in-app-stacktrace"
    assert event["grouping"]["components"] == ["ZeroDivisionError"] + [
        f"{f['module']}.{f['function']}" for f in in_app_frames(event)]
    assert "app.stats" in event["grouping"]["components"]
    assert "request_id" not in event.get("tags", {})

    # No request_id tag: Sightline finds the request through the X-Request-ID header.
    (summary,) = api(sightline, f"/api/v1/issues/{issue['id']}/events")["events"]
    assert summary["request_id"] == rid
    view = wait_for(lambda: request_view(sightline, rid),
                    lambda v: v is not None and len(v["logs"]) >= 1, "the request's log line")
    assert [l["message"] for l in view["logs"]] == ["assessment_stats_requested"]
    assert view["errors"] == [summary]

    # Release health: the request's session crashed.
    (rel,) = app.settle(lambda: api(sightline, "/api/v1/releases")["releases"],
                        lambda r: len(r) == 1 and r[0]["crashed"] == 1, "the crashed session")
    assert (rel["release"], rel["environment"]) == (RELEASE, ENVIRONMENT)
    assert rel["crashed"] == 1 and rel["errored"] >= 1 and rel["sessions"] >= 1
    assert rel["crash_free_rate"] == pytest.approx(1 - 1 / rel["sessions"])
    assert rel["events"] == 1

    # Sightline knows the event's request id (above), so the event links to its
    # request and the request's logs, as a tagged event does.
    assert {k: event["links"][k] for k in ("request", "request_logs")} == {
        "request": f"/api/v1/requests/{rid}",
        "request_logs": "/api/v1/logs?q=" + requests.utils.quote(f'request_id:"{rid}"', safe=""),
    }, event["links"]


# --------------------------------------------------------------- 3. message


def test_capture_message_is_a_message_issue(stack):
    sightline, app = stack
    app.call("POST", "/admin/dependencies/database/down", 200, request_id="req-sentry-db-down")
    app.call("POST", "/admin/dependencies/database/up", 200)
    app.call("POST", "/admin/dependencies/database/down", 200, request_id="req-sentry-db-down-2")
    app.flush()

    (issue,) = issues(sightline)
    assert issue["title"] == "dependency database forced down"
    assert issue["level"] == "warning"
    assert issue["type"] is None and issue["value"] is None
    assert issue["culprit"] == "/admin/dependencies/{name}/{state}"
    assert issue["count"] == 2, "the same message twice is one issue"
    assert issue["grouping"]["variant"] == "message"
    event = api(sightline, f"/api/v1/events/{issue['last_event_id']}")
    assert event["message"] == "dependency database forced down"
    assert "exception" not in event
    assert event["grouping"]["components"] == ["dependency database forced down"]
    events = api(sightline, f"/api/v1/issues/{issue['id']}/events")["events"]
    assert sorted(e["request_id"] for e in events) == ["req-sentry-db-down", "req-sentry-db-down-2"]
    assert {e["level"] for e in events} == {"warning"}


# --------------------------------------------------------------- 4. scrubbing


def test_before_send_and_server_side_scrubbing(stack):
    sightline, app = stack
    secrets = {"login password": "pw-5d1e0b7c", "bearer token": "tok-a8f1e2d3c4",
               "service token": "svc-9b8a7c6d", "session cookie": "sess-4e5f6a7b",
               "bind password": BIND_PASSWORD}
    app.call("POST", "/login", 500, request_id="req-sentry-login", echo=False,
             headers={"Authorization": f"Bearer {secrets['bearer token']}",
                      "X-Service-Token": secrets["service token"],
                      "Cookie": f"session={secrets['session cookie']}"},
             json={"username": "ghost", "password": secrets["login password"]})
    (issue,) = app.settle_events(1)
    assert issue["title"] == "KeyError: 'ghost'"
    event = api(sightline, f"/api/v1/events/{issue['last_event_id']}")
    text = json.dumps(event)
    for what, secret in secrets.items():
        assert secret not in text, f"the {what} reached the stored event"

    (login,) = [f for f in in_app_frames(event) if f["function"] == "login"]
    # The SDK filters `password` itself; `directory_bind_password` is not on its
    # list (exact names), only on Sightline's (substrings); the model's repr
    # carries the password inside free text.
    assert login["vars"]["password"] == "[REDACTED]"
    assert login["vars"]["directory_bind_password"] == "[REDACTED]"
    assert login["vars"]["body"] == "Login(username='ghost', password='[REDACTED]')"
    headers = event["request"]["headers"]
    assert headers["authorization"] == "[REDACTED]"
    assert headers["x-service-token"] == "[REDACTED]"
    assert headers.get("cookie", "[REDACTED]") == "[REDACTED]"
    assert headers["x-request-id"] == "req-sentry-login", "harmless headers are kept"
    # before_send removed the request body.
    assert "data" not in event["request"]
    # set_user had an IP address: gone; the rest of the user stays.
    assert event["user"] == {"username": "ghost"}
    assert issue["users"] == 1

    metrics = requests.get(sightline.url + "/metrics", timeout=10).text
    m = re.search(r'^sightline_scrubbed_values_total\{endpoint="sentry"\} (\d+)$', metrics, re.M)
    assert m and int(m.group(1)) >= 4, "scrubbed values are counted"


def test_server_removes_the_user_ip_unless_the_project_keeps_it(tmp_path):
    """With send_default_pii=True the SDK itself sends user.ip_address (the app
    above runs with it off, so its SDK drops the address first): Sightline
    removes it, except for a project with keep_ip_address."""
    sightline = Sightline(tmp_path / "data", config_text=CONFIG).start()
    try:
        sent = {}
        for project_id, key in ((PROJECT_ID, KEY), (KIOSK_ID, KIOSK_KEY)):
            with warnings.catch_warnings():  # send_default_pii is deprecated in 2.x, still honoured
                warnings.simplefilter("ignore", DeprecationWarning)
                client = sentry_sdk.Client(
                    dsn=f"http://{key}@127.0.0.1:{sightline.port}/{project_id}",
                    send_default_pii=True, release="pii-probe@1.0.0", environment="test",
                    default_integrations=False, auto_enabling_integrations=False)
            try:
                with sentry_sdk.new_scope() as scope:
                    scope.set_client(client)
                    scope.set_user({"id": "u-9", "ip_address": "203.0.113.7"})
                    scope.set_extra("stripe_secret_key", "sk_live_51Hx0123")
                    scope.set_extra("order", "o-17")
                    sent[project_id] = scope.capture_message("pii probe")
                client.flush(timeout=10)
            finally:
                client.close()
        shop = api(sightline, f"/api/v1/events/{sent[PROJECT_ID]}")
        assert shop["user"] == {"id": "u-9"}
        assert shop["extra"]["stripe_secret_key"] == "[REDACTED]"
        assert shop["extra"]["order"] == "o-17"
        kiosk = api(sightline, f"/api/v1/events/{sent[KIOSK_ID]}")
        assert kiosk["user"] == {"id": "u-9", "ip_address": "203.0.113.7"}
        assert kiosk["extra"]["stripe_secret_key"] == "[REDACTED]"
        assert [i["project_id"] for i in issues(sightline, project="kiosk")] == [KIOSK_ID]
    finally:
        sightline.proc.kill()
        sightline.proc.wait()


# --------------------------------------------------------------- 5. crons


def test_cron_monitor_with_ok_and_error_runs(stack):
    sightline, app = stack
    assert app.call("POST", "/admin/jobs/nightly-report", 200).json()["status"] == "ok"
    assert app.call("POST", "/admin/jobs/nightly-report", 500, params={"fail": "true"}).json() == {
        "status": "error", "error": "report database is read-only"}
    app.flush()

    (m,) = api(sightline, "/api/v1/monitors")["monitors"]
    assert m["slug"] == "nightly-report" and m["project_id"] == PROJECT_ID
    assert m["status"] == "error" and m["last_status"] == "error"
    assert m["environment"] == ENVIRONMENT
    assert m["config"]["schedule"] == {"type": "crontab", "value": "0 3 * * *"}
    assert (m["config"]["checkin_margin"], m["config"]["max_runtime"]) == (5, 10)
    failed, ok = m["history"]
    assert (failed["status"], ok["status"]) == ("error", "ok"), "newest first, one row per run"
    assert failed["check_in_id"] != ok["check_in_id"]
    for run in (failed, ok):
        assert HEX32.fullmatch(run["check_in_id"])
        assert run["duration"] is not None and 0 <= run["duration"] < 10
        assert run["release"] == RELEASE and run["environment"] == ENVIRONMENT
        assert rfc3339(run["started"]) <= rfc3339(run["updated"])
    assert rfc3339(ok["updated"]) <= rfc3339(failed["started"])
    last = rfc3339(m["last_check_in"])
    assert last == rfc3339(failed["updated"])
    nightly = last.astimezone(timezone.utc).replace(hour=3, minute=0, second=0, microsecond=0)
    if nightly <= last:
        nightly += timedelta(days=1)
    assert rfc3339(m["next_expected"]) == nightly

    # The next run succeeds: the monitor is healthy again.
    app.call("POST", "/admin/jobs/nightly-report", 200)
    app.flush()
    (m,) = api(sightline, "/api/v1/monitors")["monitors"]
    assert m["status"] == m["last_status"] == "ok"
    assert [h["status"] for h in m["history"]] == ["ok", "error", "ok"]


# --------------------------------------------------------------- 6. logs


def test_sentry_logs_land_in_the_log_store(stack):
    sightline, app = stack
    app.call("POST", "/assessments/a-7/export", 200, request_id="req-sentry-export",
             params={"target": "email"})
    app.flush()

    found = sightline.logs(q='logger:sentry "exported to"')
    assert len(found) == 1, found
    (line,) = found
    assert line["message"] == "report a-7 exported to email"
    assert line["service"] == "assessments", "the release's name before '@'"
    assert line["level"] == "info"
    assert line["environment"] == ENVIRONMENT
    assert HEX32.fullmatch(line["trace_id"])
    f = line["fields"]
    assert f["sentry.message.template"] == "report {assessment_id} exported to {target}"
    assert f["sentry.message.parameter.assessment_id"] == "a-7"
    assert f["sentry.message.parameter.target"] == "email"
    assert f["release"] == RELEASE
    # Found by its attributes and by the service, like any other log line.
    assert sightline.logs(q="sentry.message.parameter.target:email") == found
    assert sightline.logs(q=f'service:assessments release:"{RELEASE}" "a-7 exported"') == found
    assert sightline.logs(q=f'trace_id:"{line["trace_id"]}" "exported to"') == found
    # The app's own structlog line of the same request is there too (via `sightline run`).
    view = wait_for(lambda: request_view(sightline, "req-sentry-export"),
                    lambda v: v is not None and len(v["logs"]) >= 1, "the structlog line")
    assert [l["message"] for l in view["logs"]] == ["report_exported"]
    assert view["errors"] == []


# --------------------------------------------------------------- 7. grouping


def test_grouping_same_error_different_errors_and_custom_fingerprint(stack):
    sightline, app = stack
    # The same error from two requests (different assessments, users, flows).
    flows = [app.call("POST", f"/assessments/{a}/retake", 500, request_id=rid, user=user,
                      params={"fail_at": "clear_answers"}).json()["flow_id"]
             for a, rid, user in (("a-1", "req-retake-1", "u-7"), ("a-3", "req-retake-2", "u-8"))]
    # Different errors.
    app.call("POST", "/assessments/a-2/submit", 500, json={"answers": {"q4": 3}})
    app.call("GET", "/assessments/nope/stats", 500)
    # Two different exceptions from two functions, one fingerprint.
    app.call("POST", "/assessments/a-1/export", 502, params={"target": "storage", "outage": "true"})
    app.call("POST", "/assessments/a-1/export", 502, params={"target": "email", "outage": "true"})
    by_title = {i["title"]: i for i in app.settle_events(6)}
    assert len(by_title) == 4, list(by_title)
    assert len({i["id"] for i in by_title.values()}) == 4

    retake = by_title["StepFailed: deadlock detected while clearing answers"]
    assert retake["count"] == 2 and retake["users"] == 2
    tags = tag_counts(api(sightline, f"/api/v1/issues/{retake['id']}"))
    assert tags["request_id"] == {"req-retake-1": 1, "req-retake-2": 1}
    assert tags["flow_id"] == {flows[0]: 1, flows[1]: 1}
    assert tags["user"] == {"id:u-7": 1, "id:u-8": 1}
    events = api(sightline, f"/api/v1/issues/{retake['id']}/events")["events"]
    assert sorted(e["request_id"] for e in events) == ["req-retake-1", "req-retake-2"]
    assert len({e["event_id"] for e in events}) == 2

    assert by_title["ValueError: score out of range for assessment a-2: 120"]["count"] == 1
    assert by_title["ZeroDivisionError: division by zero"]["count"] == 1

    (export,) = [i for i in by_title.values() if i["culprit"] == "/assessments/{assessment_id}/export"]
    assert export["count"] == 2
    assert export["grouping"]["variant"] == "fingerprint"
    export_events = [api(sightline, f"/api/v1/events/{e['event_id']}")
                     for e in api(sightline, f"/api/v1/issues/{export['id']}/events")["events"]]
    assert sorted(e["exception"]["values"][-1]["type"] for e in export_events) == [
        "ConnectionRefusedError", "TimeoutError"]
    assert sorted(in_app_frames(e)[-1]["function"] for e in export_events) == [
        "_email_report", "_upload_report"]
    for e in export_events:
        assert e["fingerprint"] == ["report-export-failed"]
        assert e["grouping"]["variant"] == "fingerprint"
        assert e["grouping"]["components"] == ["report-export-failed"]
        assert e["issue_id"] == export["id"]
    assert tag_counts(api(sightline, f"/api/v1/issues/{export['id']}"))["export_target"] == {
        "storage": 1, "email": 1}

    assert [i["count"] for i in issues(sightline, sort="count")] == [2, 2, 1, 1]


def test_resolved_issue_regresses_when_the_error_comes_back(stack):
    sightline, app = stack
    fail = {"fail_at": "enable_retake"}
    app.call("POST", "/assessments/a-1/retake", 500, params=fail)
    app.flush()
    (issue,) = issues(sightline)
    assert issue["title"] == "StepFailed: retake limit reached"

    r = sightline.put(f"/api/v1/issues/{issue['id']}", {"status": "resolved"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resolved" and r.json()["substatus"] is None
    assert [i["id"] for i in issues(sightline, status="resolved")] == [issue["id"]]
    assert issues(sightline, status="unresolved") == []
    assert sightline.put(f"/api/v1/issues/{issue['id']}", {"status": "fixed"}).status_code == 400
    assert sightline.put("/api/v1/issues/999999", {"status": "resolved"}).status_code == 404

    app.call("POST", "/assessments/a-2/retake", 500, params=fail)
    app.flush()
    (again,) = issues(sightline, status="unresolved")
    assert again["id"] == issue["id"]
    assert again["status"] == "unresolved" and again["substatus"] == "regressed"
    assert again["regressed_at"] is not None
    assert again["count"] == 2
    assert issues(sightline, status="resolved") == []
    assert [i["id"] for i in issues(sightline, status="all")] == [issue["id"]]


# --------------------------------------------------------------- 8. compression


@pytest.mark.parametrize("brotli", [True, False], ids=["brotli", "gzip"])
def test_envelopes_arrive_compressed_with_brotli_or_gzip(start_stack, brotli):
    sightline, app = start_stack(brotli=brotli)
    assert app.sentry["brotli_importable"] is brotli
    assert app.sentry["compression"] == ("br" if brotli else "gzip")
    app.call("POST", "/assessments/a-2/submit", 500, request_id="req-sentry-enc",
             json={"answers": {"q4": 3}})
    app.call("POST", "/admin/jobs/nightly-report", 200)
    app.call("POST", "/assessments/a-4/export", 200)
    app.flush()

    (issue,) = issues(sightline)
    assert issue["title"] == "ValueError: score out of range for assessment a-2: 120"
    assert [m["slug"] for m in api(sightline, "/api/v1/monitors")["monitors"]] == ["nightly-report"]
    assert [l["message"] for l in sightline.logs(q='logger:sentry "exported to"')] == [
        "report a-4 exported to storage"]

    metrics = requests.get(sightline.url + "/metrics", timeout=10).text
    accepted = dict(re.findall(
        r'^sightline_sentry_items_total\{type="(\w+)",outcome="accepted"\} (\d+)$', metrics, re.M))
    for kind in ("event", "transaction", "check_in"):
        assert int(accepted.get(kind, 0)) >= 1, (kind, accepted)
    assert not re.search(r'^sightline_ingest_rejected_total\{endpoint="sentry', metrics, re.M), \
        "no envelope was refused"
    assert re.search(r'^sightline_ingested_bytes_total\{endpoint="sentry"\} [1-9]', metrics, re.M)
