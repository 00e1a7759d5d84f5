//! Property: for random queries over random records, the executor (pruning,
//! filters pushed into the Parquet reader, vectorized evaluation, head + parts)
//! returns exactly what a brute-force filter over the same records returns.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sightline_pipeline::{Level, LogRecord};
use sightline_query::eval::Filter;
use sightline_query::lang::{self, Pipe};
use sightline_query::{Answer, Engine, Limits, Range};
use sightline_store::{LogStore, StoreConfig};
use std::collections::BTreeMap;

const SERVICES: [&str; 3] = ["api", "worker", "billing"];
const EVENTS: [&str; 6] = [
    "request_started",
    "request_finished",
    "retake_flow_step",
    "payment failed",
    "Timeout talking to DB",
    "save_answer_skipped",
];
const PATHS: [&str; 3] = ["/a", "/b/c", "/assessments/a-1/submit"];

/// A store in a temporary directory (dropped before the directory).
struct TestStore {
    store: LogStore,
    _dir: tempfile::TempDir,
}

impl TestStore {
    fn open() -> TestStore {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = StoreConfig::new(dir.path());
        cfg.retention = None;
        TestStore {
            store: LogStore::open(cfg).unwrap(),
            _dir: dir,
        }
    }
}

impl std::ops::Deref for TestStore {
    type Target = LogStore;
    fn deref(&self) -> &LogStore {
        &self.store
    }
}

fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn records(n: usize, seed: &mut u64, base_ts: i64) -> Vec<LogRecord> {
    (0..n)
        .map(|i| {
            let mut pick = |m: usize| (rng(seed) % m as u64) as usize;
            let status = [200, 404, 500, 503][pick(4)];
            let method = ["GET", "POST"][pick(2)];
            let mut attrs = format!(
                r#"{{"status":{status},"path":"{}","http":{{"method":"{method}"}}"#,
                PATHS[pick(3)]
            );
            if pick(3) == 0 {
                attrs.push_str(&format!(r#","step":"s{}""#, pick(4)));
            }
            attrs.push('}');
            LogRecord {
                timestamp_ns: base_ts + (i as i64 % 5000) * 1_000_000 + pick(3) as i64,
                received_ns: base_ts,
                service: SERVICES[pick(3)].to_string(),
                environment: (pick(2) == 0).then(|| "prod".to_string()),
                level: Level::ALL[pick(5)],
                message: EVENTS[pick(6)].to_string(),
                logger: None,
                request_id: (pick(4) != 0).then(|| format!("req-{}", pick(20))),
                flow_id: (pick(3) == 0).then(|| format!("flow-{}", pick(5))),
                trace_id: None,
                span_id: None,
                user_id: (pick(2) == 0).then(|| format!("u-{}", pick(4))),
                exception: (pick(5) == 0).then(|| "ValueError: bad TIMEOUT value".to_string()),
                host: None,
                attributes: attrs,
                truncated: false,
            }
        })
        .collect()
}

fn term() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(SERVICES.to_vec()).prop_map(|s| format!("service:{s}")),
        prop::sample::select(vec!["debug", "info", "warning", "error", "critical"])
            .prop_map(|l| format!("level:{l}")),
        prop::sample::select(vec![">=", ">", "<", "<="])
            .prop_flat_map(|op| prop::sample::select(vec!["info", "warning", "error"])
                .prop_map(move |l| format!("level:{op}{l}"))),
        (0..20u32).prop_map(|n| format!("request_id:req-{n}")),
        (0..5u32).prop_map(|n| format!("flow_id:flow-{n}")),
        Just("flow_id:*".to_string()),
        Just("request_id:req-1*".to_string()),
        (0..4u32).prop_map(|n| format!("user_id:u-{n}")),
        prop::sample::select(vec![">=", ">", "<", "<=", ""])
            .prop_flat_map(|op| prop::sample::select(vec![200, 404, 500, 503])
                .prop_map(move |s| format!("status:{op}{s}"))),
        prop::sample::select(PATHS.to_vec()).prop_map(|p| format!("path:\"{p}\"")),
        Just("path:/b*".to_string()),
        prop::sample::select(vec!["GET", "POST"]).prop_map(|m| format!("http.method:{m}")),
        Just("step:*".to_string()),
        prop::sample::select(vec![
            "timeout",
            "Payment",
            "\"talking to\"",
            "value",
            "nomatch"
        ])
        .prop_map(String::from),
        prop::sample::select(vec![
            "event:request_started",
            "message:\"payment failed\"",
            "exception:valueerror"
        ])
        .prop_map(String::from),
        Just("environment:prod".to_string()),
    ]
}

