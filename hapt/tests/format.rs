//! The decoder against small files written from data/README.md: values, and every way a
//! file can be broken (each gives its error, none panics).

mod common;

use common::{Rec, STEPS, encode, fields, file, file_with_body, header_for, payload, resign};
use simsiam_hapt::{HEADER_LEN, Hapt, HaptError, Split, WindowSpec};

fn inconsistent(result: Result<Hapt, HaptError>) -> bool {
    matches!(result, Err(HaptError::Inconsistent { .. }))
}

#[test]
fn decodes_codes_times_steps_exactly() {
    let recs = common::sample_recordings();
    let hapt = Hapt::from_bytes(&encode(&recs)).expect("valid file");
    assert_eq!(hapt.recordings().len(), recs.len());
    assert_eq!(hapt.samples(), 74);
    assert_eq!(hapt.sample_rate_hz(), 50);
    assert_eq!(hapt.steps(), STEPS);
    for (decoded, rec) in hapt.recordings().iter().zip(&recs) {
        assert_eq!(decoded.subject(), rec.subject);
        assert_eq!(decoded.experiment(), rec.experiment);
        assert_eq!(decoded.labels(), &rec.labels[..]);
        assert_eq!(decoded.len(), rec.codes.len());
        let expected: Vec<f32> = rec
            .codes
            .iter()
            .flat_map(|s| (0..6).map(move |c| f32::from(s[c]) * STEPS[c]))
            .collect();
        assert_eq!(
            decoded.signals(),
            &expected[..],
            "experiment {}",
            rec.experiment
        );
    }
}

#[test]
fn recordings_come_out_by_experiment() {
    let mut recs = common::sample_recordings();
    recs.reverse();
    let hapt = Hapt::from_bytes(&encode(&recs)).expect("valid file");
    let order: Vec<u16> = hapt.recordings().iter().map(|r| r.experiment()).collect();
    assert_eq!(order, [1, 2, 3]);
}

#[test]
fn an_empty_data_set_is_valid() {
    let hapt = Hapt::from_bytes(&encode(&[])).expect("valid file");
    assert_eq!(hapt.samples(), 0);
    let windows = hapt
        .windows(WindowSpec::RECIPE, Split::Train)
        .expect("valid spec");
    assert!(windows.is_empty());
    assert_eq!(windows.channel_stats(), None);
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = encode(&common::sample_recordings());
    for len in 0..bytes.len() {
        let needed = if len < HEADER_LEN {
            HEADER_LEN
        } else {
            bytes.len()
        };
        assert_eq!(
            Hapt::from_bytes(&bytes[..len]),
            Err(HaptError::Truncated { needed, got: len }),
            "{len} of {} bytes",
            bytes.len()
        );
    }
}

#[test]
fn a_trailing_byte_is_an_error() {
    let mut bytes = encode(&common::sample_recordings());
    bytes.push(0);
    assert!(inconsistent(Hapt::from_bytes(&bytes)));
}

#[test]
fn every_flipped_byte_is_an_error() {
    let bytes = encode(&common::sample_recordings());
    for at in 0..bytes.len() {
        for mask in [0x01_u8, 0x80, 0xff] {
            let mut broken = bytes.clone();
            broken[at] ^= mask;
            let result = Hapt::from_bytes(&broken);
            match at {
                0..8 => assert!(matches!(result, Err(HaptError::BadMagic { .. })), "{at}"),
                8..10 => assert!(
                    matches!(result, Err(HaptError::UnsupportedVersion { .. })),
                    "{at}"
                ),
                10..12 => assert!(
                    matches!(result, Err(HaptError::UnsupportedChannels { .. })),
                    "{at}"
                ),
                // body_len: the file is then too short or too long for it
                52..56 => assert!(
                    matches!(
                        result,
                        Err(HaptError::Truncated { .. } | HaptError::Inconsistent { .. })
                    ),
                    "{at}: {result:?}"
                ),
                _ => assert_eq!(result, Err(HaptError::ChecksumMismatch), "{at}"),
            }
        }
    }
}

