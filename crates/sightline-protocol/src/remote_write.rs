//! Prometheus remote write 1.0: a snappy-compressed (block format) protobuf
//! `WriteRequest` of series with their samples, decoded without I/O.

use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct MetricMetadata {
    /// 0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gaugehistogram, 5 summary, 6 info, 7 stateset.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    #[prost(string, tag = "4")]
    pub help: String,
    #[prost(string, tag = "5")]
    pub unit: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RemoteWriteError {
    #[error("body is not snappy-compressed (block format): {0}")]
    Snappy(String),
    #[error("snappy body would decompress to {0} bytes, over the limit of {1}")]
    TooLarge(usize, usize),
    #[error("body is not a remote-write WriteRequest protobuf: {0}")]
    Protobuf(String),
}

/// Decompresses and decodes a remote-write body; the decompressed size is
/// checked against `max_decompressed` before any allocation.
pub fn decode(body: &[u8], max_decompressed: usize) -> Result<WriteRequest, RemoteWriteError> {
    let len =
        snap::raw::decompress_len(body).map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
    if len > max_decompressed {
        return Err(RemoteWriteError::TooLarge(len, max_decompressed));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
    WriteRequest::decode(raw.as_slice()).map_err(|e| RemoteWriteError::Protobuf(e.to_string()))
}

/// Encodes a request as a sender does (for tests and tools).
pub fn encode(req: &WriteRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .expect("snappy encodes any input")
}

/// Metadata type names as the Prometheus API shows them.
pub fn metadata_type(t: i32) -> &'static str {
    match t {
        1 => "counter",
        2 => "gauge",
        3 => "histogram",
        4 => "gaugehistogram",
        5 => "summary",
        6 => "info",
        7 => "stateset",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> WriteRequest {
        WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: "up".into(),
                    },
                    Label {
                        name: "job".into(),
                        value: "api".into(),
                    },
                ],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: 1_700_000_000_000,
                }],
            }],
            metadata: vec![],
        }
    }

    #[test]
    fn round_trip_and_hostile_bodies() {
        let body = encode(&req());
        assert_eq!(decode(&body, 1 << 20).unwrap(), req());
        // Truncated at every byte: an error, never a panic.
        for cut in 0..body.len() {
            assert!(decode(&body[..cut], 1 << 20).is_err() || cut == body.len());
        }
        assert!(matches!(decode(b"not snappy at all", 1 << 20), Err(_)));
        // A snappy header claiming 4 GiB is refused before allocating.
        let bomb = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        assert!(matches!(
            decode(&bomb, 1 << 20),
            Err(RemoteWriteError::TooLarge(_, _)) | Err(RemoteWriteError::Snappy(_))
        ));
        // Valid snappy, invalid protobuf.
        let junk = snap::raw::Encoder::new()
            .compress_vec(b"\xff\xff\xff")
            .unwrap();
        assert!(matches!(
            decode(&junk, 1 << 20),
            Err(RemoteWriteError::Protobuf(_))
        ));
    }
}