fn expr() -> impl Strategy<Value = String> {
    term().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} OR {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} AND {b}")),
            inner.clone().prop_map(|a| format!("NOT ({a})")),
            inner.prop_map(|a| format!("-{a}")),
        ]
    })
}

fn key(r: &LogRecord) -> String {
    r.to_json().to_string()
}

#[test]
fn executor_equals_brute_force() {
    let store = TestStore::open();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let base = 1_795_625_000_000_000_000i64;
    let mut all = Vec::new();
    // Two flushed parts of several row groups' worth, then some rows left in the head.
    for _ in 0..2 {
        let recs = records(3000, &mut seed, base);
        all.extend(recs.clone());
        store.append_blocking(recs).unwrap();
        store.flush().unwrap();
    }
    let recs = records(1000, &mut seed, base);
    all.extend(recs.clone());
    store.append_blocking(recs).unwrap();
    assert!(store.parts().len() >= 2);

    let engine = Engine::new(Limits::default());
    let mut runner = TestRunner::new(Config {
        cases: 160,
        failure_persistence: None,
        ..Config::default()
    });
    let nonempty = std::cell::Cell::new(0);
    runner
        .run(&expr(), |q| {
            let parsed = lang::parse(&q).map_err(|e| TestCaseError::fail(format!("{q}: {e}")))?;
            let f = Filter::new(&parsed.expr);
            let mut want: Vec<String> = all
                .iter()
                .filter(|r| f.matches_record(r))
                .map(key)
                .collect();
            want.sort();
            let (got, _, _) = engine
                .records(&store, &parsed.expr, Range::ALL, 10_000, None)
                .unwrap();
            let mut got: Vec<String> = got.iter().map(key).collect();
            got.sort();
            prop_assert_eq!(got.len(), want.len(), "{}", q);
            prop_assert!(got == want, "{}", q);
            if !want.is_empty() {
                nonempty.set(nonempty.get() + 1);
            }

            // The same filter counted by level and service.
            let agg = format!("{q} | count by (level, service)");
            let Answer::Series { series, .. } =
                engine.search(&store, &agg, Range::ALL, 100, None).unwrap()
            else {
                panic!("aggregation answers series")
            };
            let mut want_c: BTreeMap<(String, String), u64> = BTreeMap::new();
            for r in all.iter().filter(|r| f.matches_record(r)) {
                *want_c
                    .entry((r.level.as_str().to_string(), r.service.clone()))
                    .or_default() += 1;
            }
            let got_c: BTreeMap<(String, String), u64> = series
                .iter()
                .map(|s| {
                    (
                        (
                            s.labels["level"].as_str().unwrap().to_string(),
                            s.labels["service"].as_str().unwrap().to_string(),
                        ),
                        s.value.unwrap(),
                    )
                })
                .collect();
            prop_assert_eq!(got_c, want_c, "{}", agg);
            Ok(())
        })
        .unwrap();
    assert!(
        nonempty.get() > 40,
        "too few queries matched anything: {}",
        nonempty.get()
    );
}