#[test]
fn wrong_magic_and_version() {
    let recs = common::sample_recordings();
    let p = payload(&recs);
    let mut header = header_for(&recs, &p);
    header.magic = *b"HAPTBIN2";
    assert_eq!(
        Hapt::from_bytes(&file(header.clone(), &p)),
        Err(HaptError::BadMagic {
            found: *b"HAPTBIN2"
        })
    );
    header.magic = *b"HAPTBIN\0";
    header.version = 2;
    assert_eq!(
        Hapt::from_bytes(&file(header.clone(), &p)),
        Err(HaptError::UnsupportedVersion { found: 2 })
    );
    header.version = 1;
    header.channels = 3;
    assert_eq!(
        Hapt::from_bytes(&file(header, &p)),
        Err(HaptError::UnsupportedChannels { found: 3 })
    );
    // A short file with the wrong magic says so, not that it is short.
    assert!(matches!(
        Hapt::from_bytes(b"PK\x03\x04\0\0\0\0"),
        Err(HaptError::BadMagic { .. })
    ));
}

/// Signed files whose header counts disagree with the payload.
#[test]
fn signed_but_inconsistent_counts_are_errors() {
    let recs = common::sample_recordings();
    let p = payload(&recs);
    let good = header_for(&recs, &p);
    type Change = fn(&mut common::Header);
    let cases: [(&str, Change); 6] = [
        ("payload_len + 1", |h| h.payload_len += 1),
        ("samples + 1", |h| h.samples += 1),
        ("label_runs + 1", |h| h.label_runs += 1),
        ("recordings + 1", |h| h.recordings += 1),
        ("samples huge", |h| h.samples = u32::MAX),
        ("recordings - 1", |h| h.recordings -= 1),
    ];
    for (name, change) in cases {
        let mut header = good.clone();
        change(&mut header);
        assert!(inconsistent(Hapt::from_bytes(&file(header, &p))), "{name}");
    }
}

#[test]
fn signed_but_inconsistent_payloads_are_errors() {
    let recs = common::sample_recordings();
    let p = payload(&recs);
    let header = header_for(&recs, &p);
    let runs_at = 12 * recs.len();
    let n_runs = header.label_runs as usize;
    let lengths_at = runs_at + n_runs;
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // Move one sample from the first recording to the second in the table only.
    let mut moved = p.clone();
    moved[4..8].copy_from_slice(&39_u32.to_le_bytes());
    moved[12 + 4..12 + 8].copy_from_slice(&10_u32.to_le_bytes());
    cases.push(("table samples shifted", moved));
    let mut runs_shifted = p.clone();
    runs_shifted[8..12].copy_from_slice(&3_u32.to_le_bytes());
    runs_shifted[12 + 8..12 + 12].copy_from_slice(&2_u32.to_le_bytes());
    cases.push(("table runs shifted", runs_shifted));
    let mut long_run = p.clone();
    long_run[lengths_at..lengths_at + 4].copy_from_slice(&4_u32.to_le_bytes());
    cases.push(("a run longer than its place", long_run));
    let mut zero_run = p.clone();
    zero_run[lengths_at..lengths_at + 4].copy_from_slice(&0_u32.to_le_bytes());
    cases.push(("a run of length 0", zero_run));
    for bad_label in [0_i8, 13, -2, i8::MIN, i8::MAX] {
        let mut bad = p.clone();
        bad[runs_at] = bad_label as u8;
        cases.push(("a label outside -1, 1..=12", bad));
    }
    for (name, bad) in cases {
        assert!(
            inconsistent(Hapt::from_bytes(&file(header.clone(), &bad))),
            "{name}"
        );
    }
}

#[test]
fn bad_steps_are_errors() {
    let recs = common::sample_recordings();
    let p = payload(&recs);
    for step in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let mut header = header_for(&recs, &p);
        header.steps[3] = step;
        assert!(inconsistent(Hapt::from_bytes(&file(header, &p))), "{step}");
    }
}

