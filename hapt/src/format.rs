//! Decoding `hapt.bin` (the byte layout is in `data/README.md`).

use sha2::{Digest, Sha256};

use crate::{CHANNELS, Hapt, HaptError, Recording};

/// The 8 bytes a HAPT file starts with.
pub const MAGIC: [u8; 8] = *b"HAPTBIN\0";
/// The format version this crate reads.
pub const VERSION: u16 = 1;
/// Bytes of the header before the sha256.
const FIELDS_LEN: usize = 56;
/// Bytes of the whole header: the fields, then the sha256.
pub const HEADER_LEN: usize = FIELDS_LEN + 32;
/// Bytes of one recording-table entry: subject u16, experiment u16, samples u32, runs u32.
const TABLE_ENTRY_LEN: usize = 12;
/// Bytes of one label run: an i8 label (in one array) and a u32 length (in another).
const RUN_LEN: usize = 5;
/// Bytes of one sample: 6 channels of 2 bytes (low and high byte planes).
const SAMPLE_LEN: usize = 2 * CHANNELS;

/// The fields of the header.
struct Header {
    sample_rate_hz: u16,
    recordings: usize,
    samples: usize,
    label_runs: usize,
    steps: [f32; CHANNELS],
    payload_len: usize,
    body_len: usize,
}

/// `N` bytes of `bytes` at `at`, or `None` past the end.
fn array_at<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    array_at(bytes, at).map(u16::from_le_bytes)
}

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    array_at(bytes, at).and_then(|b| usize::try_from(u32::from_le_bytes(b)).ok())
}

const fn inconsistent(what: &'static str) -> HaptError {
    HaptError::Inconsistent { what }
}

/// Reads and checks the header of `bytes` (magic, version, channels, length); not the checksum.
fn read_header(bytes: &[u8]) -> Result<Header, HaptError> {
    let truncated = HaptError::Truncated {
        needed: HEADER_LEN,
        got: bytes.len(),
    };
    let magic: [u8; 8] = array_at(bytes, 0).ok_or(truncated.clone())?;
    if magic != MAGIC {
        return Err(HaptError::BadMagic { found: magic });
    }
    let fields = bytes.get(..HEADER_LEN).ok_or(truncated)?;
    // The fields lie within the checked HEADER_LEN bytes, so each `?` below is unreachable.
    let field = |at| u16_at(fields, at).ok_or(inconsistent("header"));
    let word = |at| u32_at(fields, at).ok_or(inconsistent("header"));
    let version = field(8)?;
    if version != VERSION {
        return Err(HaptError::UnsupportedVersion { found: version });
    }
    let channels = field(10)?;
    if usize::from(channels) != CHANNELS {
        return Err(HaptError::UnsupportedChannels { found: channels });
    }
    let mut steps = [0.0_f32; CHANNELS];
    for (c, step) in steps.iter_mut().enumerate() {
        let raw = array_at(fields, 24 + 4 * c).ok_or(inconsistent("header"))?;
        *step = f32::from_le_bytes(raw);
    }
    let header = Header {
        sample_rate_hz: field(12)?,
        recordings: usize::from(field(14)?),
        samples: word(16)?,
        label_runs: word(20)?,
        steps,
        payload_len: word(48)?,
        body_len: word(52)?,
    };
    let file_len = HEADER_LEN
        .checked_add(header.body_len)
        .ok_or(inconsistent("body length overflows"))?;
    if bytes.len() < file_len {
        return Err(HaptError::Truncated {
            needed: file_len,
            got: bytes.len(),
        });
    }
    if bytes.len() > file_len {
        return Err(inconsistent("bytes after the body the header declares"));
    }
    Ok(header)
}

/// The payload length the header's counts give, or `None` on overflow.
fn expected_payload_len(header: &Header) -> Option<usize> {
    let table = header.recordings.checked_mul(TABLE_ENTRY_LEN)?;
    let runs = header.label_runs.checked_mul(RUN_LEN)?;
    let signals = header.samples.checked_mul(SAMPLE_LEN)?;
    table.checked_add(runs)?.checked_add(signals)
}

/// A zigzag-coded 16-bit delta back to its signed value: 0, 1, 2, 3, ... → 0, −1, 1, −2, ...
fn unzigzag(z: u16) -> i16 {
    let magnitude = i16::from_le_bytes((z >> 1).to_le_bytes());
    magnitude ^ -i16::from_le_bytes((z & 1).to_le_bytes())
}

/// Decodes one channel of one recording into column `channel` of `signals` (sample-major).
fn decode_channel(low: &[u8], high: &[u8], step: f32, channel: usize, signals: &mut [f32]) {
    let mut code: i16 = 0;
    for ((&lo, &hi), sample) in low.iter().zip(high).zip(signals.chunks_exact_mut(CHANNELS)) {
        code = code.wrapping_add(unzigzag(u16::from_le_bytes([lo, hi])));
        if let Some(value) = sample.get_mut(channel) {
            *value = f32::from(code) * step;
        }
    }
}