#[test]
fn pages_walk_every_row_once() {
    let store = TestStore::open();
    let mut seed = 42u64;
    let base = 1_795_625_000_000_000_000i64;
    let recs = records(3000, &mut seed, base);
    store.append_blocking(recs[..2000].to_vec()).unwrap();
    store.flush().unwrap();
    store.append_blocking(recs[2000..].to_vec()).unwrap();
    let engine = Engine::new(Limits::default());
    let mut cursor: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let Answer::Logs {
            logs, next_cursor, ..
        } = engine
            .search(&store, "service:api", Range::ALL, 97, cursor.as_deref())
            .unwrap()
        else {
            panic!("logs")
        };
        seen.extend(logs.iter().map(|l| l.to_string()));
        match next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut want: Vec<String> = recs
        .iter()
        .filter(|r| r.service == "api")
        .map(key)
        .collect();
    want.sort();
    let n = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), n, "a row was returned twice");
    assert_eq!(seen, want);
}

#[test]
fn aggregation_shapes() {
    let store = TestStore::open();
    let mut seed = 7u64;
    let base = 1_795_625_000_000_000_000i64;
    let recs = records(4000, &mut seed, base);
    store.append_blocking(recs.clone()).unwrap();
    store.flush().unwrap();
    let engine = Engine::new(Limits::default());
    let run = |q: &str| match engine.search(&store, q, Range::ALL, 100, None).unwrap() {
        Answer::Series { series, .. } => series,
        Answer::Logs { .. } => panic!("{q}: series expected"),
    };
    let total = run("* | count");
    assert_eq!(total.len(), 1);
    assert_eq!(total[0].value, Some(4000));
    let top = run("* | top 2 by (event)");
    assert_eq!(top.len(), 2);
    assert!(top[0].value >= top[1].value);
    let by_time = run("* | count by (_time:1s, level)");
    let sum: u64 = by_time
        .iter()
        .flat_map(|s| s.points.as_ref().unwrap().iter().map(|p| p.1))
        .sum();
    assert_eq!(sum, 4000);
    // 4000 ms of timestamps in 1 s buckets: 4 buckets per level.
    assert!(by_time
        .iter()
        .all(|s| s.points.as_ref().unwrap().len() == 4));
    let by_status = run("* | count by (status)");
    assert_eq!(by_status.len(), 4);
    assert!(matches!(
        lang::parse("* | count by (status)").unwrap().pipes[0],
        Pipe::Count { .. }
    ));
    let facets = engine.facets(&store, "service:api", Range::ALL, 5).unwrap();
    let svc = facets.fields.iter().find(|f| f.name == "service").unwrap();
    assert_eq!(svc.values.len(), 1);
    assert_eq!(svc.values[0].value, "api");
    let status = facets.fields.iter().find(|f| f.name == "status").unwrap();
    assert_eq!(status.values.len(), 4);
}

