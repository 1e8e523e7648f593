//! Little-endian fields and the CRC-32 of the parameter image.

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`) table, built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0_u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
};

/// A running CRC-32; start from `!0`, finish with `!`.
pub(super) fn crc_update(crc: u32, bytes: &[u8]) -> u32 {
    bytes.iter().fold(crc, |crc, byte| {
        let index = (crc ^ u32::from(*byte)) & 0xFF;
        // `index < 256`: the table lookup cannot fail.
        CRC_TABLE.get(index as usize).copied().unwrap_or(0) ^ (crc >> 8)
    })
}

/// The CRC-32 update over `data` and whether every `f32` in it is finite: one pass.
pub(super) fn crc_and_finite(mut crc: u32, data: &[u8]) -> (u32, bool) {
    let mut finite = true;
    let (words, _) = data.as_chunks::<4>();
    for word in words {
        crc = crc_update(crc, word);
        finite &= f32::from_le_bytes(*word).is_finite();
    }
    (crc, finite)
}

/// The running CRC-32 of `head` (header, table and sections) with its checksum field
/// (`at..at + 4`) read as zero.
pub(super) fn crc_of_head(head: &[u8], at: usize) -> u32 {
    let (before, rest) = head.split_at_checked(at).unwrap_or((head, &[]));
    let after = rest.get(4..).unwrap_or_default();
    let crc = crc_update(!0, before);
    crc_update(crc_update(crc, &[0; 4]), after)
}

pub(super) fn u16_at(bytes: &[u8], at: usize) -> u16 {
    match bytes.get(at..).and_then(|b| b.first_chunk::<2>()) {
        Some(b) => u16::from_le_bytes(*b),
        None => 0,
    }
}

pub(super) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    match bytes.get(at..).and_then(|b| b.first_chunk::<4>()) {
        Some(b) => u32::from_le_bytes(*b),
        None => 0,
    }
}

pub(super) fn f32_at(bytes: &[u8], at: usize) -> f32 {
    f32::from_bits(u32_at(bytes, at))
}

pub(super) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    match bytes.get(at..).and_then(|b| b.first_chunk::<8>()) {
        Some(b) => u64::from_le_bytes(*b),
        None => 0,
    }
}

/// Writes `value` at `at` (what fits).
pub(super) fn put(bytes: &mut [u8], at: usize, value: &[u8]) {
    // Element by element: `copy_from_slice` keeps a length-mismatch panic path the
    // optimiser cannot remove where `at + len` may saturate.
    let slot = bytes.get_mut(at..).unwrap_or_default();
    slot.iter_mut().zip(value).for_each(|(d, s)| *d = *s);
}

/// Writes `values` as `f32` little-endian from `at` (what fits).
pub(super) fn put_f32s(bytes: &mut [u8], at: usize, values: impl Iterator<Item = f32>) {
    let slot = bytes.get_mut(at..).unwrap_or_default();
    let (words, _) = slot.as_chunks_mut::<4>();
    for (word, value) in words.iter_mut().zip(values) {
        *word = value.to_le_bytes();
    }
}

/// Whether every byte is zero.
pub(super) fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == 0)
}
