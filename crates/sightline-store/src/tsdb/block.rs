//! Persisted metric blocks: every sample of a time range, series by series,
//! in one immutable file under `DATA/metrics/blocks/`.
//!
//! ```text
//! file    = "SLBLK001" frame* index footer
//! frame   = zstd(series_data*)                 (~128 KiB before compression)
//! series_data = n:varint ts values
//! ts      = t0 (zigzag) Δ1 (zigzag) Δ²* (zigzag)     delta-of-delta timestamps
//! values  = 0 v0 Δ*          integers, delta-encoded (zigzag varints)
//!         | 1 v0 Δ1 Δ²*      integers, delta-of-delta
//!         | 2 k  …           decimals: integers × 10^-k, then as 0
//!         | 3 len xor-bits   anything else: Gorilla XOR of the bit patterns
//! index   = zstd(mint maxt cut_end n_frames frame_offsets n_series
//!                (labels mint maxt last_v frame offset len)*)
//! footer  = index_offset:u64le index_len:u64le crc32(index):u32le "SLBLKEND"
//! ```
//! Regular scrapes make every Δ² zero and counters' deltas tiny, so zstd
//! leaves well under a byte per sample. Each value run picks the smallest of
//! its possible encodings.

use super::chunk::{decode_xor, encode_xor};
use super::Labels;
use crate::files;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"SLBLK001";
const END: &[u8; 8] = b"SLBLKEND";
/// Uncompressed bytes per zstd frame: small enough that reading one series
/// decompresses little, large enough to compress well.
const FRAME_BYTES: usize = 128 << 10;
const ZSTD_LEVEL: i32 = 9;

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn get_varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

