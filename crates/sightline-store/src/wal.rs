//! The write-ahead log: numbered segment files of length + CRC32 framed records.
//!
//! ```text
//! segment = header frame*
//! header  = "SLWAL" version:u8 0:u8 0:u8          (8 bytes)
//! frame   = len:u32le crc32(payload):u32le payload
//! ```
//! Version 2 payloads are LZ4 blocks with the uncompressed size prepended
//! (structlog batches shrink ~5×, and so does the fsynced I/O); version 1
//! payloads are stored as they are. Both are read; new segments are version 2.
//! A segment is appended by one writer thread (group commit: many frames, one
//! `write`, one `fdatasync`). On replay a frame that is short, over-long or fails
//! its CRC ends the segment: the file is truncated there and the torn tail counted,
//! never fatal.

use crate::files;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const WAL_MAGIC: &[u8; 5] = b"SLWAL";
pub const WAL_VERSION: u8 = 2;
/// Oldest segment version still replayed.
pub const WAL_MIN_VERSION: u8 = 1;
pub const HEADER_LEN: u64 = 8;
/// Largest frame accepted on replay; larger lengths are treated as a torn tail.
/// Ingest batches are bounded well below this by the server's body limits.
pub const MAX_FRAME_BYTES: u32 = 512 * 1024 * 1024;

fn header() -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..5].copy_from_slice(WAL_MAGIC);
    h[5] = WAL_VERSION;
    h
}

/// Compresses a payload for a version-2 frame.
pub fn compress(payload: &[u8]) -> Vec<u8> {
    lz4_flex::block::compress_prepend_size(payload)
}

fn decompress(frame: &[u8]) -> Option<Vec<u8>> {
    let declared = u32::from_le_bytes(frame.get(..4)?.try_into().ok()?);
    if declared > MAX_FRAME_BYTES {
        return None;
    }
    lz4_flex::block::decompress_size_prepended(frame).ok()
}

/// Appends `payload` as one frame to `buf`.
pub fn frame_into(buf: &mut Vec<u8>, payload: &[u8]) {
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// An open segment being appended.
#[derive(Debug)]
pub struct SegmentWriter {
    pub id: u64,
    file: File,
    len: u64,
}

impl SegmentWriter {
    /// Creates a new segment (fails if it exists) and makes its creation durable.
    pub fn create(root: &Path, id: u64) -> io::Result<SegmentWriter> {
        let path = files::wal_segment(root, id);
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .read(true)
            .open(&path)?;
        if let Err(e) = file.write_all(&header()).and_then(|_| file.sync_all()) {
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        if let Err(e) = files::sync_dir(&files::wal_dir(root)) {
            // Leave no file behind, or every later attempt at this id fails.
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(SegmentWriter {
            id,
            file,
            len: HEADER_LEN,
        })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == HEADER_LEN
    }

    /// Writes already-framed bytes. On error the segment is cut back to its last
    /// good length so that a later append starts on a frame boundary.
    pub fn write(&mut self, framed: &[u8]) -> io::Result<()> {
        match self.file.write_all(framed) {
            Ok(()) => {
                self.len += framed.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                let _ = self.file.seek(SeekFrom::Start(self.len));
                Err(e)
            }
        }
    }

    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Cuts the segment back to `len` (frames written but not made durable are
    /// dropped, so a client's retry cannot store them twice).
    pub fn rollback(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.file.seek(SeekFrom::Start(len))?;
        self.len = len;
        self.file.sync_data()
    }
}

/// What replaying one segment found.
#[derive(Debug, Default)]
pub struct Replay {
    pub frames: Vec<Vec<u8>>,
    /// Bytes cut off the end because the last frame was incomplete or corrupt.
    pub torn_bytes: u64,
}

/// Reads every intact frame of a segment, truncating a torn tail in place.
pub fn replay_segment(path: &Path) -> io::Result<Replay> {
    scan_segment(path, true)
}

/// Reads every intact frame of a segment without changing the file (for
/// inspection while another process may own it).
pub fn read_segment(path: &Path) -> io::Result<Replay> {
    scan_segment(path, false)
}

fn scan_segment(path: &Path, repair: bool) -> io::Result<Replay> {
    let mut file = OpenOptions::new().read(true).write(repair).open(path)?;
    let total = file.metadata()?.len();
    let mut head = [0u8; 8];
    if total < HEADER_LEN && !repair {
        return Ok(Replay {
            frames: vec![],
            torn_bytes: total,
        });
    }
    if total < HEADER_LEN {
        // Crashed while creating: nothing in it was ever acknowledged.
        file.set_len(0)?;
        file.write_all(&header())?;
        file.sync_all()?;
        return Ok(Replay {
            frames: vec![],
            torn_bytes: total,
        });
    }
    file.read_exact(&mut head)?;
    if &head[..5] != WAL_MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a Sightline WAL segment", path.display()),
        ));
    }
    let version = head[5];
    if !(WAL_MIN_VERSION..=WAL_VERSION).contains(&version) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: WAL version {version} is not supported (this build reads {WAL_MIN_VERSION} to {WAL_VERSION})",
                path.display(),
            ),
        ));
    }
    let mut data = Vec::with_capacity((total - HEADER_LEN) as usize);
    file.read_to_end(&mut data)?;
    let mut frames = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let rest = &data[pos..];
        if rest.len() < 8 {
            break;
        }
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap());
        let crc = u32::from_le_bytes(rest[4..8].try_into().unwrap());
        if len > MAX_FRAME_BYTES || rest.len() < 8 + len as usize {
            break;
        }
        let payload = &rest[8..8 + len as usize];
        if crc32fast::hash(payload) != crc {
            break;
        }
        let frame = if version == 1 {
            payload.to_vec()
        } else {
            match decompress(payload) {
                Some(f) => f,
                // Intact CRC but not a valid block: end the segment here.
                None => break,
            }
        };
        frames.push(frame);
        pos += 8 + len as usize;
    }
    let torn = (data.len() - pos) as u64;
    if torn > 0 && repair {
        file.set_len(HEADER_LEN + pos as u64)?;
        file.sync_all()?;
    }
    Ok(Replay {
        frames,
        torn_bytes: torn,
    })
}