#[test]
fn bad_zlib_bodies_are_errors() {
    let recs = common::sample_recordings();
    let p = payload(&recs);
    let header = header_for(&recs, &p);
    let body = miniz_oxide::deflate::compress_to_vec_zlib(&p, 6);
    let decompress = |body: &[u8]| {
        matches!(
            Hapt::from_bytes(&file_with_body(header.clone(), body)),
            Err(HaptError::Decompress { .. })
        )
    };
    // Signed (so the checksum passes) but cut short, or with its Adler-32 changed.
    assert!(decompress(&body[..body.len() / 2]));
    assert!(decompress(&body[..body.len() - 1]));
    let mut adler = body.clone();
    *adler.last_mut().expect("non-empty body") ^= 1;
    assert!(decompress(&adler));
    assert!(decompress(b"not zlib at all"));
    assert!(decompress(&[]));
    // A stream that inflates to more than the header declares: far more stops at the
    // inflater's limit, one byte more fails the length check.
    let mut longer = p.clone();
    longer.extend_from_slice(&[0; 100]);
    assert!(decompress(&miniz_oxide::deflate::compress_to_vec_zlib(
        &longer, 6
    )));
    let one_more = miniz_oxide::deflate::compress_to_vec_zlib(&longer[..p.len() + 1], 6);
    assert!(inconsistent(Hapt::from_bytes(&file_with_body(
        header.clone(),
        &one_more
    ))));
    // ... and to less.
    let shorter = miniz_oxide::deflate::compress_to_vec_zlib(&p[..p.len() - 1], 6);
    assert!(inconsistent(Hapt::from_bytes(&file_with_body(
        header.clone(),
        &shorter
    ))));
}

#[test]
fn resigning_an_unchanged_file_changes_nothing() {
    // Guards the helpers the other tests lean on: `resign` computes the hash the decoder
    // checks, and `fields` lays out the header as the decoder reads it.
    let recs = common::sample_recordings();
    let bytes = encode(&recs);
    let mut again = bytes.clone();
    resign(&mut again);
    assert_eq!(again, bytes);
    let p = payload(&recs);
    let mut header = header_for(&recs, &p);
    header.body_len = (bytes.len() - HEADER_LEN) as u32;
    assert_eq!(fields(&header), bytes[..56]);
}

#[test]
fn errors_display_their_cause() {
    let shown = [
        HaptError::Truncated { needed: 88, got: 4 }.to_string(),
        HaptError::BadMagic {
            found: *b"PK\x03\x04\0\0\0\0",
        }
        .to_string(),
        HaptError::UnsupportedVersion { found: 7 }.to_string(),
        HaptError::ChecksumMismatch.to_string(),
        HaptError::Inconsistent { what: "label runs" }.to_string(),
        HaptError::Decompress {
            reason: "Adler-32 mismatch",
        }
        .to_string(),
    ];
    assert!(shown[0].contains("88") && shown[0].contains('4'));
    assert!(shown[1].contains("50, 4b"));
    assert!(shown[2].contains('7'));
    assert!(shown[3].contains("checksum"));
    assert!(shown[4].contains("label runs"));
    assert!(shown[5].contains("Adler-32"));
    let io = Hapt::load("/nonexistent/hapt.bin").expect_err("no such file");
    assert!(matches!(
        io,
        HaptError::Io {
            kind: std::io::ErrorKind::NotFound,
            ..
        }
    ));
    assert!(io.to_string().contains("/nonexistent/hapt.bin"));
}

fn rec(subject: u16, labels: Vec<i8>) -> Rec {
    let codes = (0..labels.len())
        .map(|t| [t as i16, 0, 0, 0, 0, -(t as i16)])
        .collect();
    Rec {
        subject,
        experiment: subject,
        codes,
        labels,
    }
}

