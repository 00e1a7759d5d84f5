"""assessments: a small FastAPI service instrumented the way Python backend
teams usually do it (see README.md): structlog JSON on stdout, a request id
bound to every line of a request, a flow id bound to every step of a
multi-step operation, warnings for observable early returns, errors logged
with their traceback and context, /health and /health/ready.

The data lives in memory; query parameters make the retake flow fail or hang
so the failure paths can be exercised.

Errors also go to Sentry (or any Sentry-compatible server, such as Sightline)
when SENTRY_DSN is set: handled errors with tags, context and user, unhandled
ones through the FastAPI integration, messages, cron check-ins and Sentry
structured logs. Without SENTRY_DSN the SDK stays off and nothing changes.

Spans go to an OTLP/HTTP endpoint (such as Sightline's `/v1/traces`) when
OTEL_EXPORTER_OTLP_ENDPOINT is set, through opentelemetry-sdk: a server span
per request carrying its request id, child spans for scoring and for each
retake step (a failing step records its exception and error status), and
the trace id bound to the request's log lines. Without it the OpenTelemetry
API is a no-op.
"""

import logging
import os
import sys
import uuid
from datetime import datetime, timezone

SENTRY_DSN = os.environ.get("SENTRY_DSN")
if SENTRY_DSN and os.environ.get("SENTRY_WITHOUT_BROTLI"):
    # Test hook: hide the optional brotli package before the SDK looks for it
    # (`import brotli` now raises ImportError), so that the SDK compresses its
    # envelopes with gzip instead of brotli.
    sys.modules["brotli"] = None

import time

import sentry_sdk
import structlog
from fastapi import Depends, FastAPI, Request
from prometheus_client import Counter, Gauge, Histogram, make_asgi_app
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sentry_sdk import logger as sentry_logger  # Sentry structured logs (enable_logs)
from sentry_sdk.crons import monitor
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

TRACER_PROVIDER = None
if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    TRACER_PROVIDER = TracerProvider(resource=Resource.create({"service.name": "assessments"}))
    # Sends to $OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces in protobuf.
    TRACER_PROVIDER.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(TRACER_PROVIDER)
tracer = trace.get_tracer("assessments")

structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(),
    ],
    wrapper_class=structlog.make_filtering_bound_logger(
        logging.getLevelName(os.environ.get("LOG_LEVEL", "DEBUG").upper())),
    logger_factory=structlog.PrintLoggerFactory(),  # stdout, flushed per line
    cache_logger_on_first_use=True,
)
log = structlog.get_logger()


def before_send(event, hint):
    """Answers are exam content: they never leave the process, neither in the
    `submission` context nor as the request body."""
    submission = event.get("contexts", {}).get("submission")
    if isinstance(submission, dict):
        submission.pop("answers", None)
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)
    return event


if SENTRY_DSN:
    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=os.environ.get("SENTRY_ENVIRONMENT", "production"),
        release=os.environ.get("SENTRY_RELEASE", "assessments@dev"),
        traces_sample_rate=1.0,
        send_default_pii=False,
        before_send=before_send,
        enable_logs=True,
    )

app = FastAPI(title="assessments")

# Prometheus metrics (prometheus_client), served on /metrics in the text or
# OpenMetrics format, whichever the scraper asks for.
HTTP_REQUESTS = Counter("http_requests", "HTTP requests served.", ["method", "path", "status"])
HTTP_DURATION = Histogram("http_request_duration_seconds", "Time to serve an HTTP request.",
                          ["method", "path"])
SUBMISSIONS = Counter("assessment_submissions", "Assessments submitted.", ["outcome"])
IN_FLIGHT = Gauge("http_requests_in_flight", "HTTP requests being served.")
app.mount("/metrics", make_asgi_app())

# The "database": points per question, and answers per (user, assessment).
QUESTIONS = {"q1": 10, "q2": 20, "q3": 30, "q4": 40}
MAX_SCORE = 100
ANSWERS: dict[tuple[str, str], dict[str, int]] = {}
DEPENDENCIES = {"database": True, "redis": True}


