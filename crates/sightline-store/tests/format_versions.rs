//! Data directories written by earlier builds still open: one fixture per
//! on-disk format version (`tests/fixtures/data-dir-v<N>`), with rows in a part
//! and rows only in the WAL (the writer was killed with -9).

use sightline_store::{LogStore, StoreConfig};
use std::path::{Path, PathBuf};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn data_dir_v1_opens() {
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/data-dir-v1");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    copy_dir(&fixture, &dir);
    let mut cfg = StoreConfig::new(&dir);
    cfg.retention = None; // the fixture's rows are from 2026-11-25
    let store = LogStore::open(cfg).unwrap();
    let parts = store.parts();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].rows, 31);
    let rows = store.snapshot().rows().unwrap();
    let count =
        |f: &dyn Fn(&sightline_pipeline::LogRecord) -> bool| rows.iter().filter(|r| f(r)).count();
    assert_eq!(count(&|r| r.service == "v1-parts"), 31);
    assert_eq!(
        count(&|r| r.service == "v1-wal"),
        2,
        "rows only in the WAL are replayed"
    );
    let mut by_req: Vec<_> = rows
        .iter()
        .filter(|r| r.request_id.as_deref() == Some("req-retake-fail"))
        .collect();
    by_req.sort_by_key(|r| std::cmp::Reverse(r.timestamp_ns));
    assert_eq!(by_req.len(), 4);
    assert_eq!(by_req[0].message, "retake_flow_failed");
}