#[test]
fn hostile_queries_are_bounded() {
    let store = TestStore::open();
    let mut seed = 9u64;
    store
        .append_blocking(records(5000, &mut seed, 1_795_625_000_000_000_000))
        .unwrap();
    store.flush().unwrap();
    let engine = Engine::new(Limits {
        max_groups: 100,
        ..Limits::default()
    });
    let err = |q: &str, limit: usize| {
        engine
            .search(&store, q, Range::ALL, limit, None)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    assert!(err("*", 1_000_000).contains("limit must be between"));
    assert!(
        err(&format!("{}a{}", "(".repeat(5000), ")".repeat(5000)), 10)
            .contains("nested too deeply")
    );
    // Grouping by a high-cardinality key over everything stays bounded.
    assert!(err("* | count by (_time:1ms, request_id)", 10).contains("more than 100 groups"));
    // A prefix match on a high-cardinality field is answered.
    assert!(engine
        .search(&store, "request_id:req-*", Range::ALL, 10_000, None)
        .is_ok());
    // A zero time budget stops a scan with a clear error.
    let slow = Engine::new(Limits {
        timeout: std::time::Duration::ZERO,
        ..Limits::default()
    });
    let e = slow
        .search(&store, "* | count", Range::ALL, 10, None)
        .unwrap_err();
    assert!(e.to_string().contains("time limit"), "{e}");
}

#[test]
fn conjuncts_implied_by_statistics_keep_answers() {
    // One part per service, one level per part: `service:` and `level:` terms
    // are implied by row-group statistics there and skipped, not lost.
    let store = TestStore::open();
    let mut seed = 11u64;
    let mut all = Vec::new();
    for (svc, level) in [("api", Level::Error), ("worker", Level::Info)] {
        let mut recs = records(2000, &mut seed, 1_795_625_000_000_000_000);
        for r in &mut recs {
            r.service = svc.to_string();
            r.level = level;
        }
        all.extend(recs.clone());
        store.append_blocking(recs).unwrap();
        store.flush().unwrap();
    }
    let engine = Engine::new(Limits::default());
    for q in [
        "service:api",
        "service:api level:>=error",
        "service:worker level:info status:500",
        "level:<=info",
        "level:>warning -service:worker",
    ] {
        let parsed = lang::parse(q).unwrap();
        let f = Filter::new(&parsed.expr);
        let want = all.iter().filter(|r| f.matches_record(r)).count();
        let (got, _, _) = engine
            .records(&store, &parsed.expr, Range::ALL, 10_000, None)
            .unwrap();
        assert_eq!(got.len(), want, "{q}");
        assert!(want > 0, "{q} matches something");
    }
}

/// Records the type of `message` in every batch a scan hands over.
struct TypeSink(Vec<arrow::datatypes::DataType>);

impl sightline_query::exec::Sink for TypeSink {
    fn columns(&self) -> std::collections::BTreeSet<&'static str> {
        ["message"].into_iter().collect()
    }
    fn push(&mut self, b: &arrow::array::RecordBatch) -> Result<(), sightline_query::QueryError> {
        self.0
            .push(b.column_by_name("message").unwrap().data_type().clone());
        Ok(())
    }
    fn fork(&self) -> Option<Self> {
        None
    }
    fn merge(&mut self, _: Self) -> Result<(), sightline_query::QueryError> {
        Ok(())
    }
}

#[test]
fn low_cardinality_columns_are_read_as_dictionaries() {
    use sightline_query::exec::{scan, Budget, MetaCache, Plan};
    let store = TestStore::open();
    let mut seed = 5u64;
    store
        .append_blocking(records(1000, &mut seed, 1_795_625_000_000_000_000))
        .unwrap();
    store.flush().unwrap();
    let mut sink = TypeSink(Vec::new());
    let plan = Plan::new(&lang::parse("*").unwrap().expr, i64::MIN, i64::MAX);
    let budget = Budget {
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(30),
    };
    scan(
        &store.snapshot(),
        &MetaCache::default(),
        &plan,
        budget,
        &mut sink,
    )
    .unwrap();
    assert!(!sink.0.is_empty());
    assert!(
        sink.0
            .iter()
            .all(|t| matches!(t, arrow::datatypes::DataType::Dictionary(..))),
        "{:?}",
        sink.0
    );
}

#[test]
fn negated_groups_and_everything() {
    let store = TestStore::open();
    let mut seed = 13u64;
    let recs = records(3000, &mut seed, 1_795_625_000_000_000_000);
    store.append_blocking(recs[..2000].to_vec()).unwrap();
    store.flush().unwrap();
    store.append_blocking(recs[2000..].to_vec()).unwrap();
    let engine = Engine::new(Limits::default());
    let count = |q: &str| match engine.search(&store, q, Range::ALL, 10, None).unwrap() {
        Answer::Series { series, .. } => series.first().and_then(|s| s.value).unwrap_or(0),
        Answer::Logs { .. } => panic!("series expected"),
    };
    assert_eq!(count("NOT * | count"), 0);
    assert_eq!(count("-* | count"), 0);
    assert_eq!(count("service:api -* | count"), 0);
    let billing = recs.iter().filter(|r| r.service == "billing").count() as u64;
    assert!(billing > 0);
    assert_eq!(count("-(service:api OR service:worker) | count"), billing);
    let no_phrase = recs
        .iter()
        .filter(|r| !r.message.to_ascii_lowercase().contains("payment failed"))
        .filter(|r| {
            !r.exception
                .as_deref()
                .is_some_and(|e| e.to_ascii_lowercase().contains("payment failed"))
        })
        .count() as u64;
    assert_eq!(count("-\"payment failed\" | count"), no_phrase);
}