@app.middleware("http")
async def request_context(request: Request, call_next):
    """Binds request_id, method and path to every log line of the request and
    echoes the id back; an incoming x-request-id (from a proxy) wins."""
    if request.url.path.startswith("/metrics"):
        return await call_next(request)
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    IN_FLIGHT.inc()
    start = time.perf_counter()
    status = 500
    # The server span: named after the route once routing has run; an
    # exception escaping it is recorded on it with an error status.
    with tracer.start_as_current_span(
            f"{request.method} {request.url.path}", kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method, "url.path": request.url.path,
                        "request_id": request_id}) as span:
        ctx = span.get_span_context()
        ids = {"trace_id": format(ctx.trace_id, "032x")} if ctx.is_valid else {}
        structlog.contextvars.bind_contextvars(
            request_id=request_id, method=request.method, path=request.url.path, **ids)
        try:
            response = await call_next(request)
            status = response.status_code
        finally:
            structlog.contextvars.clear_contextvars()
            IN_FLIGHT.dec()
            # The route template, not the raw path: bounded label values.
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            span.update_name(f"{request.method} {path}")
            span.set_attribute("http.route", path)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
            HTTP_REQUESTS.labels(request.method, path, str(status)).inc()
            HTTP_DURATION.labels(request.method, path).observe(time.perf_counter() - start)
    response.headers["x-request-id"] = request_id
    return response


async def current_user(request: Request) -> str:
    """Stand-in for authentication: the caller's id, bound to the log context."""
    user_id = request.headers.get("x-user-id", "anonymous")
    structlog.contextvars.bind_contextvars(user_id=user_id)
    return user_id


class Submission(BaseModel):
    answers: dict[str, int]  # question id -> chosen option


@app.post("/assessments/{assessment_id}/submit")
async def submit(assessment_id: str, body: Submission, user_id: str = Depends(current_user)):
    log.info("assessment_started", assessment_id=assessment_id, questions=len(body.answers))
    for question_id in body.answers:
        if question_id not in QUESTIONS:
            # Observable early return: say why nothing was saved.
            log.warning("save_answer_skipped", reason="invalid_question", question_id=question_id)
            SUBMISSIONS.labels("rejected").inc()
            return JSONResponse({"detail": f"unknown question {question_id}"}, status_code=422)
    try:
        with tracer.start_as_current_span("score_submission",
                                          attributes={"assessment_id": assessment_id}):
            score = sum(QUESTIONS[q] * option for q, option in body.answers.items())
            if not 0 <= score <= MAX_SCORE:
                raise ValueError(f"score out of range for assessment {assessment_id}: {score}")
    except ValueError as e:
        log.exception("assessment_submit_failed", assessment_id=assessment_id,
                      error_type=type(e).__name__)
        with sentry_sdk.new_scope() as scope:
            # The request id ties the error to this request's log lines.
            scope.set_tag("request_id", structlog.contextvars.get_contextvars().get("request_id"))
            scope.set_tag("assessment_id", assessment_id)
            scope.set_context("submission", {"questions": len(body.answers),
                                             "max_score": MAX_SCORE, "answers": body.answers})
            scope.set_user({"id": user_id})
            sentry_sdk.capture_exception(e)
        sentry_logger.error("assessment {assessment_id} could not be scored",
                            assessment_id=assessment_id)
        SUBMISSIONS.labels("failed").inc()
        return JSONResponse({"detail": "could not score the submission"}, status_code=500)
    ANSWERS[(user_id, assessment_id)] = dict(body.answers)
    log.info("assessment_submitted", assessment_id=assessment_id, score=score)
    SUBMISSIONS.labels("scored").inc()
    return {"assessment_id": assessment_id, "score": score}


class StepFailed(RuntimeError):
    pass


FAILURES = {
    "load_completed": "assessment not found while loading",
    "clear_answers": "deadlock detected while clearing answers",
    "enable_retake": "retake limit reached",
}


