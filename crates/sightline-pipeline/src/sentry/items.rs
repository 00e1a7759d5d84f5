//! The smaller Sentry item types: cron check-ins, release-health sessions,
//! client reports, and Sentry structured logs (which become log records).

use super::event::{parse_object, timestamp_ns, ItemError};
use super::{CheckInRow, ClientReportRow, ItemContext, SessionRow};
use crate::normalize::{normalize_otlp, Context, Normalized, Normalizer};
use serde_json::{Map, Value};
use sightline_protocol::otlp::OtlpLog;

fn str_of(m: &Map<String, Value>, k: &str) -> Option<String> {
    m.get(k)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(256).collect())
}

/// A `check_in` item.
pub fn check_in(payload: &[u8], ctx: &ItemContext<'_>) -> Result<CheckInRow, ItemError> {
    let m = parse_object(payload, "check_in")?;
    let slug = str_of(&m, "monitor_slug")
        .ok_or_else(|| ItemError("check_in has no monitor_slug".into()))?;
    let status = str_of(&m, "status")
        .map(|s| s.to_ascii_lowercase())
        .filter(|s| matches!(s.as_str(), "in_progress" | "ok" | "error"))
        .ok_or_else(|| ItemError("check_in status must be one of in_progress, ok, error".into()))?;
    let check_in_id = str_of(&m, "check_in_id")
        .and_then(|s| super::event::clean_event_id(&s))
        .unwrap_or_else(|| ctx.fallback_event_id.to_string());
    Ok(CheckInRow {
        project_id: ctx.project_id,
        monitor_slug: slug,
        check_in_id,
        status,
        duration_s: m.get("duration").and_then(Value::as_f64),
        environment: str_of(&m, "environment"),
        release: str_of(&m, "release"),
        timestamp_ns: timestamp_ns(m.get("timestamp")).unwrap_or(ctx.received_ns),
        monitor_config: m
            .get("monitor_config")
            .filter(|c| c.is_object())
            .map(Value::to_string),
    })
}

fn attrs(m: &Map<String, Value>) -> (Option<String>, String) {
    let a = m.get("attrs").and_then(Value::as_object);
    let release = a.and_then(|a| str_of(a, "release"));
    let env = a
        .and_then(|a| str_of(a, "environment"))
        .unwrap_or_else(|| "production".into());
    (release, env)
}

/// A `session` update: counted once when it starts (`init`), and once more as
/// errored, crashed or abnormal when it ends so.
pub fn session(payload: &[u8], ctx: &ItemContext<'_>) -> Result<SessionRow, ItemError> {
    let m = parse_object(payload, "session")?;
    let (release, environment) = attrs(&m);
    let release = release.ok_or_else(|| ItemError("session has no attrs.release".into()))?;
    let status = str_of(&m, "status").unwrap_or_else(|| "ok".into());
    let init = m.get("init").and_then(Value::as_bool).unwrap_or(false);
    let errors = m.get("errors").and_then(Value::as_u64).unwrap_or(0);
    let ended = status != "ok";
    Ok(SessionRow {
        project_id: ctx.project_id,
        release,
        environment,
        started: init as u64,
        errored: (ended && (errors > 0 || status == "crashed" || status == "abnormal")) as u64,
        crashed: (status == "crashed") as u64,
        abnormal: (status == "abnormal") as u64,
        timestamp_ns: timestamp_ns(m.get("timestamp")).unwrap_or(ctx.received_ns),
    })
}

/// A `sessions` item: pre-aggregated counts (server SDKs in request mode).
pub fn sessions(payload: &[u8], ctx: &ItemContext<'_>) -> Result<SessionRow, ItemError> {
    let m = parse_object(payload, "sessions")?;
    let (release, environment) = attrs(&m);
    let release = release.ok_or_else(|| ItemError("sessions has no attrs.release".into()))?;
    let mut row = SessionRow {
        project_id: ctx.project_id,
        release,
        environment,
        started: 0,
        errored: 0,
        crashed: 0,
        abnormal: 0,
        timestamp_ns: ctx.received_ns,
    };
    let aggs = m
        .get("aggregates")
        .and_then(Value::as_array)
        .ok_or_else(|| ItemError("sessions has no aggregates list".into()))?;
    for a in aggs {
        let n = |k: &str| a.get(k).and_then(Value::as_u64).unwrap_or(0);
        let (exited, errored, abnormal, crashed) =
            (n("exited"), n("errored"), n("abnormal"), n("crashed"));
        row.started = row
            .started
            .saturating_add(exited + errored + abnormal + crashed);
        row.errored = row.errored.saturating_add(errored + abnormal + crashed);
        row.crashed = row.crashed.saturating_add(crashed);
        row.abnormal = row.abnormal.saturating_add(abnormal);
    }
    Ok(row)
}

