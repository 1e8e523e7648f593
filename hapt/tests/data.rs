//! The committed data/hapt.bin: it loads, its counts are HAPT's, it decodes to the values
//! scripts/hapt_data.py decodes (pinned below), corrupt or short copies are errors, and the
//! recipe's windows are what the issue expects.
//!
//! The pinned numbers come from `scripts/hapt_extract.py`'s report (the Python reader's
//! decode of the same file); re-run it after changing the file or either decoder.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};
use simsiam_hapt::{CHANNELS, DATA_PATH, HEADER_LEN, Hapt, HaptError, Split, WindowSpec, Windows};

fn bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| std::fs::read(DATA_PATH).expect("data/hapt.bin is committed"))
}

fn hapt() -> &'static Hapt {
    static HAPT: OnceLock<Hapt> = OnceLock::new();
    HAPT.get_or_init(|| Hapt::from_bytes(bytes()).expect("the committed file decodes"))
}

fn train() -> &'static Windows {
    static TRAIN: OnceLock<Windows> = OnceLock::new();
    TRAIN.get_or_init(|| {
        hapt()
            .windows(WindowSpec::RECIPE, Split::Train)
            .expect("spec")
    })
}

#[test]
fn the_committed_file_has_hapts_counts() {
    let hapt = hapt();
    assert_eq!(hapt.sample_rate_hz(), 50);
    // 1/720 g and 17.5 mdps in rad/s, rounded to f32 (the sensors' own steps)
    let acc = (1.0_f64 / 720.0) as f32;
    let gyro = (0.0175 * std::f64::consts::PI / 180.0) as f32;
    assert_eq!(hapt.steps(), [acc, acc, acc, gyro, gyro, gyro]);
    let recordings = hapt.recordings();
    assert_eq!(recordings.len(), 61);
    assert_eq!(hapt.samples(), 1_122_772);
    let experiments: Vec<u16> = recordings.iter().map(|r| r.experiment()).collect();
    assert_eq!(experiments, (1..=61).collect::<Vec<u16>>());
    let mut per_subject = BTreeMap::new();
    for r in recordings {
        *per_subject.entry(r.subject()).or_insert(0) += 1;
        assert_eq!(r.signals().len(), CHANNELS * r.len());
    }
    assert_eq!(
        per_subject.keys().copied().collect::<Vec<u16>>(),
        (1..=30).collect::<Vec<u16>>()
    );
    assert_eq!(per_subject[&10], 3, "subject 10 has experiments 19, 20, 21");
    assert_eq!((recordings[0].subject(), recordings[0].len()), (1, 20_598));
    assert_eq!(
        (recordings[20].subject(), recordings[20].experiment()),
        (10, 21)
    );

    let mut per_label = BTreeMap::new();
    for &l in recordings.iter().flat_map(|r| r.labels()) {
        *per_label.entry(l).or_insert(0_usize) += 1;
    }
    let expected = [
        (-1, 307_158),
        (1, 122_091),
        (2, 116_707),
        (3, 107_961),
        (4, 126_677),
        (5, 138_105),
        (6, 136_865),
        (7, 10_316),
        (8, 8_029),
        (9, 12_428),
        (10, 11_150),
        (11, 14_418),
        (12, 10_867),
    ];
    assert_eq!(per_label.into_iter().collect::<Vec<_>>(), expected);
}