@app.post("/assessments/{assessment_id}/retake")
async def retake(assessment_id: str, fail_at: str | None = None, hang: bool = False,
                 user_id: str = Depends(current_user)):
    """load -> clear answers -> enable retake, every step logged with the flow id.
    `fail_at=STEP` raises inside that step; `hang=true` stops after loading
    with no terminal event (as a lost background job would)."""
    flow_id = f"retake-{uuid.uuid4().hex[:8]}"
    with structlog.contextvars.bound_contextvars(flow_id=flow_id):
        log.info("retake_flow_started", assessment_id=assessment_id)
        try:
            with tracer.start_as_current_span("retake.load", attributes={"flow_id": flow_id}):
                if fail_at == "load_completed":
                    raise StepFailed(FAILURES[fail_at])
                previous = ANSWERS.get((user_id, assessment_id), {})
            log.debug("retake_flow_step", step="load_completed", answers=len(previous))
            if hang:
                return JSONResponse({"flow_id": flow_id, "status": "pending"}, status_code=202)
            for step in ("clear_answers", "enable_retake"):
                log.debug("retake_flow_step", step=step)
                with tracer.start_as_current_span(f"retake.{step}", attributes={"flow_id": flow_id}):
                    if fail_at == step:
                        raise StepFailed(FAILURES[step])
            ANSWERS.pop((user_id, assessment_id), None)
        except StepFailed as e:
            log.error("retake_flow_failed", error=str(e), error_type=type(e).__name__)
            with sentry_sdk.new_scope() as scope:
                ids = structlog.contextvars.get_contextvars()
                scope.set_tag("request_id", ids.get("request_id"))
                scope.set_tag("flow_id", flow_id)
                scope.set_user({"id": user_id})
                sentry_sdk.capture_exception(e)
            return JSONResponse({"flow_id": flow_id, "status": "failed", "error": str(e)},
                                status_code=500)
        log.info("retake_flow_completed", assessment_id=assessment_id)
        return {"flow_id": flow_id, "status": "completed"}


@app.get("/assessments/{assessment_id}/stats")
async def stats(assessment_id: str):
    """Average score of an assessment. Not guarded against an assessment
    nobody submitted yet: ZeroDivisionError, an unhandled error (500) that the
    Sentry FastAPI integration reports."""
    scores = [sum(QUESTIONS[q] * o for q, o in answers.items())
              for (_, a), answers in ANSWERS.items() if a == assessment_id]
    log.info("assessment_stats_requested", assessment_id=assessment_id, submissions=len(scores))
    return {"assessment_id": assessment_id, "submissions": len(scores),
            "average": sum(scores) / len(scores)}


def _upload_report(assessment_id: str):
    raise TimeoutError(f"report storage did not answer within 30s ({assessment_id})")


def _email_report(assessment_id: str):
    raise ConnectionRefusedError(f"mail relay refused the connection ({assessment_id})")


EXPORTERS = {"storage": _upload_report, "email": _email_report}


@app.post("/assessments/{assessment_id}/export")
async def export(assessment_id: str, target: str = "storage", outage: bool = False):
    """Sends the assessment's report to storage or by email; `outage=true`
    makes the remote end fail. Export failures are one issue whichever backend
    failed (a custom fingerprint), not one issue per exception type."""
    if target not in EXPORTERS:
        return JSONResponse({"detail": f"unknown target {target}"}, status_code=404)
    try:
        if outage:
            EXPORTERS[target](assessment_id)
    except OSError as e:
        log.exception("report_export_failed", target=target, error_type=type(e).__name__)
        with sentry_sdk.new_scope() as scope:
            scope.fingerprint = ["report-export-failed"]
            scope.set_tag("export_target", target)
            sentry_sdk.capture_exception(e)
        return JSONResponse({"detail": f"export to {target} failed"}, status_code=502)
    log.info("report_exported", assessment_id=assessment_id, target=target)
    sentry_logger.info("report {assessment_id} exported to {target}",
                       assessment_id=assessment_id, target=target)
    return {"assessment_id": assessment_id, "target": target, "status": "exported"}