/// A `client_report` item: what the SDK dropped, by reason and category.
pub fn client_report(
    payload: &[u8],
    ctx: &ItemContext<'_>,
) -> Result<Vec<ClientReportRow>, ItemError> {
    let m = parse_object(payload, "client_report")?;
    let mut out = Vec::new();
    for key in [
        "discarded_events",
        "rate_limited_events",
        "filtered_events",
        "filtered_sampling_events",
    ] {
        for d in m.get(key).and_then(Value::as_array).into_iter().flatten() {
            let reason = d
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or(key.trim_end_matches("_events"));
            let category = d
                .get("category")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let quantity = d.get("quantity").and_then(Value::as_u64).unwrap_or(0);
            if quantity > 0 {
                out.push(ClientReportRow {
                    project_id: ctx.project_id,
                    reason: reason.chars().take(64).collect(),
                    category: category.chars().take(64).collect(),
                    quantity,
                });
            }
        }
    }
    Ok(out)
}

/// A `log` item (`{"items":[…]}`): each Sentry log becomes a log record, its
/// `{value, type}` attributes flattened, its trace id kept. The service is the
/// release's name before `@` (`worker@2.0.0` → `worker`), else `project`.
pub fn logs(
    payload: &[u8],
    ctx: &ItemContext<'_>,
    project: &str,
    n: &Normalizer,
) -> Result<Vec<Normalized>, ItemError> {
    let m = parse_object(payload, "log")?;
    let items = m
        .get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| ItemError("log item has no items list".into()))?;
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        let Some(it) = it.as_object() else { continue };
        let mut attributes = Map::new();
        for (k, v) in it
            .get("attributes")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let v = match v {
                Value::Object(o) if o.contains_key("value") => o["value"].clone(),
                other => other.clone(),
            };
            attributes.insert(k.clone(), v);
        }
        let take = |a: &mut Map<String, Value>, k: &str| match a.remove(k) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let release = take(&mut attributes, "sentry.release");
        let environment = take(&mut attributes, "sentry.environment");
        let host = take(&mut attributes, "server.address");
        let severity_number = match attributes.remove("sentry.severity_number") {
            Some(v) => v.as_i64().unwrap_or(0) as i32,
            None => 0,
        };
        attributes.remove("sentry.severity_text");
        let mut resource = Map::new();
        let service = release
            .as_deref()
            .and_then(|r| r.split('@').next())
            .filter(|s| !s.is_empty())
            .unwrap_or(project)
            .to_string();
        resource.insert("service.name".into(), Value::String(service));
        if let Some(e) = environment {
            resource.insert("deployment.environment".into(), Value::String(e));
        }
        if let Some(r) = release {
            attributes.insert("release".into(), Value::String(r));
        }
        if let Some(h) = host {
            resource.insert("host.name".into(), Value::String(h));
        }
        let ts = timestamp_ns(it.get("timestamp"))
            .filter(|t| *t > 0)
            .unwrap_or(ctx.received_ns) as u64;
        let log = OtlpLog {
            time_unix_nano: ts,
            observed_time_unix_nano: ctx.received_ns as u64,
            severity_number,
            severity_text: it
                .get("level")
                .and_then(Value::as_str)
                .unwrap_or("info")
                .to_string(),
            body: it.get("body").cloned().unwrap_or(Value::Null),
            event_name: String::new(),
            attributes,
            resource,
            scope_name: "sentry".into(),
            trace_id: it
                .get("trace_id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_lowercase(),
            span_id: it
                .get("span_id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_lowercase(),
        };
        out.push(normalize_otlp(
            n,
            log,
            Context {
                service: Some(project),
                received_ns: ctx.received_ns,
            },
        ));
    }
    Ok(out)
}
