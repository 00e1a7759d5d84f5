"""assessments: a small FastAPI service instrumented the way Python backend
teams usually do it (see README.md): structlog JSON on stdout, a request id
bound to every line of a request, a flow id bound to every step of a
multi-step operation, warnings for observable early returns, errors logged
with their traceback and context, /health and /health/ready.

The data lives in memory; query parameters make the retake flow fail or hang
so the failure paths can be exercised.
"""

import logging
import os
import uuid
from datetime import datetime, timezone

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

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

app = FastAPI(title="assessments")

# The "database": points per question, and answers per (user, assessment).
QUESTIONS = {"q1": 10, "q2": 20, "q3": 30, "q4": 40}
MAX_SCORE = 100
ANSWERS: dict[tuple[str, str], dict[str, int]] = {}
DEPENDENCIES = {"database": True, "redis": True}


@app.middleware("http")
async def request_context(request: Request, call_next):
    """Binds request_id, method and path to every log line of the request and
    echoes the id back; an incoming x-request-id (from a proxy) wins."""
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        request_id=request_id, method=request.method, path=request.url.path)
    try:
        response = await call_next(request)
    finally:
        structlog.contextvars.clear_contextvars()
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
            return JSONResponse({"detail": f"unknown question {question_id}"}, status_code=422)
    try:
        score = sum(QUESTIONS[q] * option for q, option in body.answers.items())
        if not 0 <= score <= MAX_SCORE:
            raise ValueError(f"score out of range for assessment {assessment_id}: {score}")
    except ValueError as e:
        log.exception("assessment_submit_failed", assessment_id=assessment_id,
                      error_type=type(e).__name__)
        return JSONResponse({"detail": "could not score the submission"}, status_code=500)
    ANSWERS[(user_id, assessment_id)] = dict(body.answers)
    log.info("assessment_submitted", assessment_id=assessment_id, score=score)
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
            if fail_at == "load_completed":
                raise StepFailed(FAILURES[fail_at])
            previous = ANSWERS.get((user_id, assessment_id), {})
            log.debug("retake_flow_step", step="load_completed", answers=len(previous))
            if hang:
                return JSONResponse({"flow_id": flow_id, "status": "pending"}, status_code=202)
            for step in ("clear_answers", "enable_retake"):
                log.debug("retake_flow_step", step=step)
                if fail_at == step:
                    raise StepFailed(FAILURES[step])
            ANSWERS.pop((user_id, assessment_id), None)
        except StepFailed as e:
            log.error("retake_flow_failed", error=str(e), error_type=type(e).__name__)
            return JSONResponse({"flow_id": flow_id, "status": "failed", "error": str(e)},
                                status_code=500)
        log.info("retake_flow_completed", assessment_id=assessment_id)
        return {"flow_id": flow_id, "status": "completed"}


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
    return {"dependency": name, "state": state}