ACCOUNTS = {"u-7": {"name": "Ada"}}


class Login(BaseModel):
    username: str
    password: str


@app.post("/login")
async def login(body: Login, request: Request):
    """A login with a bug: an unknown username is a KeyError (500), whose
    stack frame holds the password and the directory's bind password."""
    password = body.password
    directory_bind_password = os.environ.get("DIRECTORY_BIND_PASSWORD", "example-bind-pw")
    sentry_sdk.set_user({"username": body.username, "ip_address": request.client.host})
    account = ACCOUNTS[body.username]
    log.info("login_succeeded", username=body.username)
    return {"username": body.username, "name": account["name"],
            "checked": bool(password and directory_bind_password)}


NIGHTLY_REPORT = {"type": "crontab", "value": "0 3 * * *"}


@monitor(monitor_slug="nightly-report",
         monitor_config={"schedule": NIGHTLY_REPORT, "checkin_margin": 5, "max_runtime": 10})
def nightly_report(fail: bool):
    """The nightly job (a cron monitor): every run sends an in_progress and
    then an ok or error check-in."""
    if fail:
        raise RuntimeError("report database is read-only")
    sentry_logger.info("nightly report built for {assessments} assessments",
                       assessments=len({a for _, a in ANSWERS}))
    return len(ANSWERS)


@app.post("/admin/jobs/nightly-report")
def run_nightly_report(fail: bool = False):
    """Runs the nightly job now (as the scheduler would)."""
    try:
        n = nightly_report(fail)
    except RuntimeError as e:
        log.exception("nightly_report_failed", error_type=type(e).__name__)
        return JSONResponse({"status": "error", "error": str(e)}, status_code=500)
    log.info("nightly_report_built", submissions=n)
    return {"status": "ok", "submissions": n}


@app.get("/admin/sentry")
async def sentry_status():
    """Whether the SDK is on, and how its transport compresses envelopes."""
    client = sentry_sdk.get_client()
    transport = client.transport if client.is_active() else None
    return {"enabled": client.is_active(),
            "compression": getattr(transport, "_compression_algo", None),
            "brotli_importable": getattr(sentry_sdk.transport, "brotli", None) is not None,
            "release": client.options.get("release") if client.is_active() else None,
            "environment": client.options.get("environment") if client.is_active() else None}


@app.post("/admin/otel/flush")
def otel_flush():
    """Test hook: export every finished span now."""
    return {"flushed": TRACER_PROVIDER.force_flush(10_000) if TRACER_PROVIDER else False}


@app.post("/admin/sentry/flush")
def sentry_flush():
    """Waits until the SDK has sent what it queued (events, check-ins, logs,
    sessions); for tests and demos that cannot wait for the background sender."""
    sentry_sdk.flush(timeout=10)
    return {"flushed": True}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


@app.get("/health")
async def health():
    return {"status": "ok", "timestamp": _now()}


@app.get("/health/ready")
async def ready():
    checks = {name: "ok" if up else "error: connection refused"
              for name, up in DEPENDENCIES.items()}
    status = "ok" if all(v == "ok" for v in checks.values()) else "degraded"
    return {"status": status, "checks": checks, "timestamp": _now()}


@app.post("/admin/dependencies/{name}/{state}")
async def force_dependency(name: str, state: str):
    """Simulate an outage: `POST /admin/dependencies/database/down`."""
    if name not in DEPENDENCIES or state not in ("up", "down"):
        return JSONResponse({"detail": "unknown dependency or state"}, status_code=404)
    DEPENDENCIES[name] = state == "up"
    log.warning("dependency_state_forced", dependency=name, state=state)
    if state == "down":
        sentry_sdk.capture_message(f"dependency {name} forced down", level="warning")
    return {"dependency": name, "state": state}
