//! Projects and their public keys (what a Sentry DSN names), in
//! `DATA/meta.sqlite`: small mutable metadata, versioned by `PRAGMA user_version`.

use crate::StoreError;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

/// Metadata schema version; refused when the file is newer.
pub const META_VERSION: i64 = 2;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub keys: Vec<String>,
}

#[derive(Debug)]
pub struct Projects {
    conn: Connection,
}

/// Project names: lowercase letters, digits, `-` and `_`, 1 to 64 characters.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Public keys: 32 lowercase hex digits, as Sentry issues them.
pub fn valid_key(key: &str) -> bool {
    key.len() == 32
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Projects {
    pub fn open(path: &Path) -> Result<Projects, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        match version {
            0 => conn.execute_batch(
                "BEGIN;
                 CREATE TABLE projects (
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL UNIQUE,
                    created_at INTEGER NOT NULL
                 );
                 CREATE TABLE project_keys (
                    public_key TEXT PRIMARY KEY,
                    project_id INTEGER NOT NULL REFERENCES projects(id),
                    created_at INTEGER NOT NULL
                 );
                 CREATE INDEX project_keys_project ON project_keys(project_id);
                 CREATE TABLE targets (url TEXT PRIMARY KEY, config TEXT NOT NULL);
                 PRAGMA user_version = 2;
                 COMMIT;",
            )?,
            1 => conn.execute_batch(
                "BEGIN;
                 CREATE TABLE targets (url TEXT PRIMARY KEY, config TEXT NOT NULL);
                 PRAGMA user_version = 2;
                 COMMIT;",
            )?,
            META_VERSION => {}
            v => {
                return Err(StoreError::Corrupt(format!(
                "{}: metadata version {v} is newer than this build understands ({META_VERSION})",
                path.display()
            )))
            }
        }
        Ok(Projects { conn })
    }

    /// Every project with its keys, by id.
    /// Scrape targets added at runtime: (url, config as JSON).
    pub fn targets(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT url, config FROM targets ORDER BY url")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn put_target(&self, url: &str, config: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO targets (url, config) VALUES (?1, ?2)
             ON CONFLICT(url) DO UPDATE SET config = excluded.config",
            rusqlite::params![url, config],
        )?;
        Ok(())
    }

    pub fn delete_target(&self, url: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM targets WHERE url = ?1", [url])?;
        Ok(())
    }

    pub fn list(&self) -> Result<Vec<Project>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT id, name FROM projects ORDER BY id")?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(id, name)| {
                Ok(Project {
                    id,
                    name,
                    keys: self.keys_of(id)?,
                })
            })
            .collect()
    }

    fn keys_of(&self, id: i64) -> Result<Vec<String>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT public_key FROM project_keys WHERE project_id = ?1 ORDER BY created_at, public_key",
        )?;
        let keys = st
            .query_map([id], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(keys)
    }

    pub fn by_name(&self, name: &str) -> Result<Option<Project>, StoreError> {
        let id: Option<i64> = self
            .conn
            .query_row("SELECT id FROM projects WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        match id {
            None => Ok(None),
            Some(id) => Ok(Some(Project {
                id,
                name: name.to_string(),
                keys: self.keys_of(id)?,
            })),
        }
    }

    /// The project a public key belongs to.
    pub fn project_of_key(&self, key: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT project_id FROM project_keys WHERE public_key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Creates a project (with `id`, or the next free one) and its first key.
    pub fn create(
        &mut self,
        name: &str,
        id: Option<i64>,
        key: &str,
    ) -> Result<Project, StoreError> {
        if !valid_name(name) {
            return Err(StoreError::Invalid(format!(
                "project name {name:?}: use 1 to 64 lowercase letters, digits, '-' or '_'"
            )));
        }
        if !valid_key(key) {
            return Err(StoreError::Invalid(format!(
                "public key {key:?}: expected 32 lowercase hex digits"
            )));
        }
        if self.by_name(name)?.is_some() {
            return Err(StoreError::Invalid(format!("project {name:?} exists")));
        }
        let tx = self.conn.transaction()?;
        let id = match id {
            Some(id) if id > 0 => id,
            Some(id) => {
                return Err(StoreError::Invalid(format!(
                    "project id {id}: must be positive"
                )))
            }
            None => tx.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM projects", [], |r| {
                r.get(0)
            })?,
        };
        tx.execute(
            "INSERT INTO projects (id, name, created_at) VALUES (?1, ?2, ?3)",
            params![id, name, now_s()],
        )
        .map_err(|e| StoreError::Invalid(format!("project id {id}: {e}")))?;
        tx.execute(
            "INSERT INTO project_keys (public_key, project_id, created_at) VALUES (?1, ?2, ?3)",
            params![key, id, now_s()],
        )
        .map_err(|e| StoreError::Invalid(format!("public key: {e}")))?;
        tx.commit()?;
        Ok(Project {
            id,
            name: name.to_string(),
            keys: vec![key.to_string()],
        })
    }

    /// Adds a key to a project.
    pub fn add_key(&mut self, name: &str, key: &str) -> Result<Project, StoreError> {
        if !valid_key(key) {
            return Err(StoreError::Invalid(format!(
                "public key {key:?}: expected 32 lowercase hex digits"
            )));
        }
        let Some(p) = self.by_name(name)? else {
            return Err(StoreError::Invalid(format!("no project {name:?}")));
        };
        self.conn
            .execute(
                "INSERT INTO project_keys (public_key, project_id, created_at) VALUES (?1, ?2, ?3)",
                params![key, p.id, now_s()],
            )
            .map_err(|e| StoreError::Invalid(format!("public key: {e}")))?;
        Ok(self.by_name(name)?.expect("just read"))
    }

    /// Makes a project declared in the config exist with (at least) its keys;
    /// a name already used by another id is an error.
    pub fn declare(
        &mut self,
        name: &str,
        id: Option<i64>,
        keys: &[String],
    ) -> Result<Project, StoreError> {
        let p = match self.by_name(name)? {
            Some(p) => {
                if id.is_some_and(|id| id != p.id) {
                    return Err(StoreError::Invalid(format!(
                        "project {name:?} has id {} in the data dir, not {}",
                        p.id,
                        id.unwrap_or_default()
                    )));
                }
                p
            }
            None => {
                let Some(first) = keys.first() else {
                    return Err(StoreError::Invalid(format!(
                        "project {name:?} declares no keys"
                    )));
                };
                self.create(name, id, first)?
            }
        };
        for k in keys {
            if !p.keys.contains(k) {
                self.add_key(name, k)?;
            }
        }
        Ok(self.by_name(name)?.expect("just made"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "0123456789abcdef0123456789abcdef";
    const K2: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn projects_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.sqlite");
        let mut p = Projects::open(&path).unwrap();
        assert!(p.list().unwrap().is_empty());
        let d = p.create("default", None, K1).unwrap();
        assert_eq!(d.id, 1);
        let api = p.declare("api", Some(42), &[K2.to_string()]).unwrap();
        assert_eq!(api.id, 42);
        assert_eq!(p.project_of_key(K2).unwrap(), Some(42));
        assert_eq!(p.project_of_key("nope").unwrap(), None);
        // Declaring again is a no-op; another id for the same name is refused.
        p.declare("api", Some(42), &[K2.to_string()]).unwrap();
        assert!(p.declare("api", Some(7), &[]).is_err());
        assert!(p.create("api", None, K1).is_err(), "name taken");
        assert!(p.create("other", None, K1).is_err(), "key taken");
        assert!(p.create("Bad Name", None, K2).is_err());
        assert!(p.create("ok", None, "short").is_err());
        let next = p
            .create("worker", None, "11111111111111111111111111111111")
            .unwrap();
        assert_eq!(next.id, 43);
        drop(p);
        let p = Projects::open(&path).unwrap();
        let names: Vec<String> = p.list().unwrap().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["default", "api", "worker"]);
    }
}
