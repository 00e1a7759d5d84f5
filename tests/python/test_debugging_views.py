"""The debugging views against a real service: the example FastAPI app
(examples/fastapi-app), unchanged, runs under `sightline run`, which passes its
output through and ships every line to a real `sightline serve`. Then the
request timeline, the flow views, the log query language and the CLI must
answer the questions a developer asks when production breaks."""

import collections
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import requests
from conftest import TOKEN, Sightline, _free_port

APP_DIR = Path(__file__).resolve().parents[2] / "examples" / "fastapi-app"
STALL_TIMEOUT_SECS = 6
CONFIG = f"[flows]\nstall_timeout_secs = {STALL_TIMEOUT_SECS}\n"
POLL_SECS = 15
STEPS = ["load_completed", "clear_answers", "enable_retake"]
ACCESS_LINE = re.compile(r'INFO: +127\.0\.0\.1:\d+ - "[A-Z]+ \S+ HTTP/1\.1" \d{3} .*')


def rfc3339(s: str) -> datetime:
    """An RFC 3339 timestamp as an aware datetime, to the microsecond."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", s or "")
    assert m, f"not an RFC 3339 timestamp: {s!r}"
    frac = (m.group(2) or "")[:6].ljust(6, "0")
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(f"{m.group(1)}.{frac}{tz}")


def wait_for(fetch, done, what, deadline):
    """Calls fetch() until done(result) holds; fails with the last result at the deadline."""
    while True:
        result = fetch()
        if done(result):
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}; last answer: {result!r}"
        time.sleep(0.1)


def get_json(sightline, path, **params):
    """The JSON of a 200 answer, or None while the thing is not there yet (404)."""
    r = sightline.get(path, **params)
    if r.status_code == 404:
        return None
    assert r.status_code == 200, f"GET {path} {params}: {r.status_code} {r.text}"
    return r.json()


def messages(logs):
    return [l["message"] for l in logs]


def cli(sightline, *args):
    env = dict(os.environ, SIGHTLINE_URL=sightline.url, SIGHTLINE_API_TOKEN=TOKEN)
    r = subprocess.run([os.environ["SIGHTLINE_BIN"], *args], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, f"sightline {' '.join(args)} exited {r.returncode}: {r.stderr}"
    return r.stdout


def test_request_timeline_flows_and_queries_of_a_real_fastapi_service(tmp_path):
    sightline = Sightline(tmp_path / "data", config_text=CONFIG)
    port = _free_port()
    stdout_path, stderr_path = tmp_path / "run.stdout", tmp_path / "run.stderr"
    run = None
    try:
        sightline.start()
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            run = subprocess.Popen(
                [os.environ["SIGHTLINE_BIN"], "run", "--service", "assessments", "--server", sightline.url,
                 "--", sys.executable, "-m", "uvicorn", "app:app", "--port", str(port)],
                cwd=APP_DIR, env=dict(os.environ, LOG_LEVEL="DEBUG"),  # the steps log at debug
                stdout=out, stderr=err, start_new_session=True)
        ids = drive_the_app(sightline, run, f"http://127.0.0.1:{port}", stderr_path)
        # SIGTERM to the shipper reaches the app, which shuts down gracefully and
        # then (uvicorn >= 0.29) re-raises SIGTERM: the app dies of the signal.
        # `sightline run` reports the app's status as its own: by dying of the
        # same signal, or as the shell's 128 + signal number.
        run.send_signal(signal.SIGTERM)
        rc = run.wait(timeout=20)
        stderr = stderr_path.read_text()
        assert rc in (-signal.SIGTERM, 128 + signal.SIGTERM), f"sightline run exited {rc}: {stderr}"
        assert "INFO:     Finished server process" in stderr, "the app shut down gracefully"
        check_views(sightline, ids, stdout_path.read_text())
    finally:
        if run is not None:
            try:  # the shipper and the app it started, even if the shipper died first
                os.killpg(run.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            run.wait()
        if sightline.proc is not None and sightline.proc.poll() is None:
            sightline.proc.kill()
            sightline.proc.wait()


def test_run_exits_with_the_exit_code_of_its_command(tmp_path):
    sightline = Sightline(tmp_path / "data")
    try:
        sightline.start()
        r = subprocess.run(
            [os.environ["SIGHTLINE_BIN"], "run", "--service", "exit-code", "--server", sightline.url, "--",
             sys.executable, "-c", "print('{\"event\": \"bye\"}'); raise SystemExit(3)"],
            capture_output=True, text=True, timeout=30)
        assert r.returncode == 3, r.stderr
        assert r.stdout == '{"event": "bye"}\n'
        logs = wait_for(lambda: sightline.logs(service="exit-code"), bool, "the line to be shipped",
                        time.monotonic() + POLL_SECS)
        assert messages(logs) == ["bye"]
    finally:
        if sightline.proc is not None and sightline.proc.poll() is None:
            sightline.proc.kill()
            sightline.proc.wait()


def drive_the_app(sightline, run, app_url, stderr_path):
    """The requests a developer will later debug; returns their request and flow ids."""
    deadline = time.monotonic() + 30
    while True:
        assert run.poll() is None, f"sightline run exited {run.returncode}: {stderr_path.read_text()}"
        try:
            if requests.get(app_url + "/health", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, f"the app never became healthy: {stderr_path.read_text()}"
        time.sleep(0.1)

    def call(request_id, path, expect, **kw):
        r = requests.post(app_url + path, headers={"x-request-id": request_id, "x-user-id": "u-7"},
                          timeout=10, **kw)
        assert r.status_code == expect, r.text
        assert r.headers["x-request-id"] == request_id
        return r.json()

    generated = requests.get(app_url + "/health", timeout=5).headers.get("x-request-id")
    assert generated, "the app generates a request id when none is sent"

    call("req-ok-1", "/assessments/a-1/submit", 200, json={"answers": {"q1": 1, "q2": 1}})
    call("req-invalid-1", "/assessments/a-3/submit", 422, json={"answers": {"q1": 1, "nope": 2}})
    call("req-fail-1", "/assessments/a-2/submit", 500, json={"answers": {"q4": 3}})
    ok = call("req-retake-ok", "/assessments/a-1/retake", 200)["flow_id"]
    failed = call("req-retake-fail", "/assessments/a-1/retake", 500, params={"fail_at": "clear_answers"})["flow_id"]
    hung = call("req-retake-hang", "/assessments/a-1/retake", 202, params={"hang": "true"})["flow_id"]
    hung_at = time.monotonic()
    for flow_id in (ok, failed, hung):
        assert re.fullmatch(r"retake-[0-9a-f]{8}", flow_id), flow_id

    # While its last event is younger than the stall timeout the hung flow is running.
    view = wait_for(lambda: get_json(sightline, f"/api/v1/flows/{hung}"), lambda v: v is not None,
                    "the hung flow to be visible", hung_at + STALL_TIMEOUT_SECS)
    assert view["status"] == "running", (
        f"{time.monotonic() - hung_at:.1f}s after its last step: {view}")
    assert view["ended_at"] is None
    return {"ok_flow": ok, "failed_flow": failed, "hung_flow": hung}


def check_views(sightline, ids, run_stdout):
    deadline = time.monotonic() + POLL_SECS
    expected_events = {
        "req-ok-1": ["assessment_started", "assessment_submitted"],
        "req-invalid-1": ["assessment_started", "save_answer_skipped"],
        "req-fail-1": ["assessment_started", "assessment_submit_failed"],
        "req-retake-ok": ["retake_flow_started"] + ["retake_flow_step"] * 3 + ["retake_flow_completed"],
        "req-retake-fail": ["retake_flow_started"] + ["retake_flow_step"] * 2 + ["retake_flow_failed"],
        "req-retake-hang": ["retake_flow_started", "retake_flow_step"],
    }

    # --- the request timeline: every line of one request id, oldest first.
    timelines = {}
    for request_id, events in expected_events.items():
        t = wait_for(lambda: get_json(sightline, f"/api/v1/requests/{request_id}"),
                     lambda t: t is not None and len(t["logs"]) >= len(events),
                     f"the timeline of {request_id}", deadline)
        timelines[request_id] = t
        logs = t["logs"]
        assert messages(logs) == events, request_id
        assert t["request_id"] == request_id
        assert t["services"] == ["assessments"]
        stamps = [rfc3339(l["timestamp"]) for l in logs]
        assert stamps == sorted(stamps), "oldest first"
        assert rfc3339(t["first_seen"]) == stamps[0] and rfc3339(t["last_seen"]) == stamps[-1]
        assert abs(t["duration_ms"] - (stamps[-1] - stamps[0]).total_seconds() * 1000) <= 1
        counts = collections.Counter(l["level"] for l in logs)
        assert {k: v for k, v in t["levels"].items() if v} == dict(counts)
        for l in logs:
            assert l["service"] == "assessments"
            assert l["request_id"] == request_id
            assert l["user_id"] == "u-7"
            assert l["fields"]["method"] == "POST"
            assert l["fields"]["path"].startswith("/assessments/")
            for typed in ("event", "level", "timestamp", "request_id", "user_id", "flow_id", "exception"):
                assert typed not in l["fields"], (typed, l)

    ok = timelines["req-ok-1"]["logs"]
    assert [l["level"] for l in ok] == ["info", "info"]
    assert ok[1]["fields"]["score"] == 30
    assert ok[1]["fields"]["path"] == "/assessments/a-1/submit"
    assert all(l.get("exception") is None and l.get("flow_id") is None for l in ok)

    skipped = timelines["req-invalid-1"]["logs"][1]
    assert skipped["level"] == "warning"
    assert skipped["fields"]["reason"] == "invalid_question"
    assert skipped["fields"]["question_id"] == "nope"
    assert timelines["req-invalid-1"]["levels"]["warning"] == 1

    failure = timelines["req-fail-1"]["logs"][1]
    assert failure["level"] == "error"
    assert failure["fields"]["error_type"] == "ValueError"
    assert failure["fields"]["assessment_id"] == "a-2"
    assert failure["exception"].startswith("Traceback (most recent call last):")
    assert "ValueError: score out of range for assessment a-2: 120" in failure["exception"]

    for request_id, flow in (("req-retake-ok", "ok_flow"), ("req-retake-fail", "failed_flow"),
                             ("req-retake-hang", "hung_flow")):
        assert {l["flow_id"] for l in timelines[request_id]["logs"]} == {ids[flow]}

    # --- the shipper passed the app's stdout through byte for byte.
    check_stdout_passthrough(run_stdout, timelines)

    # --- flows: name from the event prefix, the steps, where it stopped, why.
    def flow(flow_id, status):
        return wait_for(lambda: get_json(sightline, f"/api/v1/flows/{flow_id}"),
                        lambda f: f is not None and f["status"] == status,
                        f"flow {flow_id} to be {status}", deadline)

    completed = flow(ids["ok_flow"], "completed")
    failed = flow(ids["failed_flow"], "failed")
    for f, request_id in ((completed, "req-retake-ok"), (failed, "req-retake-fail")):
        logs = timelines[request_id]["logs"]
        assert f["name"] == "retake_flow" and f["service"] == "assessments"
        assert rfc3339(f["started_at"]) == rfc3339(logs[0]["timestamp"])
        assert rfc3339(f["ended_at"]) == rfc3339(logs[-1]["timestamp"])
        span = (rfc3339(f["ended_at"]) - rfc3339(f["started_at"])).total_seconds() * 1000
        assert abs(f["duration_ms"] - span) <= 1
        step_logs = [l for l in logs if l["message"] == "retake_flow_step"]
        assert [rfc3339(s["at"]) for s in f["steps"]] == [rfc3339(l["timestamp"]) for l in step_logs]
        assert all(s["level"] == "debug" and isinstance(s["fields"], dict) for s in f["steps"])
    assert [s["step"] for s in completed["steps"]] == STEPS
    assert completed["failed_at_step"] is None and completed["error"] is None
    # The app logs the clear_answers step, then raises inside it.
    assert [s["step"] for s in failed["steps"]] == STEPS[:2]
    assert failed["failed_at_step"] == "clear_answers"
    assert "deadlock detected while clearing answers" in failed["error"]

    listed = get_json(sightline, "/api/v1/flows", name="retake_flow", status="failed")["flows"]
    assert [f["flow_id"] for f in listed] == [ids["failed_flow"]]
    assert listed[0]["name"] == "retake_flow" and listed[0]["status"] == "failed"
    assert listed[0]["failed_at_step"] == "clear_answers"
    assert rfc3339(listed[0]["started_at"]) == rfc3339(failed["started_at"])

    # The hung flow's last event is older than stall_timeout_secs by now (or soon).
    stalled = flow(ids["hung_flow"], "stalled")
    assert [s["step"] for s in stalled["steps"]] == ["load_completed"]
    assert stalled["failed_at_step"] in (None, "load_completed")

    stats = wait_for(lambda: get_json(sightline, "/api/v1/flows/stats", name="retake_flow"),
                     lambda s: s is not None and s["by_status"].get("stalled") == 1,
                     "flow stats to count the stalled flow", deadline)
    assert stats["name"] == "retake_flow"
    assert stats["total"] == 3
    assert stats["by_status"] == {"completed": 1, "failed": 1, "stalled": 1, "running": 0}
    # Where the unfinished flows stopped (a completed flow may or may not count
    # under its last step).
    stopped = dict(stats["stopped_at_step"])
    assert stopped.pop("enable_retake", 1) == 1
    assert stopped == {"clear_answers": 1, "load_completed": 1}
    d = stats["duration_ms"]
    assert 0 <= d["p50"] <= d["p90"] <= d["p99"] <= d["max"]
    known = [completed["duration_ms"], failed["duration_ms"], stalled.get("duration_ms")]
    assert any(x is not None and abs(d["max"] - x) <= 1 for x in known), (d, known)

    # --- the query language.
    r = get_json(sightline, "/api/v1/logs", q="level:>=warning service:assessments")
    assert isinstance(r["took_ms"], (int, float)) and "next_cursor" in r
    found = r["logs"]
    assert all(l["level"] in ("warning", "error", "critical") for l in found), found
    assert all(l["service"] == "assessments" for l in found)
    stamps = [rfc3339(l["timestamp"]) for l in found]
    assert stamps == sorted(stamps, reverse=True), "newest first"
    want = {(l["request_id"], l["message"]) for t in timelines.values() for l in t["logs"]
            if l["level"] in ("warning", "error", "critical")}
    assert want == {("req-invalid-1", "save_answer_skipped"), ("req-fail-1", "assessment_submit_failed"),
                    ("req-retake-fail", "retake_flow_failed")}
    assert {(l.get("request_id"), l["message"]) for l in found if l.get("request_id")} == want

    # Counts by level agree with the rows themselves (uvicorn's plain-text lines included).
    every = sightline.logs(limit=10000)
    assert len(every) < 10000
    assert any('"POST /assessments/a-1/submit HTTP/1.1" 200' in l["message"] for l in every), \
        "uvicorn's plain-text access lines are shipped too"
    series = get_json(sightline, "/api/v1/logs", q="* | count by (level)")["series"]
    by_level = {s["labels"]["level"]: s["value"] for s in series if s["value"]}
    assert by_level == dict(collections.Counter(l["level"] for l in every))
    for t in timelines.values():
        for level, n in t["levels"].items():
            assert by_level.get(level, 0) >= n

    # --- the CLI says the same.
    out = cli(sightline, "request", "req-fail-1")
    for event in expected_events["req-fail-1"]:
        assert event in out
    assert "score out of range for assessment a-2" in out
    out = cli(sightline, "request", "req-ok-1")
    for event in expected_events["req-ok-1"]:
        assert event in out
    assert json.loads(cli(sightline, "request", "req-ok-1", "--json")) == get_json(sightline, "/api/v1/requests/req-ok-1")
    out = cli(sightline, "flow", ids["failed_flow"])
    assert "failed" in out and "clear_answers" in out
    assert "deadlock detected while clearing answers" in out
    listed = json.loads(cli(sightline, "flows", "--name", "retake_flow", "--status", "failed", "--json"))
    listed = listed["flows"] if isinstance(listed, dict) else listed
    assert [f["flow_id"] for f in listed] == [ids["failed_flow"]]
    out = cli(sightline, "logs", "level:error", "--since", "1h")
    assert "assessment_submit_failed" in out and "retake_flow_failed" in out
    assert "save_answer_skipped" not in out and "assessment_submitted" not in out


def check_stdout_passthrough(run_stdout, timelines):
    """`sightline run`'s stdout is the app's stdout: structlog's JSON lines exactly
    as rendered, with uvicorn's access lines between them, nothing added."""
    assert run_stdout.endswith("\n")
    printed = collections.defaultdict(list)
    for line in run_stdout.splitlines():
        if ACCESS_LINE.fullmatch(line):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"a line the app did not print: {line!r}") from None
        # json.dumps is structlog's JSONRenderer: a re-encoded line would differ.
        assert json.dumps(record) == line, line
        printed[record.get("request_id")].append(record)
    for request_id, t in timelines.items():
        lines = printed[request_id]
        assert [r["event"] for r in lines] == messages(t["logs"])
        assert [rfc3339(r["timestamp"]) for r in lines] == [rfc3339(l["timestamp"]) for l in t["logs"]]
        assert [r["level"] for r in lines] == [l["level"] for l in t["logs"]]