/// Writes a whole segment-format file (header and one frame per payload,
/// each compressed) through a temporary name, fsynced, then renamed into
/// place: used for checkpoints, which must appear whole or not at all.
pub fn write_file(path: &Path, payloads: &[Vec<u8>]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::io::BufWriter::new(File::create(&tmp)?);
        f.write_all(&header())?;
        let mut buf = Vec::new();
        for p in payloads {
            buf.clear();
            frame_into(&mut buf, &compress(p));
            f.write_all(&buf)?;
        }
        f.flush()?;
        f.get_ref().sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        files::sync_dir(dir)?;
    }
    Ok(())
}

/// Segment ids present in the WAL directory, ascending.
pub fn list_segments(root: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(files::wal_dir(root))? {
        let entry = entry?;
        if let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(files::parse_wal_segment)
        {
            out.push((id, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_tail_is_truncated_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(files::wal_dir(dir.path())).unwrap();
        let mut w = SegmentWriter::create(dir.path(), 1).unwrap();
        let mut buf = Vec::new();
        frame_into(&mut buf, &compress(b"one"));
        frame_into(&mut buf, &compress(b"two"));
        w.write(&buf).unwrap();
        let mut torn = Vec::new();
        frame_into(&mut torn, &compress(b"three-is-torn"));
        w.write(&torn[..torn.len() - 3]).unwrap();
        w.sync().unwrap();
        drop(w);
        let path = files::wal_segment(dir.path(), 1);
        let r = replay_segment(&path).unwrap();
        assert_eq!(r.frames, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(r.torn_bytes, (torn.len() - 3) as u64);
        let again = replay_segment(&path).unwrap();
        assert_eq!((again.frames.len(), again.torn_bytes), (2, 0));
    }

    #[test]
    fn corrupt_crc_ends_the_segment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(files::wal_dir(dir.path())).unwrap();
        let mut w = SegmentWriter::create(dir.path(), 7).unwrap();
        let mut buf = Vec::new();
        frame_into(&mut buf, &compress(b"good"));
        frame_into(&mut buf, &compress(b"flipped"));
        let n = buf.len();
        buf[n - 1] ^= 0xff;
        w.write(&buf).unwrap();
        drop(w);
        let r = replay_segment(&files::wal_segment(dir.path(), 7)).unwrap();
        assert_eq!(r.frames, vec![b"good".to_vec()]);
        assert!(r.torn_bytes > 0);
    }

    #[test]
    fn wrong_version_is_refused_loudly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.wal");
        std::fs::write(&p, b"SLWAL\x09\0\0").unwrap();
        let e = replay_segment(&p).unwrap_err();
        assert!(e.to_string().contains("version 9"), "{e}");
    }
}
