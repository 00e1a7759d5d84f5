//! Gorilla-style sample chunks for the metrics head: delta-of-delta
//! timestamps and XOR-compressed float values in one bit stream.
//!
//! ```text
//! chunk   = first_t:i64 (64 bits) first_v:f64 (64 bits) sample*
//! sample  = dod(t) xor(v)
//! dod     = '0'                      Δ² = 0
//!         | '10'   14-bit Δ²         |Δ²| < 2^13
//!         | '110'  17-bit Δ²
//!         | '1110' 20-bit Δ²
//!         | '1111' 64-bit Δ²
//! xor     = '0'                      same value
//!         | '10'  meaningful bits    inside the previous leading/trailing window
//!         | '11'  5-bit leading, 6-bit length, meaningful bits
//! ```
//! The sample count is kept beside the bytes, so the stream needs no end
//! marker. Appending is O(1); reading decodes from the start.

/// Samples per head chunk before a new one is cut (as Prometheus).
pub const CHUNK_SAMPLES: u16 = 120;

#[derive(Debug, Default, Clone)]
struct BitWriter {
    bytes: Vec<u8>,
    /// Bits used in the last byte (0 = last byte full or no bytes).
    used: u8,
}

impl BitWriter {
    fn write_bit(&mut self, bit: bool) {
        if self.used == 0 {
            self.bytes.push(0);
        }
        if bit {
            let last = self.bytes.len() - 1;
            self.bytes[last] |= 0x80 >> self.used;
        }
        self.used = (self.used + 1) & 7;
    }

    fn write_bits(&mut self, value: u64, n: u8) {
        let mut left = n;
        while left > 0 {
            if self.used == 0 {
                self.bytes.push(0);
            }
            let free = 8 - self.used;
            let take = free.min(left);
            let shift = left - take;
            let chunk = ((value >> shift) & ((1u64 << take) - 1)) as u8;
            let last = self.bytes.len() - 1;
            self.bytes[last] |= chunk << (free - take);
            self.used = (self.used + take) & 7;
            left -= take;
        }
    }
}

#[derive(Debug, Clone)]
struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn read_bit(&mut self) -> Option<bool> {
        let byte = *self.bytes.get(self.pos >> 3)?;
        let bit = byte & (0x80 >> (self.pos & 7)) != 0;
        self.pos += 1;
        Some(bit)
    }

    fn read_bits(&mut self, n: u8) -> Option<u64> {
        let mut out = 0u64;
        let mut left = n;
        while left > 0 {
            let byte = *self.bytes.get(self.pos >> 3)?;
            let off = (self.pos & 7) as u8;
            let avail = 8 - off;
            let take = avail.min(left);
            let bits = (byte >> (avail - take)) & (((1u16 << take) - 1) as u8);
            out = (out << take) | bits as u64;
            self.pos += take as usize;
            left -= take;
        }
        Some(out)
    }
}

/// An append-only chunk of samples.
#[derive(Debug, Clone, Default)]
pub struct Chunk {
    bits: BitWriter,
    count: u16,
    first_t: i64,
    last_t: i64,
    last_v: u64,
    last_delta: i64,
    leading: u8,
    trailing: u8,
}

fn sign_extend(v: u64, bits: u8) -> i64 {
    let shift = 64 - bits as u32;
    ((v << shift) as i64) >> shift
}