pub fn zz(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzz(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

pub fn get_str(b: &mut &[u8]) -> Option<String> {
    let n = get_varint(b)? as usize;
    if n > b.len() {
        return None;
    }
    let (s, rest) = b.split_at(n);
    *b = rest;
    String::from_utf8(s.to_vec()).ok()
}

const MAX_EXACT: f64 = 9_007_199_254_740_992.0; // 2^53

fn as_ints(values: &[f64], scale: f64) -> Option<Vec<i64>> {
    values
        .iter()
        .map(|&v| {
            let x = v * scale;
            (x.is_finite()
                && x.fract() == 0.0
                && x.abs() < MAX_EXACT
                && ((x as i64) as f64 / scale).to_bits() == v.to_bits())
            .then_some(x as i64)
        })
        .collect()
}

fn ints_delta(out: &mut Vec<u8>, ints: &[i64], dod: bool) {
    let mut prev = 0i64;
    let mut prev_d = 0i64;
    for (i, &x) in ints.iter().enumerate() {
        let d = x.wrapping_sub(prev);
        let enc = if dod && i >= 2 {
            d.wrapping_sub(prev_d)
        } else {
            d
        };
        put_varint(out, zz(enc));
        prev = x;
        prev_d = d;
    }
}

/// Appends the encoded values, choosing the smallest encoding.
fn encode_values(out: &mut Vec<u8>, values: &[f64]) {
    let mut best: Option<Vec<u8>> = None;
    let mut consider = |b: Vec<u8>| {
        if best.as_ref().is_none_or(|x| b.len() < x.len()) {
            best = Some(b);
        }
    };
    if let Some(ints) = as_ints(values, 1.0) {
        for (mode, dod) in [(0u8, false), (1u8, true)] {
            let mut b = vec![mode];
            ints_delta(&mut b, &ints, dod);
            consider(b);
        }
    } else {
        for k in 1..=9u8 {
            if let Some(ints) = as_ints(values, 10f64.powi(k as i32)) {
                let mut b = vec![2, k];
                ints_delta(&mut b, &ints, false);
                consider(b);
                break;
            }
        }
    }
    let bits: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
    let x = encode_xor(&bits);
    let mut b = vec![3];
    put_varint(&mut b, x.len() as u64);
    b.extend_from_slice(&x);
    consider(b);
    out.extend_from_slice(&best.expect("xor is always there"));
}

fn decode_ints(b: &mut &[u8], n: usize, dod: bool) -> Option<Vec<i64>> {
    let mut out = Vec::with_capacity(n.min(b.len()));
    let (mut prev, mut prev_d) = (0i64, 0i64);
    for i in 0..n {
        let enc = unzz(get_varint(b)?);
        let d = if dod && i >= 2 {
            prev_d.wrapping_add(enc)
        } else {
            enc
        };
        let x = prev.wrapping_add(d);
        out.push(x);
        prev = x;
        prev_d = d;
    }
    Some(out)
}

fn decode_values(b: &mut &[u8], n: usize) -> Option<Vec<f64>> {
    let (&mode, rest) = b.split_first()?;
    *b = rest;
    match mode {
        0 | 1 => Some(
            decode_ints(b, n, mode == 1)?
                .into_iter()
                .map(|x| x as f64)
                .collect(),
        ),
        2 => {
            let (&k, rest) = b.split_first()?;
            *b = rest;
            let scale = 10f64.powi(k as i32);
            Some(
                decode_ints(b, n, false)?
                    .into_iter()
                    .map(|x| x as f64 / scale)
                    .collect(),
            )
        }
        3 => {
            let len = get_varint(b)? as usize;
            if len > b.len() {
                return None;
            }
            let (x, rest) = b.split_at(len);
            *b = rest;
            Some(decode_xor(x, n)?.into_iter().map(f64::from_bits).collect())
        }
        _ => None,
    }
}

/// Encodes one series' samples (sorted by time, at least one).
pub fn encode_series(out: &mut Vec<u8>, samples: &[(i64, f64)]) {
    put_varint(out, samples.len() as u64);
    let (mut prev, mut prev_d) = (0i64, 0i64);
    for (i, &(t, _)) in samples.iter().enumerate() {
        let d = t.wrapping_sub(prev);
        put_varint(out, zz(if i >= 2 { d.wrapping_sub(prev_d) } else { d }));
        prev = t;
        prev_d = d;
    }
    let values: Vec<f64> = samples.iter().map(|s| s.1).collect();
    encode_values(out, &values);
}

pub fn decode_series(mut b: &[u8]) -> Option<Vec<(i64, f64)>> {
    let n = get_varint(&mut b)? as usize;
    if n > b.len() {
        return None;
    }
    let ts = decode_ints(&mut b, n, true)?;
    let vs = decode_values(&mut b, n)?;
    Some(ts.into_iter().zip(vs).collect())
}

/// Where one series' data sits in a block.
#[derive(Debug, Clone)]
pub struct Entry {
    pub labels: Labels,
    pub mint: i64,
    pub maxt: i64,
    pub last_v: f64,
    pub count: u32,
    pub frame: u32,
    pub offset: u32,
    pub len: u32,
}

/// A block's index, read from its file.
#[derive(Debug)]
pub struct BlockMeta {
    pub path: PathBuf,
    pub mint: i64,
    pub maxt: i64,
    /// Samples before this time were cut into this block.
    pub cut_end: i64,
    pub frames: Vec<(u64, u64)>,
    pub entries: Vec<Entry>,
    pub bytes: u64,
    pub samples: u64,
}

pub fn file_name(mint: i64, maxt: i64, seq: u64) -> String {
    format!("b-{mint}-{maxt}-{seq}.blk")
}

/// Writes a block of `series` (labels sorted, samples sorted, none empty)
/// into `dir`, fsynced, through a temporary name. Returns its meta.
pub fn write(
    dir: &Path,
    seq: u64,
    cut_end: i64,
    series: impl Iterator<Item = (Labels, Vec<(i64, f64)>)>,
) -> io::Result<BlockMeta> {
    std::fs::create_dir_all(dir)?;
    let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
    let tmp = dir.join(format!("b-{seq}.tmp"));
    let mut f = io::BufWriter::new(File::create(&tmp)?);
    f.write_all(MAGIC)?;
    let mut pos = MAGIC.len() as u64;
    let mut frames: Vec<(u64, u64)> = vec![];
    let mut entries = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(FRAME_BYTES + 4096);
    let mut samples = 0u64;
    let flush = |buf: &mut Vec<u8>,
                 f: &mut io::BufWriter<File>,
                 pos: &mut u64,
                 frames: &mut Vec<(u64, u64)>|
     -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let z = zstd::bulk::compress(buf, ZSTD_LEVEL)?;
        f.write_all(&z)?;
        frames.push((*pos, z.len() as u64));
        *pos += z.len() as u64;
        buf.clear();
        Ok(())
    };
    for (labels, s) in series {
        if s.is_empty() {
            continue;
        }
        mint = mint.min(s[0].0);
        maxt = maxt.max(s[s.len() - 1].0);
        let offset = buf.len();
        encode_series(&mut buf, &s);
        samples += s.len() as u64;
        entries.push(Entry {
            labels,
            mint: s[0].0,
            maxt: s[s.len() - 1].0,
            last_v: s[s.len() - 1].1,
            count: s.len() as u32,
            frame: frames.len() as u32,
            offset: offset as u32,
            len: (buf.len() - offset) as u32,
        });
        if buf.len() >= FRAME_BYTES {
            flush(&mut buf, &mut f, &mut pos, &mut frames)?;
        }
    }
    flush(&mut buf, &mut f, &mut pos, &mut frames)?;
    if entries.is_empty() {
        (mint, maxt) = (0, 0);
    }
    let mut idx = Vec::new();
    put_varint(&mut idx, zz(mint));
    put_varint(&mut idx, zz(maxt));
    put_varint(&mut idx, zz(cut_end));
    put_varint(&mut idx, frames.len() as u64);
    for (o, l) in &frames {
        put_varint(&mut idx, *o);
        put_varint(&mut idx, *l);
    }
    put_varint(&mut idx, entries.len() as u64);
    for e in &entries {
        put_varint(&mut idx, e.labels.0.len() as u64);
        for (n, v) in &e.labels.0 {
            put_str(&mut idx, n);
            put_str(&mut idx, v);
        }
        put_varint(&mut idx, zz(e.mint));
        put_varint(&mut idx, zz(e.maxt));
        idx.extend_from_slice(&e.last_v.to_bits().to_le_bytes());
        put_varint(&mut idx, e.count as u64);
        put_varint(&mut idx, e.frame as u64);
        put_varint(&mut idx, e.offset as u64);
        put_varint(&mut idx, e.len as u64);
    }
    let z = zstd::bulk::compress(&idx, ZSTD_LEVEL)?;
    f.write_all(&z)?;
    f.write_all(&pos.to_le_bytes())?;
    f.write_all(&(z.len() as u64).to_le_bytes())?;
    f.write_all(&crc32fast::hash(&z).to_le_bytes())?;
    f.write_all(&(idx.len() as u32).to_le_bytes())?;
    f.write_all(END)?;
    f.flush()?;
    f.get_ref().sync_all()?;
    drop(f);
    let path = dir.join(file_name(mint, maxt, seq));
    std::fs::rename(&tmp, &path)?;
    files::sync_dir(dir)?;
    let bytes = std::fs::metadata(&path)?.len();
    Ok(BlockMeta {
        path,
        mint,
        maxt,
        cut_end,
        frames,
        entries,
        bytes,
        samples,
    })
}

fn corrupt(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

/// Reads a block's index.
pub fn open(path: &Path) -> io::Result<BlockMeta> {
    let mut f = File::open(path)?;
    let bytes = f.metadata()?.len();
    if bytes < (MAGIC.len() + 32) as u64 {
        return Err(corrupt(path, "too short for a block"));
    }
    let mut head = [0u8; 8];
    f.read_exact(&mut head)?;
    if &head != MAGIC {
        return Err(corrupt(path, "not a Sightline metrics block"));
    }
    f.seek(SeekFrom::End(-32))?;
    let mut foot = [0u8; 32];
    f.read_exact(&mut foot)?;
    if &foot[24..] != END {
        return Err(corrupt(path, "no block footer (incomplete write?)"));
    }
    let off = u64::from_le_bytes(foot[0..8].try_into().unwrap());
    let len = u64::from_le_bytes(foot[8..16].try_into().unwrap());
    let crc = u32::from_le_bytes(foot[16..20].try_into().unwrap());
    let raw_len = u32::from_le_bytes(foot[20..24].try_into().unwrap());
    if off.checked_add(len).is_none_or(|e| e > bytes - 32) {
        return Err(corrupt(path, "index outside the file"));
    }
    f.seek(SeekFrom::Start(off))?;
    let mut z = vec![0u8; len as usize];
    f.read_exact(&mut z)?;
    if crc32fast::hash(&z) != crc {
        return Err(corrupt(path, "index checksum mismatch"));
    }
    let idx = zstd::bulk::decompress(&z, raw_len as usize)
        .map_err(|e| corrupt(path, &format!("index: {e}")))?;
    parse_index(path, &idx, bytes).ok_or_else(|| corrupt(path, "index does not decode"))
}

fn parse_index(path: &Path, mut b: &[u8], bytes: u64) -> Option<BlockMeta> {
    let b = &mut b;
    let mint = unzz(get_varint(b)?);
    let maxt = unzz(get_varint(b)?);
    let cut_end = unzz(get_varint(b)?);
    let nf = get_varint(b)? as usize;
    if nf > b.len() {
        return None;
    }
    let mut frames = Vec::with_capacity(nf);
    for _ in 0..nf {
        frames.push((get_varint(b)?, get_varint(b)?));
    }
    let ns = get_varint(b)? as usize;
    if ns > b.len() {
        return None;
    }
    let mut entries = Vec::with_capacity(ns);
    let mut samples = 0u64;
    for _ in 0..ns {
        let k = get_varint(b)? as usize;
        if k > b.len() {
            return None;
        }
        let mut pairs = Vec::with_capacity(k);
        for _ in 0..k {
            pairs.push((get_str(b)?, get_str(b)?));
        }
        let mint = unzz(get_varint(b)?);
        let maxt = unzz(get_varint(b)?);
        let last_v = f64::from_bits(u64::from_le_bytes(b.get(..8)?.try_into().ok()?));
        *b = &b[8..];
        let e = Entry {
            labels: Labels(pairs),
            mint,
            maxt,
            last_v,
            count: get_varint(b)? as u32,
            frame: get_varint(b)? as u32,
            offset: get_varint(b)? as u32,
            len: get_varint(b)? as u32,
        };
        if e.frame as usize >= frames.len() {
            return None;
        }
        samples += e.count as u64;
        entries.push(e);
    }
    Some(BlockMeta {
        path: path.to_path_buf(),
        mint,
        maxt,
        cut_end,
        frames,
        entries,
        bytes,
        samples,
    })
}

/// Reads and decompresses frame `i` of a block.
pub fn read_frame(meta: &BlockMeta, file: &mut File, i: usize) -> io::Result<Vec<u8>> {
    let (off, len) = meta.frames[i];
    if len > 256 << 20 {
        return Err(corrupt(&meta.path, "frame too large"));
    }
    file.seek(SeekFrom::Start(off))?;
    let mut z = vec![0u8; len as usize];
    file.read_exact(&mut z)?;
    let cap = zstd::zstd_safe::get_frame_content_size(&z)
        .ok()
        .flatten()
        .unwrap_or(4 * FRAME_BYTES as u64)
        .min(64 << 20) as usize;
    zstd::bulk::decompress(&z, cap).map_err(|e| corrupt(&meta.path, &format!("frame {i}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(samples: &[(i64, f64)]) -> usize {
        let mut b = vec![];
        encode_series(&mut b, samples);
        let back = decode_series(&b).unwrap();
        let a: Vec<(i64, u64)> = back.iter().map(|(t, v)| (*t, v.to_bits())).collect();
        let w: Vec<(i64, u64)> = samples.iter().map(|(t, v)| (*t, v.to_bits())).collect();
        assert_eq!(a, w);
        for cut in 0..b.len() {
            let _ = decode_series(&b[..cut]);
        }
        b.len()
    }

    #[test]
    fn encodings_round_trip_and_pick_the_smallest() {
        let t = |i: i64| 1_700_000_000_000 + i * 15_000;
        let counter: Vec<(i64, f64)> = (0..480).map(|i| (t(i), (i * 3 + i % 5) as f64)).collect();
        assert!(rt(&counter) < 480 * 3, "{}", rt(&counter));
        let constant: Vec<(i64, f64)> = (0..480).map(|i| (t(i), 1.0)).collect();
        assert!(rt(&constant) < 480 * 2 + 16);
        let decimals: Vec<(i64, f64)> = (0..100).map(|i| (t(i), i as f64 * 0.25)).collect();
        rt(&decimals);
        let floats: Vec<(i64, f64)> = (0..100).map(|i| (t(i), (i as f64).sqrt())).collect();
        rt(&floats);
        let odd = vec![
            (-5, f64::NAN),
            (0, f64::from_bits(super::super::STALE_NAN_BITS)),
            (7, f64::INFINITY),
            (8, -0.0),
            (1 << 50, 1e300),
        ];
        rt(&odd);
        rt(&[(42, 0.1)]);
        rt(&[(1, 9_007_199_254_740_993.0), (2, 3.0)]);
    }

    #[test]
    fn blocks_write_open_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut series = vec![];
        for s in 0..3000 {
            let labels = Labels(vec![
                ("__name__".into(), "m".into()),
                ("i".into(), format!("{s:05}")),
            ]);
            let samples: Vec<(i64, f64)> =
                (0..240).map(|i| (i * 15_000 + s, (i * s) as f64)).collect();
            series.push((labels, samples));
        }
        let meta = write(dir.path(), 1, 4_000_000, series.clone().into_iter()).unwrap();
        assert!(meta.frames.len() > 1);
        let bytes_per_sample = meta.bytes as f64 / (3000.0 * 240.0);
        assert!(bytes_per_sample < 1.0, "{bytes_per_sample}");
        let back = open(&meta.path).unwrap();
        assert_eq!(back.entries.len(), 3000);
        assert_eq!(back.cut_end, 4_000_000);
        let mut f = File::open(&back.path).unwrap();
        let e = &back.entries[2999];
        let frame = read_frame(&back, &mut f, e.frame as usize).unwrap();
        let s = decode_series(&frame[e.offset as usize..(e.offset + e.len) as usize]).unwrap();
        assert_eq!(s, series[2999].1);
        // A torn or foreign file is refused, never a panic.
        let data = std::fs::read(&back.path).unwrap();
        let bad = dir.path().join("bad.blk");
        for cut in [0, 7, 100, data.len() - 1] {
            std::fs::write(&bad, &data[..cut]).unwrap();
            assert!(open(&bad).is_err());
        }
    }
}
