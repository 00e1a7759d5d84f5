//! Binary encoding of log-record batches inside WAL frames (the span store's
//! codec in `spans.rs` uses the same primitives): little-endian fixed
//! ints, varint-length strings, optional strings as `len+1` (0 = absent).
//! Decoding validates every length against the remaining bytes.

use sightline_pipeline::{Level, LogRecord};

/// Frame payload kind byte: one per signal, so later signals share the WAL.
pub const KIND_LOGS: u8 = 1;
pub const KIND_SPANS: u8 = 2;

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

pub(crate) fn put_opt(out: &mut Vec<u8>, s: &Option<String>) {
    match s {
        None => put_varint(out, 0),
        Some(s) => {
            put_varint(out, s.len() as u64 + 1);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// Encodes a batch as one frame payload.
pub fn encode_logs(records: &[LogRecord]) -> Vec<u8> {
    let cap: usize = records.iter().map(|r| r.approx_bytes()).sum::<usize>() + 8;
    let mut out = Vec::with_capacity(cap);
    out.push(KIND_LOGS);
    put_varint(&mut out, records.len() as u64);
    for r in records {
        out.extend_from_slice(&r.timestamp_ns.to_le_bytes());
        out.extend_from_slice(&r.received_ns.to_le_bytes());
        out.push(r.level.severity());
        out.push(r.truncated as u8);
        put_str(&mut out, &r.service);
        put_str(&mut out, &r.message);
        put_str(&mut out, &r.attributes);
        for o in [
            &r.environment,
            &r.logger,
            &r.request_id,
            &r.flow_id,
            &r.trace_id,
            &r.span_id,
            &r.user_id,
            &r.exception,
            &r.host,
        ] {
            put_opt(&mut out, o);
        }
    }
    out
}

#[derive(Debug, thiserror::Error)]
#[error("corrupt batch: {0}")]
pub struct DecodeError(pub(crate) &'static str);

pub(crate) struct Reader<'a> {
    pub(crate) b: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.b.len() {
            return Err(DecodeError("length past end"));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.take(1)?.first().unwrap();
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(DecodeError("varint too long"))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn string(&mut self, len: u64) -> Result<String, DecodeError> {
        let bytes = self.take(usize::try_from(len).map_err(|_| DecodeError("length overflow"))?)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError("invalid utf-8"))
    }
    pub(crate) fn str(&mut self) -> Result<String, DecodeError> {
        let n = self.varint()?;
        self.string(n)
    }
    pub(crate) fn opt(&mut self) -> Result<Option<String>, DecodeError> {
        match self.varint()? {
            0 => Ok(None),
            n => self.string(n - 1).map(Some),
        }
    }
}

/// Decodes a frame payload written by [`encode_logs`].
pub fn decode_logs(payload: &[u8]) -> Result<Vec<LogRecord>, DecodeError> {
    let mut r = Reader { b: payload };
    if r.take(1)?[0] != KIND_LOGS {
        return Err(DecodeError("not a log batch"));
    }
    let n = r.varint()?;
    // Each record needs at least 27 bytes: bound the allocation by the payload.
    if n > (payload.len() / 27 + 1) as u64 {
        return Err(DecodeError("record count exceeds payload"));
    }
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let timestamp_ns = r.i64()?;
        let received_ns = r.i64()?;
        let level = Level::from_u8(r.take(1)?[0]).ok_or(DecodeError("bad level"))?;
        let truncated = r.take(1)?[0] != 0;
        let service = r.str()?;
        let message = r.str()?;
        let attributes = r.str()?;
        out.push(LogRecord {
            timestamp_ns,
            received_ns,
            service,
            level,
            message,
            attributes,
            truncated,
            environment: r.opt()?,
            logger: r.opt()?,
            request_id: r.opt()?,
            flow_id: r.opt()?,
            trace_id: r.opt()?,
            span_id: r.opt()?,
            user_id: r.opt()?,
            exception: r.opt()?,
            host: r.opt()?,
        });
    }
    if !r.b.is_empty() {
        return Err(DecodeError("trailing bytes"));
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample(i: usize) -> LogRecord {
        LogRecord {
            timestamp_ns: 1_795_624_986_000_000_000 + i as i64,
            received_ns: 1_795_624_987_000_000_000,
            service: "api".into(),
            environment: Some("prod".into()),
            level: Level::Warning,
            message: format!("event {i}"),
            logger: None,
            request_id: Some(format!("req-{i}")),
            flow_id: None,
            trace_id: None,
            span_id: None,
            user_id: Some("u-7".into()),
            exception: None,
            host: None,
            attributes: r#"{"n":1}"#.into(),
            truncated: i % 2 == 0,
        }
    }

    #[test]
    fn roundtrip() {
        let recs: Vec<_> = (0..10).map(sample).collect();
        assert_eq!(decode_logs(&encode_logs(&recs)).unwrap(), recs);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = encode_logs(&[sample(1), sample(2)]);
        for cut in 0..bytes.len() {
            assert!(decode_logs(&bytes[..cut]).is_err());
        }
        let mut huge = vec![KIND_LOGS];
        put_varint(&mut huge, u64::MAX);
        assert!(decode_logs(&huge).is_err());
    }
}
