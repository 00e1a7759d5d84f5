//! Read-only inspection of a data directory: every stored log row, from the
//! WAL segments and from the parts, decoded. Used by `sightline inspect` and by
//! the tests that prove no secret reached the disk (the WAL is LZ4-compressed
//! and parts are zstd-compressed, so searching raw bytes proves nothing).

use crate::{codec, files, part, wal, StoreError};
use sightline_pipeline::LogRecord;
use std::path::{Path, PathBuf};

/// Where a row was found.
#[derive(Debug, Clone)]
pub enum Source {
    Wal(PathBuf),
    Part(PathBuf),
}

/// Calls `f` for every row in every WAL segment and every part file under `root`
/// (including rows that are in both a segment and a part before the segment is
/// deleted). Changes nothing on disk.
pub fn for_each_row(root: &Path, mut f: impl FnMut(&Source, &LogRecord)) -> Result<(), StoreError> {
    for (_, path) in wal::list_segments(root)? {
        let source = Source::Wal(path.clone());
        for frame in wal::read_segment(&path)?.frames {
            let rows = codec::decode_logs(&frame)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display())))?;
            for r in &rows {
                f(&source, r);
            }
        }
    }
    let mut stack = vec![files::log_parts_dir(root)];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                let source = Source::Part(p.clone());
                let mut rows = Vec::new();
                for b in part::read_all(&p)? {
                    part::batch_to_records(&b, &mut rows);
                }
                for r in &rows {
                    f(&source, r);
                }
            }
        }
    }
    Ok(())
}