#[test]
fn windows_labels_split_and_layout() {
    // Subject 1 (train): 10 samples; subject 2 (test): 3 samples, shorter than a window.
    let labels = vec![4, 4, 4, 4, 4, 7, 7, 7, 7, 7];
    let hapt = Hapt::from_bytes(&encode(&[rec(1, labels), rec(2, vec![1, 1, 1])])).expect("valid");
    let spec = WindowSpec { len: 4, stride: 3 };
    let train = hapt.windows(spec, Split::Train).expect("valid spec");
    // starts 0, 3, 6: [4 4 4 4] -> 4, [4 4 7 7] -> -1, [7 7 7 7] -> -1 (a transition)
    assert_eq!(train.labels(), [4, -1, -1]);
    assert_eq!(train.labelled_count(), 1);
    assert_eq!(
        train.origins().iter().map(|o| o.start).collect::<Vec<_>>(),
        [0, 3, 6]
    );
    assert_eq!(train.window_len(), 4);
    // channel-major: channel 0 of window 1 is t = 3..7 times its step, channel 5 its negative
    let w1 = train.window(1).expect("three windows");
    assert_eq!(&w1[..4], [3.0, 4.0, 5.0, 6.0].map(|t| t * STEPS[0]));
    assert_eq!(&w1[20..], [3.0, 4.0, 5.0, 6.0].map(|t| -t * STEPS[5]));
    assert_eq!(train.window(3), None);
    assert!(
        hapt.windows(spec, Split::Test)
            .expect("valid spec")
            .is_empty()
    );
    let test = hapt
        .windows(WindowSpec { len: 3, stride: 1 }, Split::Test)
        .expect("valid spec");
    assert_eq!(test.labels(), [1]);
    let labelled = train.labelled();
    assert_eq!(labelled.labels(), [4]);
    assert_eq!(labelled.window(0), train.window(0));
    assert_eq!(
        hapt.windows(WindowSpec { len: 0, stride: 1 }, Split::Train),
        Err(HaptError::InvalidWindowSpec)
    );
    assert_eq!(
        hapt.windows(WindowSpec { len: 1, stride: 0 }, Split::Train),
        Err(HaptError::InvalidWindowSpec)
    );
    // A window longer than every recording gives none, whatever its length.
    let none = hapt.windows(
        WindowSpec {
            len: usize::MAX,
            stride: 1,
        },
        Split::Train,
    );
    assert_eq!(none.map(|w| w.count()), Ok(0));
}

#[test]
fn channel_stats_and_standardise() {
    let hapt = Hapt::from_bytes(&encode(&[rec(1, vec![-1; 4])])).expect("valid");
    let mut windows = hapt
        .windows(WindowSpec { len: 2, stride: 1 }, Split::Train)
        .expect("spec");
    // channel 0 over the windows [0,1], [1,2], [2,3] times 0.25: mean 1.5 / 4, and the
    // deviations ±1.5, ±0.5, ±0.5 (over 4) give std sqrt(5.5 / 6) / 4
    let stats = windows.channel_stats().expect("three windows");
    assert_eq!(stats.mean[0], 0.375);
    assert_eq!(stats.std[0], ((5.5_f64 / 6.0).sqrt() / 4.0) as f32);
    assert_eq!(stats.mean[5], -1.5 * STEPS[5]);
    assert_eq!(stats.mean[1], 0.0);
    assert_eq!(stats.std[1], 0.0);
    windows.standardise(&stats);
    let x = windows.window(0).expect("window 0");
    assert_eq!(x[0], (0.0 - 0.375) / stats.std[0]);
    assert!(x[2].is_nan(), "0 / 0 for the constant channel");
}

/// Random corruptions of the payload and the header's counts, re-signed so they pass the
/// checksum and reach the parser: each decodes or is an error, and none panics.
#[test]
fn signed_random_corruptions_never_panic() {
    let recs = common::sample_recordings();
    let p = payload(&recs);
    let good = header_for(&recs, &p);
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut errors) = (0, 0);
    for _ in 0..3000 {
        let mut bad = p.clone();
        for _ in 0..=next() % 3 {
            let at = (next() % bad.len() as u64) as usize;
            bad[at] = next() as u8;
        }
        let mut header = good.clone();
        match next() % 4 {
            0 => {
                header.samples = header
                    .samples
                    .wrapping_add(next() as u32 % 5)
                    .wrapping_sub(2)
            }
            1 => {
                header.label_runs = header
                    .label_runs
                    .wrapping_add(next() as u32 % 5)
                    .wrapping_sub(2)
            }
            2 => {
                header.recordings = header
                    .recordings
                    .wrapping_add(next() as u16 % 3)
                    .wrapping_sub(1)
            }
            _ => {}
        }
        match Hapt::from_bytes(&file(header, &bad)) {
            Ok(_) => ok += 1,
            Err(_) => errors += 1,
        }
    }
    // Both outcomes occur (a changed sample value decodes fine), so the corruptions reach
    // past the first check.
    assert!(ok > 0 && errors > 0, "{ok} decoded, {errors} errors");
}
