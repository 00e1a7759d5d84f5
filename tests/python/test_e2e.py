"""The real Python libraries, unchanged, against the real binary."""

import io
import logging
import time

import requests
import structlog
from conftest import files_containing


def structlog_lines(emit):
    """Runs `emit(log)` with structlog configured as a production service does
    (JSON, ISO timestamps, contextvars, log level, format_exc_info) and returns
    the stdout lines it wrote."""
    out = io.StringIO()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    emit(structlog.get_logger())
    structlog.contextvars.clear_contextvars()
    return out.getvalue()


def test_structlog_lines_are_stored_with_their_context(sightline):
    def emit(log):
        structlog.contextvars.bind_contextvars(request_id="py-req-1", user_id="u-42")
        log.info("retake_flow_started", flow_id="retake-py", assessment_id="a-9")
        log.debug("retake_flow_step", flow_id="retake-py", step="clear_answers")
        log.info("login_attempt", password="hunter2-from-python", card="4111111111111111")
        try:
            1 / 0
        except ZeroDivisionError:
            log.exception("retake_flow_failed", flow_id="retake-py")

    body = structlog_lines(emit)
    # uvicorn-style plain text interleaved, as a shipper would see stdout
    body += 'INFO:     127.0.0.1:5000 - "POST /retake HTTP/1.1" 500 Internal Server Error\n'
    r = requests.post(sightline.url + "/api/v1/logs/ingest", params={"service": "py-app"},
                      data=body.encode(), headers={"Content-Type": "application/x-ndjson"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 5, "rejected": 0, "errors": []}

    logs = sightline.logs(request_id="py-req-1")
    assert [l["message"] for l in logs] == [
        "retake_flow_failed", "login_attempt", "retake_flow_step", "retake_flow_started"]
    failed = logs[0]
    assert failed["level"] == "error"
    assert failed["flow_id"] == "retake-py"
    assert failed["user_id"] == "u-42"
    assert "ZeroDivisionError: division by zero" in failed["exception"]
    assert logs[2]["fields"]["step"] == "clear_answers"
    assert logs[1]["fields"]["password"] == "[REDACTED]"
    assert logs[1]["fields"]["card"] == "[REDACTED]"

    # kill -9 leaves the rows in the write-ahead log: the secret sent by the
    # client must not be there (decoded), nor anywhere else.
    sightline.kill9()
    assert files_containing(sightline.data_dir, b"hunter2-from-python") == []
    assert files_containing(sightline.data_dir, b"4111111111111111") == []
    sightline.start()
    assert len(sightline.logs(request_id="py-req-1")) == 4


def test_opentelemetry_sdk_log_export(sightline):
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create({"service.name": "otel-py", "deployment.environment": "test"})
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=sightline.url + "/v1/logs")))
    handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    logger = logging.getLogger("otel.e2e")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    tracer = TracerProvider(resource=resource).get_tracer("e2e")
    try:
        with tracer.start_as_current_span("submit") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            logger.warning("save_answer_skipped", extra={"request_id": "py-otel-1", "reason": "invalid_question",
                                                         "api_key": "sk-otel-secret-123"})
            try:
                {}["missing"]
            except KeyError:
                logger.exception("lookup_failed", extra={"request_id": "py-otel-1"})
        assert provider.force_flush(10_000)
    finally:
        logger.removeHandler(handler)
        provider.shutdown()

    logs = sightline.logs(request_id="py-otel-1")
    assert [l["message"] for l in logs] == ["lookup_failed", "save_answer_skipped"]
    for l in logs:
        assert l["service"] == "otel-py"
        assert l["environment"] == "test"
        assert l["logger"] == "otel.e2e"
        assert l["trace_id"] == trace_id
    assert logs[1]["level"] == "warning"
    assert logs[1]["fields"]["reason"] == "invalid_question"
    assert logs[1]["fields"]["api_key"] == "[REDACTED]"
    assert logs[0]["level"] == "error"
    assert "KeyError" in logs[0]["exception"]
    assert sightline.logs(trace_id=trace_id)[0]["request_id"] == "py-otel-1"
    sightline.kill9()
    assert files_containing(sightline.data_dir, b"sk-otel-secret-123") == []