impl Chunk {
    pub fn new() -> Chunk {
        Chunk {
            leading: 0xff,
            ..Chunk::default()
        }
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn min_time(&self) -> i64 {
        self.first_t
    }

    pub fn max_time(&self) -> i64 {
        self.last_t
    }

    /// Bytes held (for memory accounting).
    pub fn byte_len(&self) -> usize {
        self.bits.bytes.capacity()
    }

    /// Frees spare capacity once the chunk is closed.
    pub fn shrink(&mut self) {
        self.bits.bytes.shrink_to_fit();
    }

    /// Appends a sample; `t` must not be older than the last one.
    pub fn push(&mut self, t: i64, v: f64) {
        let vb = v.to_bits();
        match self.count {
            0 => {
                self.bits.write_bits(t as u64, 64);
                self.bits.write_bits(vb, 64);
                self.first_t = t;
            }
            _ => {
                let delta = t.wrapping_sub(self.last_t);
                let dod = if self.count == 1 {
                    delta
                } else {
                    delta.wrapping_sub(self.last_delta)
                };
                self.write_dod(dod);
                self.write_xor(vb);
                self.last_delta = delta;
            }
        }
        self.last_t = t;
        self.last_v = vb;
        self.count += 1;
    }

    fn write_dod(&mut self, dod: i64) {
        let w = &mut self.bits;
        if dod == 0 {
            w.write_bit(false);
        } else if (-(1 << 13)..(1 << 13)).contains(&dod) {
            w.write_bits(0b10, 2);
            w.write_bits(dod as u64 & ((1 << 14) - 1), 14);
        } else if (-(1 << 16)..(1 << 16)).contains(&dod) {
            w.write_bits(0b110, 3);
            w.write_bits(dod as u64 & ((1 << 17) - 1), 17);
        } else if (-(1 << 19)..(1 << 19)).contains(&dod) {
            w.write_bits(0b1110, 4);
            w.write_bits(dod as u64 & ((1 << 20) - 1), 20);
        } else {
            w.write_bits(0b1111, 4);
            w.write_bits(dod as u64, 64);
        }
    }

    fn write_xor(&mut self, vb: u64) {
        let x = vb ^ self.last_v;
        let w = &mut self.bits;
        if x == 0 {
            w.write_bit(false);
            return;
        }
        w.write_bit(true);
        let mut leading = x.leading_zeros() as u8;
        let trailing = x.trailing_zeros() as u8;
        if leading >= 32 {
            leading = 31; // fits in 5 bits
        }
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            w.write_bit(false);
            let sig = 64 - self.leading - self.trailing;
            w.write_bits(x >> self.trailing, sig);
        } else {
            self.leading = leading;
            self.trailing = trailing;
            w.write_bit(true);
            w.write_bits(leading as u64, 5);
            let sig = 64 - leading - trailing;
            // 64 significant bits are written as 0 (6 bits cannot hold 64).
            w.write_bits((sig & 63) as u64, 6);
            w.write_bits(x >> trailing, sig);
        }
    }

    /// Decodes every sample in order.
    pub fn iter(&self) -> ChunkIter<'_> {
        ChunkIter::new(&self.bits.bytes, self.count)
    }

    /// The encoded stream (for persistence) and its sample count.
    pub fn bytes(&self) -> &[u8] {
        &self.bits.bytes
    }
}

/// Decodes a chunk's bit stream.
#[derive(Debug, Clone)]
pub struct ChunkIter<'a> {
    r: BitReader<'a>,
    left: u16,
    first: bool,
    n: u16,
    t: i64,
    v: u64,
    delta: i64,
    leading: u8,
    trailing: u8,
}