/// Python-vs-Rust agreement: the numbers `scripts/hapt_extract.py` prints from
/// `hapt_data.load` (sums in f64 of the f32 values, added in file order; sha256 of the
/// decoded arrays). A change to either decoder's arithmetic breaks this.
#[test]
fn decodes_the_same_values_as_the_python_reader() {
    let recordings = hapt().recordings();
    let sums_bits: [u64; CHANNELS] = [
        0x412c_12e4_b81d_6363, // acc x  919922.3595992144
        0xc0c1_4fa5_5e78_ab40, // acc y  -8863.291945537203
        0x40f6_87ec_f242_a9d8, // acc z  92286.80914560647
        0x40d6_dbed_ce3f_d2e8, // gyro x 23407.71571345898
        0xc0c2_3c95_b762_c540, // gyro y -9337.169658991159
        0xc0c7_5a5c_2e47_2420, // gyro z -11956.720162289275
    ];
    for (c, bits) in sums_bits.into_iter().enumerate() {
        let sum: f64 = recordings
            .iter()
            .flat_map(|r| r.signals().iter().skip(c).step_by(CHANNELS))
            .map(|&x| f64::from(x))
            .sum();
        assert_eq!(
            sum.to_bits(),
            bits,
            "channel {c}: {sum} != {}",
            f64::from_bits(bits)
        );
    }
    let mut signals = Sha256::new();
    let mut labels = Sha256::new();
    for r in recordings {
        for x in r.signals() {
            signals.update(x.to_le_bytes());
        }
        labels.update(
            r.labels()
                .iter()
                .map(|&l| l.to_le_bytes()[0])
                .collect::<Vec<u8>>(),
        );
    }
    assert_eq!(
        hex(&signals.finalize()),
        "a5331aed027bf83e28842079abc40fb8644751b112c18cc2821df2881b3906c1"
    );
    assert_eq!(
        hex(&labels.finalize()),
        "838d5a2a72c4befc4695f59c99042973e4936946b6154fe0db1fafb8743ed03e"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_truncation_of_the_committed_file_is_an_error() {
    let bytes = bytes();
    for len in 0..bytes.len() {
        let needed = if len < HEADER_LEN {
            HEADER_LEN
        } else {
            bytes.len()
        };
        let result = Hapt::from_bytes(&bytes[..len]);
        if result != Err(HaptError::Truncated { needed, got: len }) {
            panic!("{len} of {} bytes: {result:?}", bytes.len());
        }
    }
}

#[test]
fn a_flipped_byte_of_the_committed_file_is_a_checksum_error() {
    let mut broken = bytes().to_vec();
    // A header field (the first step), the stored hash, the body's start, middle and end.
    for at in [24, 60, HEADER_LEN, broken.len() / 2, broken.len() - 1] {
        broken[at] ^= 0x10;
        assert_eq!(
            Hapt::from_bytes(&broken),
            Err(HaptError::ChecksumMismatch),
            "byte {at}"
        );
        broken[at] ^= 0x10;
    }
    let mut magic = bytes()[..HEADER_LEN].to_vec();
    magic[3] = b'X';
    assert!(matches!(
        Hapt::from_bytes(&magic),
        Err(HaptError::BadMagic { .. })
    ));
}

#[test]
fn recipe_windows_counts() {
    let train = train();
    assert_eq!((train.count(), train.labelled_count()), (12_400, 7_143));
    assert_eq!(train.data().len(), 12_400 * CHANNELS * 128);
    let test = hapt()
        .windows(WindowSpec::RECIPE, Split::Test)
        .expect("spec");
    assert_eq!((test.count(), test.labelled_count()), (5_053, 2_874));
    assert!(
        train
            .origins()
            .iter()
            .all(|o| Split::of_subject(o.subject) == Split::Train)
    );
    assert!(
        test.origins()
            .iter()
            .all(|o| Split::of_subject(o.subject) == Split::Test)
    );
    let train_subjects: std::collections::BTreeSet<u16> =
        train.origins().iter().map(|o| o.subject).collect();
    assert_eq!(train_subjects.len(), 21);
}

/// Every training window against its recording, cut and labelled here independently.
#[test]
fn recipe_windows_are_the_recordings_cut_channel_major() {
    let train = train();
    let recordings = hapt().recordings();
    for (i, (origin, &label)) in train.origins().iter().zip(train.labels()).enumerate() {
        let r = &recordings[usize::from(origin.experiment) - 1];
        assert_eq!(r.experiment(), origin.experiment);
        assert_eq!(origin.start % 64, 0);
        assert!(origin.start + 128 <= r.len());
        let labels = &r.labels()[origin.start..origin.start + 128];
        let same = labels.iter().all(|&l| l == labels[0]);
        let expected = if same && (1..=6).contains(&labels[0]) {
            labels[0]
        } else {
            -1
        };
        assert_eq!(label, expected, "window {i}");
        let window = train.window(i).expect("in range");
        for c in 0..CHANNELS {
            for t in 0..128 {
                assert_eq!(
                    window[c * 128 + t],
                    r.signals()[(origin.start + t) * CHANNELS + c]
                );
            }
        }
    }
    // The last window of each recording is the last that fits.
    let last_per_recording: BTreeMap<u16, usize> = train
        .origins()
        .iter()
        .map(|o| (o.experiment, o.start))
        .collect();
    for (experiment, start) in last_per_recording {
        let n = recordings[usize::from(experiment) - 1].len();
        assert!(
            start + 128 <= n && start + 64 + 128 > n,
            "experiment {experiment}"
        );
    }
}

/// The training windows' statistics, pinned to what `hapt_data.channel_stats` gives.
#[test]
fn recipe_standardisation() {
    let stats = train().channel_stats().expect("training windows");
    let mean = [
        0.811_881_005_764_007_6,
        -0.002_425_251_994_282_007_2,
        0.084_309_592_843_055_73,
        0.011_814_978_905_022_144,
        -0.006_280_709_989_368_915_6,
        -0.010_464_722_290_635_109,
    ];
    let std = [
        0.403_119_087_219_238_3,
        0.369_889_885_187_149_05,
        0.374_674_767_255_783_1,
        0.580_084_860_324_859_6,
        0.464_422_643_184_661_87,
        0.352_655_529_975_891_1,
    ];
    assert_eq!(stats.mean, mean.map(|m: f64| m as f32));
    assert_eq!(stats.std, std.map(|s: f64| s as f32));

    let mut standardised = train().clone();
    standardised.standardise(&stats);
    let after = standardised.channel_stats().expect("training windows");
    for c in 0..CHANNELS {
        assert!(
            after.mean[c].abs() < 1e-5,
            "channel {c}: mean {}",
            after.mean[c]
        );
        assert!(
            (after.std[c] - 1.0).abs() < 1e-5,
            "channel {c}: std {}",
            after.std[c]
        );
    }
}

/// Python-vs-Rust agreement on the windows: `hapt_data.windows` (the PyTorch recipe's
/// input) and `Hapt::windows` give the same bytes, as hashed by `scripts/hapt_extract.py`.
#[test]
fn windows_are_the_python_readers() {
    let hash = |windows: &Windows| {
        let mut data = Sha256::new();
        for x in windows.data() {
            data.update(x.to_le_bytes());
        }
        let labels: Vec<u8> = windows
            .labels()
            .iter()
            .map(|&l| l.to_le_bytes()[0])
            .collect();
        (hex(&data.finalize()), hex(&Sha256::digest(labels)))
    };
    let (data, labels) = hash(train());
    assert_eq!(
        data,
        "f11650e669b165b804ddf3448671f0c126de6a71458d16b3e41dc46233a7108a"
    );
    assert_eq!(
        labels,
        "33d029649dfc41af3005adbc6ffb961181406f42a94c79dbbb73012a32ef29db"
    );
    let test = hapt()
        .windows(WindowSpec::RECIPE, Split::Test)
        .expect("spec");
    let (data, labels) = hash(&test);
    assert_eq!(
        data,
        "a8d97828babf5cc1d4c845e120440f1d73b94dd5e735535fe46c7f46c6f5b979"
    );
    assert_eq!(
        labels,
        "feeac434ff2f9175d6161699321256f810d26a61e670dadbea153279ff0bfe95"
    );
}
