//! A HAPT file writer for the tests, written from data/README.md (not from the decoder), so
//! the tests can build small files, valid or deliberately broken, and sign them.

#![allow(dead_code)] // each test binary uses part of it

use sha2::{Digest, Sha256};

/// One recording as the writer takes it: integer codes per sample, labels per sample.
#[derive(Clone, Debug)]
pub struct Rec {
    pub subject: u16,
    pub experiment: u16,
    pub codes: Vec<[i16; 6]>,
    pub labels: Vec<i8>,
}

/// The header's fields, each settable so a test can make them disagree.
#[derive(Clone, Debug)]
pub struct Header {
    pub magic: [u8; 8],
    pub version: u16,
    pub channels: u16,
    pub sample_rate_hz: u16,
    pub recordings: u16,
    pub samples: u32,
    pub label_runs: u32,
    pub steps: [f32; 6],
    pub payload_len: u32,
    pub body_len: u32,
}

pub const STEPS: [f32; 6] = [0.25, 0.5, 1.0, 0.125, 2.0, 0.0625];

/// (run labels, run lengths) of a label sequence.
pub fn runs(labels: &[i8]) -> Vec<(i8, u32)> {
    let mut out: Vec<(i8, u32)> = Vec::new();
    for &l in labels {
        match out.last_mut() {
            Some((label, len)) if *label == l => *len += 1,
            _ => out.push((l, 1)),
        }
    }
    out
}

/// The decoded payload of `recs` (table, run labels, run lengths, low plane, high plane).
pub fn payload(recs: &[Rec]) -> Vec<u8> {
    let mut table = Vec::new();
    let (mut run_labels, mut run_lengths) = (Vec::new(), Vec::new());
    let (mut low, mut high) = (Vec::new(), Vec::new());
    for r in recs {
        let rs = runs(&r.labels);
        table.extend_from_slice(&r.subject.to_le_bytes());
        table.extend_from_slice(&r.experiment.to_le_bytes());
        table.extend_from_slice(&(r.labels.len() as u32).to_le_bytes());
        table.extend_from_slice(&(rs.len() as u32).to_le_bytes());
        for (label, len) in rs {
            run_labels.push(label as u8);
            run_lengths.extend_from_slice(&len.to_le_bytes());
        }
        for c in 0..6 {
            let mut previous: i16 = 0;
            for sample in &r.codes {
                let delta = sample[c].wrapping_sub(previous);
                previous = sample[c];
                let zigzag = ((delta << 1) ^ (delta >> 15)) as u16;
                low.push(zigzag as u8);
                high.push((zigzag >> 8) as u8);
            }
        }
    }
    [table, run_labels, run_lengths, low, high].concat()
}

/// The header a valid file of `recs` with `payload` has (body length filled in by `file`).
pub fn header_for(recs: &[Rec], payload: &[u8]) -> Header {
    Header {
        magic: *b"HAPTBIN\0",
        version: 1,
        channels: 6,
        sample_rate_hz: 50,
        recordings: recs.len() as u16,
        samples: recs.iter().map(|r| r.labels.len() as u32).sum(),
        label_runs: recs.iter().map(|r| runs(&r.labels).len() as u32).sum(),
        steps: STEPS,
        payload_len: payload.len() as u32,
        body_len: 0,
    }
}

/// The 56 bytes of the header's fields.
pub fn fields(h: &Header) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&h.magic);
    for v in [h.version, h.channels, h.sample_rate_hz, h.recordings] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&h.samples.to_le_bytes());
    out.extend_from_slice(&h.label_runs.to_le_bytes());
    for s in h.steps {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out.extend_from_slice(&h.payload_len.to_le_bytes());
    out.extend_from_slice(&h.body_len.to_le_bytes());
    assert_eq!(out.len(), 56);
    out
}

/// A signed file of `header` (its body_len set to the body's) and the zlib `body`.
pub fn file_with_body(mut header: Header, body: &[u8]) -> Vec<u8> {
    header.body_len = body.len() as u32;
    let mut out = fields(&header);
    out.extend_from_slice(&[0; 32]);
    out.extend_from_slice(body);
    resign(&mut out);
    out
}

/// A signed file of `header` and `payload`, deflated.
pub fn file(header: Header, payload: &[u8]) -> Vec<u8> {
    file_with_body(
        header,
        &miniz_oxide::deflate::compress_to_vec_zlib(payload, 6),
    )
}

/// A valid file of `recs`.
pub fn encode(recs: &[Rec]) -> Vec<u8> {
    let p = payload(recs);
    file(header_for(recs, &p), &p)
}

/// Rewrites the sha256 (bytes 56..88) for the file's current fields and body.
pub fn resign(bytes: &mut [u8]) {
    let hash = Sha256::new()
        .chain_update(&bytes[..56])
        .chain_update(&bytes[88..])
        .finalize();
    bytes[56..88].copy_from_slice(&hash);
}

/// Three small recordings of two subjects (one a test subject), with codes that span the
/// int16 range and wrap their deltas, and labels with activities, transitions and -1.
pub fn sample_recordings() -> Vec<Rec> {
    let codes = |n: usize, seed: i32| -> Vec<[i16; 6]> {
        (0..n)
            .map(|t| {
                let t = t as i32;
                [
                    (t * 7 + seed) as i16,
                    (-t * 13) as i16,
                    if t % 2 == 0 { i16::MAX } else { i16::MIN },
                    ((t * 5000) % 65536 - 32768) as i16,
                    0,
                    (t * t % 301 - 150) as i16,
                ]
            })
            .collect()
    };
    let labels = |n: usize, pattern: &[(i8, usize)]| -> Vec<i8> {
        let mut out: Vec<i8> = pattern
            .iter()
            .flat_map(|&(l, k)| std::iter::repeat_n(l, k))
            .collect();
        out.resize(n, -1);
        out
    };
    vec![
        Rec {
            subject: 1,
            experiment: 1,
            codes: codes(40, 3),
            labels: labels(40, &[(-1, 3), (5, 20), (7, 4), (4, 13)]),
        },
        Rec {
            subject: 1,
            experiment: 2,
            codes: codes(9, -100),
            labels: labels(9, &[(1, 9)]),
        },
        Rec {
            subject: 2,
            experiment: 3,
            codes: codes(25, 1000),
            labels: labels(25, &[(2, 10), (12, 2), (3, 5)]),
        },
    ]
}