impl<'a> ChunkIter<'a> {
    pub fn new(bytes: &'a [u8], count: u16) -> ChunkIter<'a> {
        ChunkIter {
            r: BitReader { bytes, pos: 0 },
            left: count,
            first: true,
            n: 0,
            t: 0,
            v: 0,
            delta: 0,
            leading: 0,
            trailing: 0,
        }
    }

    fn next_sample(&mut self) -> Option<(i64, f64)> {
        if self.first {
            self.first = false;
            self.t = self.r.read_bits(64)? as i64;
            self.v = self.r.read_bits(64)?;
            self.n = 1;
            return Some((self.t, f64::from_bits(self.v)));
        }
        let dod = if !self.r.read_bit()? {
            0
        } else if !self.r.read_bit()? {
            sign_extend(self.r.read_bits(14)?, 14)
        } else if !self.r.read_bit()? {
            sign_extend(self.r.read_bits(17)?, 17)
        } else if !self.r.read_bit()? {
            sign_extend(self.r.read_bits(20)?, 20)
        } else {
            self.r.read_bits(64)? as i64
        };
        self.delta = if self.n == 1 {
            dod
        } else {
            self.delta.wrapping_add(dod)
        };
        self.t = self.t.wrapping_add(self.delta);
        if self.r.read_bit()? {
            if self.r.read_bit()? {
                self.leading = self.r.read_bits(5)? as u8;
                let mut sig = self.r.read_bits(6)? as u8;
                if sig == 0 {
                    sig = 64;
                }
                self.trailing = 64u8.checked_sub(self.leading + sig)?;
            }
            let sig = 64 - self.leading - self.trailing;
            let bits = self.r.read_bits(sig)?;
            self.v ^= bits << self.trailing;
        }
        self.n += 1;
        Some((self.t, f64::from_bits(self.v)))
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        match self.next_sample() {
            Some(s) => Some(s),
            None => {
                // Corrupt stream: stop rather than invent samples.
                self.left = 0;
                None
            }
        }
    }
}

/// XOR-compresses a run of float bit patterns (the value half of a chunk,
/// for persisted blocks whose values are not integers).
pub fn encode_xor(values: &[u64]) -> Vec<u8> {
    let mut c = Chunk::new();
    let Some((&first, rest)) = values.split_first() else {
        return Vec::new();
    };
    c.bits.write_bits(first, 64);
    c.last_v = first;
    for &v in rest {
        c.write_xor(v);
        c.last_v = v;
    }
    c.bits.bytes
}

/// Decodes `n` values written by [`encode_xor`]; `None` when the stream is short.
pub fn decode_xor(bytes: &[u8], n: usize) -> Option<Vec<u64>> {
    let mut out = Vec::with_capacity(n.min(bytes.len() * 8 + 1));
    if n == 0 {
        return Some(out);
    }
    let mut r = BitReader { bytes, pos: 0 };
    let mut v = r.read_bits(64)?;
    out.push(v);
    let (mut leading, mut trailing) = (0u8, 0u8);
    for _ in 1..n {
        if r.read_bit()? {
            if r.read_bit()? {
                leading = r.read_bits(5)? as u8;
                let mut sig = r.read_bits(6)? as u8;
                if sig == 0 {
                    sig = 64;
                }
                trailing = 64u8.checked_sub(leading + sig)?;
            }
            let sig = 64 - leading - trailing;
            v ^= r.read_bits(sig)? << trailing;
        }
        out.push(v);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(samples: &[(i64, f64)]) -> usize {
        let mut c = Chunk::new();
        for &(t, v) in samples {
            c.push(t, v);
        }
        let back: Vec<(i64, u64)> = c.iter().map(|(t, v)| (t, v.to_bits())).collect();
        let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(back, want);
        c.bytes().len()
    }

    #[test]
    fn regular_scrapes_compress_to_a_few_bits_per_sample() {
        let s: Vec<(i64, f64)> = (0..120)
            .map(|i| (1_700_000_000_000 + i * 15_000, 42.0))
            .collect();
        let n = round_trip(&s);
        assert!(n < 16 + 120 * 2 / 8 + 4, "{n} bytes");
        let counter: Vec<(i64, f64)> = (0..120)
            .map(|i| (1_700_000_000_000 + i * 15_000 + (i % 3), (i * i) as f64))
            .collect();
        round_trip(&counter);
    }

    #[test]
    fn every_kind_of_value_and_gap_round_trips() {
        let mut s = vec![];
        let specials = [
            0.0,
            -0.0,
            f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0002),
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::MAX,
            1e-300,
            0.1,
            -12345.678,
            u64::MAX as f64,
        ];
        let mut t = -5_000i64;
        for (i, v) in specials.iter().cycle().take(120).enumerate() {
            t += match i % 5 {
                0 => 1,
                1 => 15_000,
                2 => 70_000,
                3 => 1 << 40,
                _ => 0,
            };
            s.push((t, *v));
        }
        round_trip(&s);
    }

    #[test]
    fn random_streams_round_trip() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let mut t = next() as i64 >> 20;
            let mut s = vec![];
            for _ in 0..(next() % 120 + 1) {
                t = t.wrapping_add((next() % 100_000) as i64);
                let v = match next() % 4 {
                    0 => f64::from_bits(next()),
                    1 => (next() % 1000) as f64,
                    2 => s.last().map(|p: &(i64, f64)| p.1).unwrap_or(1.0),
                    _ => (next() % 1_000_000) as f64 / 7.0,
                };
                s.push((t, v));
            }
            round_trip(&s);
        }
    }

    #[test]
    fn value_streams_round_trip() {
        let v: Vec<u64> = [1.5, 1.5, 2.25, -3.0, f64::NAN, 0.1, 0.1, 1e300]
            .iter()
            .map(|x: &f64| x.to_bits())
            .collect();
        let b = encode_xor(&v);
        assert_eq!(decode_xor(&b, v.len()).unwrap(), v);
        assert!(decode_xor(&b[..b.len() / 2], v.len()).is_none());
        assert_eq!(decode_xor(&[], 0).unwrap(), Vec::<u64>::new());
    }

    #[test]
    fn corrupt_bytes_never_panic() {
        let mut c = Chunk::new();
        for i in 0..50 {
            c.push(i * 1000, i as f64 * 0.5);
        }
        let bytes = c.bytes().to_vec();
        for cut in 0..bytes.len() {
            let _ = ChunkIter::new(&bytes[..cut], 50).count();
        }
        let mut flipped = bytes.clone();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xa5;
            let _ = ChunkIter::new(&flipped, 50).count();
        }
    }
}
