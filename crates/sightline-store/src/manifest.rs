//! The manifest: which parts exist, their day, time range, row count and size,
//! and up to which WAL segment their rows are covered. SQLite (WAL journal,
//! `synchronous=FULL`), versioned by `PRAGMA user_version`.

use crate::StoreError;
use rusqlite::{params, Connection};
use std::path::Path;

/// Manifest schema version; refused when the file is newer.
pub const MANIFEST_VERSION: i64 = 1;

/// One part as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartMeta {
    pub id: i64,
    /// Relative to the data dir.
    pub path: String,
    pub day: String,
    pub min_ts: i64,
    pub max_ts: i64,
    pub rows: i64,
    pub bytes: i64,
    /// 0 for a flushed part, n+1 for a part made by compacting level-n parts.
    pub level: i64,
}

#[derive(Debug)]
pub struct Manifest {
    conn: Connection,
}

impl Manifest {
    pub fn open(path: &Path) -> Result<Manifest, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        match version {
            0 => {
                conn.execute_batch(
                    "BEGIN;
                     CREATE TABLE parts (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        path TEXT NOT NULL UNIQUE,
                        day TEXT NOT NULL,
                        min_ts INTEGER NOT NULL,
                        max_ts INTEGER NOT NULL,
                        rows INTEGER NOT NULL,
                        bytes INTEGER NOT NULL,
                        level INTEGER NOT NULL DEFAULT 0,
                        created_at INTEGER NOT NULL
                     );
                     CREATE INDEX parts_day ON parts(day);
                     CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                     PRAGMA user_version = 1;
                     COMMIT;",
                )?;
            }
            MANIFEST_VERSION => {}
            v => {
                return Err(StoreError::Corrupt(format!(
                    "{}: manifest version {v} is newer than this build understands ({MANIFEST_VERSION})",
                    path.display()
                )))
            }
        }
        Ok(Manifest { conn })
    }

    pub fn parts(&self) -> Result<Vec<PartMeta>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT id, path, day, min_ts, max_ts, rows, bytes, level FROM parts ORDER BY min_ts",
        )?;
        let rows = st.query_map([], |r| {
            Ok(PartMeta {
                id: r.get(0)?,
                path: r.get(1)?,
                day: r.get(2)?,
                min_ts: r.get(3)?,
                max_ts: r.get(4)?,
                rows: r.get(5)?,
                bytes: r.get(6)?,
                level: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The last WAL segment whose rows are all in parts (0: none).
    pub fn wal_covered(&self) -> Result<u64, StoreError> {
        let v: Option<String> = match self.conn.query_row(
            "SELECT value FROM meta WHERE key = 'wal_covered'",
            [],
            |r| r.get(0),
        ) {
            Ok(v) => Some(v),
            Err(rusqlite::Error::QueryReturnedNoRows) => None,
            // Defaulting to 0 here would replay rows already in parts.
            Err(e) => return Err(e.into()),
        };
        match v {
            None => Ok(0),
            Some(v) => v
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("manifest wal_covered = {v:?}"))),
        }
    }

    /// Atomically: add `new` parts, remove `removed` part ids, and (if given)
    /// record WAL coverage. Returns the new parts with their ids.
    pub fn commit(
        &mut self,
        new: &[PartMeta],
        removed: &[i64],
        wal_covered: Option<u64>,
        now_ns: i64,
    ) -> Result<Vec<PartMeta>, StoreError> {
        let tx = self.conn.transaction()?;
        let mut out = Vec::new();
        for p in new {
            tx.execute(
                "INSERT INTO parts (path, day, min_ts, max_ts, rows, bytes, level, created_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
                params![p.path, p.day, p.min_ts, p.max_ts, p.rows, p.bytes, p.level, now_ns],
            )?;
            out.push(PartMeta {
                id: tx.last_insert_rowid(),
                ..p.clone()
            });
        }
        for id in removed {
            tx.execute("DELETE FROM parts WHERE id = ?1", params![id])?;
        }
        if let Some(seg) = wal_covered {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('wal_covered', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![seg.to_string()],
            )?;
        }
        tx.commit()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.sqlite");
        let mut m = Manifest::open(&p).unwrap();
        let part = PartMeta {
            id: 0,
            path: "parts/logs/d/a.parquet".into(),
            day: "d".into(),
            min_ts: 1,
            max_ts: 2,
            rows: 3,
            bytes: 4,
            level: 0,
        };
        let added = m.commit(&[part.clone()], &[], Some(5), 0).unwrap();
        drop(m);
        let mut m = Manifest::open(&p).unwrap();
        assert_eq!(m.parts().unwrap(), added);
        assert_eq!(m.wal_covered().unwrap(), 5);
        m.commit(&[], &[added[0].id], None, 0).unwrap();
        assert!(m.parts().unwrap().is_empty());
        assert_eq!(m.wal_covered().unwrap(), 5);
    }

    #[test]
    fn newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.sqlite");
        Connection::open(&p)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let e = Manifest::open(&p).unwrap_err();
        assert!(e.to_string().contains("version 99"), "{e}");
    }
}
