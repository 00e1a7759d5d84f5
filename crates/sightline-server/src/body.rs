//! Reading request bodies within limits: the compressed size is capped while
//! it streams in, and decompression (gzip, deflate, zstd, brotli) stops at the
//! decompressed cap, so a bomb costs at most that much memory.

use crate::error::ApiError;
use axum::body::Body;
use axum::http::{header, HeaderMap};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::io::Read;

/// Over-limit bodies are still read (and discarded) up to this many times the
/// limit, so that the client sees the 413 instead of a reset connection.
pub const DRAIN_FACTOR: usize = 4;

/// Reads the body, refusing more than `max` bytes (413). Memory use is bounded
/// by `max`: an over-limit body is drained without being kept.
pub async fn read_limited(headers: &HeaderMap, body: Body, max: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = |n: u64| {
        ApiError::TooLarge(format!(
            "body of {n} bytes exceeds the limit of {max} bytes"
        ))
    };
    let mut body = body;
    // Sized from Content-Length when it is within the limit: no regrowth copies.
    let mut buf =
        bytes::BytesMut::with_capacity(declared.filter(|n| *n <= max as u64).unwrap_or(0) as usize);
    let mut seen: u64 = 0;
    let drain_cap = (max as u64).saturating_mul(DRAIN_FACTOR as u64);
    let over_declared = declared.is_some_and(|n| n > max as u64);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::BadRequest(format!("cannot read body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len() as u64;
        if over_declared || seen > max as u64 {
            if seen > drain_cap {
                break;
            }
            continue;
        }
        buf.extend_from_slice(&data);
    }
    if over_declared || seen > max as u64 {
        return Err(too_large(declared.unwrap_or(seen).max(seen)));
    }
    Ok(buf.freeze())
}

/// Reads and discards a body we are refusing (up to `DRAIN_FACTOR` × `max`
/// bytes), so that the client reads our answer instead of a reset connection.
pub async fn drain(body: Body, max: usize) {
    let cap = (max as u64).saturating_mul(DRAIN_FACTOR as u64);
    let mut body = body;
    let mut seen: u64 = 0;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            seen += data.len() as u64;
            if seen > cap {
                break;
            }
        }
    }
}

/// The body's `Content-Encoding`, checked against what we decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Deflate,
    Zstd,
    Brotli,
}

pub fn encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let Some(v) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let v = v
        .to_str()
        .map_err(|_| ApiError::UnsupportedMedia("unreadable Content-Encoding".into()))?;
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "identity" | "utf-8" | "utf8" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "deflate" => Ok(Encoding::Deflate),
        "zstd" => Ok(Encoding::Zstd),
        "br" => Ok(Encoding::Brotli),
        other => Err(ApiError::UnsupportedMedia(format!(
            "Content-Encoding {other:?} is not supported (use gzip, deflate, br, zstd or identity)"
        ))),
    }
}

/// Decompresses `body` (blocking; call from a blocking thread for large bodies).
pub fn decode(enc: Encoding, body: Bytes, max: usize) -> Result<Bytes, ApiError> {
    fn read_all(mut r: impl Read, max: usize, what: &str) -> Result<Bytes, ApiError> {
        let mut out = Vec::new();
        let mut limited = (&mut r).take(max as u64 + 1);
        match limited.read_to_end(&mut out) {
            Ok(_) if out.len() > max => Err(ApiError::TooLarge(format!(
                "{what} body decompresses to more than the limit of {max} bytes"
            ))),
            Ok(_) => Ok(Bytes::from(out)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(ApiError::BadRequest(format!("truncated {what} body")))
            }
            Err(e) => Err(ApiError::BadRequest(format!("corrupt {what} body: {e}"))),
        }
    }
    match enc {
        Encoding::Identity => {
            if body.len() > max {
                return Err(ApiError::TooLarge(format!(
                    "body exceeds the limit of {max} bytes"
                )));
            }
            Ok(body)
        }
        Encoding::Gzip => read_all(flate2::read::MultiGzDecoder::new(&body[..]), max, "gzip"),
        Encoding::Deflate => {
            // HTTP "deflate" is zlib-wrapped; some clients send raw deflate.
            if body.len() >= 2
                && (u16::from(body[0]) << 8 | u16::from(body[1])) % 31 == 0
                && body[0] & 0x0f == 8
            {
                read_all(flate2::read::ZlibDecoder::new(&body[..]), max, "deflate")
            } else {
                read_all(flate2::read::DeflateDecoder::new(&body[..]), max, "deflate")
            }
        }
        Encoding::Zstd => {
            let mut d = zstd::stream::read::Decoder::new(&body[..])
                .map_err(|e| ApiError::BadRequest(format!("corrupt zstd body: {e}")))?;
            // Bound the decoder's window (memory) to 128 MiB.
            d.window_log_max(27)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            read_all(d, max, "zstd")
        }
        // Brotli's window is at most 16 MiB (no large-window extension), so
        // the decoder's memory is bounded whatever the input claims.
        Encoding::Brotli => read_all(
            brotli_decompressor::Decompressor::new(&body[..], 64 * 1024),
            max,
            "brotli",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_bomb_stops_at_the_limit() {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            e.write_all(&zeros).unwrap();
        }
        let bomb = e.finish().unwrap();
        assert!(bomb.len() < 200_000);
        let err = decode(Encoding::Gzip, Bytes::from(bomb), 1 << 20).unwrap_err();
        assert!(matches!(err, ApiError::TooLarge(_)), "{err}");
    }

    #[test]
    fn truncated_gzip_is_a_bad_request() {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b"{\"event\":\"x\"}\n".repeat(100).as_slice())
            .unwrap();
        let gz = e.finish().unwrap();
        let err = decode(
            Encoding::Gzip,
            Bytes::copy_from_slice(&gz[..gz.len() / 2]),
            1 << 20,
        )
        .unwrap_err();
        assert!(
            matches!(err, ApiError::BadRequest(ref m) if m.contains("truncated")),
            "{err}"
        );
    }

    #[test]
    fn zstd_roundtrip() {
        let z = zstd::encode_all(&b"hello\n"[..], 3).unwrap();
        assert_eq!(
            &decode(Encoding::Zstd, Bytes::from(z), 100).unwrap()[..],
            b"hello\n"
        );
    }
}