/// Decodes a whole HAPT file.
pub(crate) fn decode(bytes: &[u8]) -> Result<Hapt, HaptError> {
    let header = read_header(bytes)?;
    let (fields, rest) = bytes
        .split_at_checked(FIELDS_LEN)
        .ok_or(inconsistent("header"))?;
    let (stored_hash, body) = rest.split_at_checked(32).ok_or(inconsistent("header"))?;
    let hash = Sha256::new()
        .chain_update(fields)
        .chain_update(body)
        .finalize();
    if hash.as_slice() != stored_hash {
        return Err(HaptError::ChecksumMismatch);
    }
    if header.steps.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(inconsistent(
            "a quantisation step is not finite and positive",
        ));
    }
    if expected_payload_len(&header) != Some(header.payload_len) {
        return Err(inconsistent(
            "payload length differs from the header's counts",
        ));
    }
    // One byte of room past the expected length: a stream that inflates to more fails
    // the length check below instead of stopping at the limit.
    let limit = header.payload_len.saturating_add(1);
    let payload =
        miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(body, limit).map_err(|e| {
            HaptError::Decompress {
                reason: inflate_reason(e.status),
            }
        })?;
    if payload.len() != header.payload_len {
        return Err(inconsistent(
            "payload inflates to a length other than the header's",
        ));
    }

    // The sections, whose lengths the payload length check above makes exact.
    let (table, rest) = payload
        .split_at_checked(header.recordings * TABLE_ENTRY_LEN)
        .ok_or(inconsistent("recording table"))?;
    let (run_labels, rest) = rest
        .split_at_checked(header.label_runs)
        .ok_or(inconsistent("label runs"))?;
    let (run_lengths, planes) = rest
        .split_at_checked(4 * header.label_runs)
        .ok_or(inconsistent("label runs"))?;
    let (low_plane, high_plane) = planes
        .split_at_checked(CHANNELS * header.samples)
        .ok_or(inconsistent("signal planes"))?;

    if run_labels
        .iter()
        .any(|&l| !matches!(i8::from_le_bytes([l]), -1 | 1..=12))
    {
        return Err(inconsistent("a label outside -1, 1..=12"));
    }
    let mut runs = run_labels
        .iter()
        .zip(run_lengths.chunks_exact(4))
        .map(|(&label, len)| {
            let len = u32_at(len, 0).unwrap_or(0);
            (i8::from_le_bytes([label]), len)
        });

    let mut recordings = Vec::with_capacity(header.recordings);
    let mut sample_at = 0_usize;
    for entry in table.chunks_exact(TABLE_ENTRY_LEN) {
        let subject = u16_at(entry, 0).ok_or(inconsistent("recording table"))?;
        let experiment = u16_at(entry, 2).ok_or(inconsistent("recording table"))?;
        let samples = u32_at(entry, 4).ok_or(inconsistent("recording table"))?;
        let n_runs = u32_at(entry, 8).ok_or(inconsistent("recording table"))?;

        // Bounds every allocation below by the header's sample count, which the inflated
        // payload's length vouches for.
        let end = sample_at
            .checked_add(samples)
            .filter(|&end| end <= header.samples)
            .ok_or(inconsistent("recordings hold more samples than the header"))?;

        let mut labels = Vec::with_capacity(samples);
        for _ in 0..n_runs {
            let (label, len) = runs
                .next()
                .ok_or(inconsistent("more label runs than stored"))?;
            if len == 0 || len > samples.saturating_sub(labels.len()) {
                return Err(inconsistent(
                    "label runs do not cover their recording exactly",
                ));
            }
            labels.resize(labels.len() + len, label);
        }
        if labels.len() != samples {
            return Err(inconsistent(
                "label runs do not cover their recording exactly",
            ));
        }

        let mut signals = vec![0.0_f32; CHANNELS * samples];
        for (channel, &step) in header.steps.iter().enumerate() {
            // end <= header.samples and CHANNELS * header.samples did not overflow above,
            // so neither does this.
            let from = CHANNELS * sample_at + channel * samples;
            let low = low_plane.get(from..from + samples);
            let high = high_plane.get(from..from + samples);
            let (Some(low), Some(high)) = (low, high) else {
                return Err(inconsistent("signal planes"));
            };
            decode_channel(low, high, step, channel, &mut signals);
        }
        sample_at = end;
        recordings.push(Recording {
            subject,
            experiment,
            signals,
            labels,
        });
    }
    if sample_at != header.samples {
        return Err(inconsistent(
            "recordings hold fewer samples than the header",
        ));
    }
    if runs.next().is_some() {
        return Err(inconsistent(
            "label runs left over after the last recording",
        ));
    }
    recordings.sort_by_key(|r| r.experiment);
    Ok(Hapt {
        sample_rate_hz: header.sample_rate_hz,
        steps: header.steps,
        recordings,
    })
}

fn inflate_reason(status: miniz_oxide::inflate::TINFLStatus) -> &'static str {
    use miniz_oxide::inflate::TINFLStatus;
    match status {
        TINFLStatus::FailedCannotMakeProgress | TINFLStatus::NeedsMoreInput => {
            "the zlib stream ends early"
        }
        TINFLStatus::Adler32Mismatch => "Adler-32 mismatch",
        TINFLStatus::HasMoreOutput => "more output than the header declares",
        _ => "invalid zlib stream",
    }
}

#[cfg(test)]
mod tests {
    use super::unzigzag;

    #[test]
    fn unzigzag_inverts_the_writers_zigzag() {
        for delta in i16::MIN..=i16::MAX {
            let zigzag = ((delta << 1) ^ (delta >> 15)) as u16;
            assert_eq!(unzigzag(zigzag), delta);
        }
    }
}
