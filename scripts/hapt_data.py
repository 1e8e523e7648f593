"""Read data/hapt.bin, the UCI HAPT raw signals (format: data/README.md), with numpy only.

    import hapt_data
    recordings = hapt_data.load()          # 61 dicts, by experiment id
    r = recordings[0]
    r["subject"], r["experiment"]          # 1, 1
    r["signals"]                           # float32 [n, 6]: acc x, y, z (g), gyro x, y, z (rad/s)
    r["labels"]                            # int8 [n]: 1-6 activities, 7-12 transitions, -1 none

The values are bit for bit those the Rust crate `simsiam-hapt` decodes: the integer code
times the channel's step, one float32 multiplication. `windows` cuts the recipe's windows
the way `simsiam_hapt::Hapt::windows` does, byte for byte; `channel_stats` and `standardise`
are `Windows::channel_stats` and `Windows::standardise`. hapt/tests/data.rs pins hashes of
this module's output, so the Rust side is checked against it.
"""

import hashlib
import os
import struct
import zlib

import numpy as np

DEFAULT_PATH = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "hapt.bin")
)

MAGIC = b"HAPTBIN\0"
VERSION = 1
CHANNELS = 6
# magic, version, channels, sample rate (Hz), recordings, samples, label runs,
# 6 steps (f32), payload length, body length; then the sha256 (32 bytes).
HEADER = struct.Struct("<8sHHHHII6fII")
HASH_LEN = 32
HEADER_LEN = HEADER.size + HASH_LEN  # 88
TABLE_ENTRY = struct.Struct("<HHII")  # subject, experiment, samples, label runs

TEST_SUBJECTS = (2, 4, 9, 10, 12, 13, 18, 20, 24)
WINDOW_LEN, WINDOW_STRIDE = 128, 64


def load(path=DEFAULT_PATH):
    """The recordings of data/hapt.bin, as dicts sorted by experiment id.

    Each dict: {"subject": int, "experiment": int, "signals": float32 [n, 6] (acc x, y, z
    in g, gyro x, y, z in rad/s), "labels": int8 [n]}. Raises ValueError on a file that is
    not a valid hapt.bin (bad magic or version, wrong sizes, checksum mismatch).
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < HEADER_LEN:
        raise ValueError(f"truncated: {len(data)} bytes, the header needs {HEADER_LEN}")
    (magic, version, channels, _rate, n_rec, n_samples, n_runs, *rest) = HEADER.unpack_from(data)
    steps = np.array(rest[:CHANNELS], dtype=np.float32)
    payload_len, body_len = rest[CHANNELS:]
    if magic != MAGIC:
        raise ValueError(f"bad magic {magic!r}")
    if version != VERSION:
        raise ValueError(f"unsupported version {version}")
    if channels != CHANNELS:
        raise ValueError(f"{channels} channels, expected {CHANNELS}")
    if len(data) != HEADER_LEN + body_len:
        raise ValueError(f"{len(data)} bytes, the header says {HEADER_LEN + body_len}")
    digest = hashlib.sha256(data[: HEADER.size] + data[HEADER_LEN:]).digest()
    if digest != data[HEADER.size : HEADER_LEN]:
        raise ValueError("checksum mismatch")
    expected = n_rec * TABLE_ENTRY.size + 5 * n_runs + 2 * CHANNELS * n_samples
    if payload_len != expected:
        raise ValueError(f"payload of {payload_len} bytes, the counts give {expected}")
    try:
        payload = zlib.decompress(data[HEADER_LEN:], bufsize=payload_len)
    except zlib.error as e:
        raise ValueError(f"body does not inflate: {e}") from e
    if len(payload) != payload_len:
        raise ValueError(f"payload inflates to {len(payload)} bytes, expected {payload_len}")

    table = [TABLE_ENTRY.unpack_from(payload, i * TABLE_ENTRY.size) for i in range(n_rec)]
    at = n_rec * TABLE_ENTRY.size
    run_labels = np.frombuffer(payload, np.int8, n_runs, at)
    run_lengths = np.frombuffer(payload, "<u4", n_runs, at + n_runs).astype(np.int64)
    at += 5 * n_runs
    low = np.frombuffer(payload, np.uint8, CHANNELS * n_samples, at)
    high = np.frombuffer(payload, np.uint8, CHANNELS * n_samples, at + CHANNELS * n_samples)
    zigzag = low.astype(np.uint16) | (high.astype(np.uint16) << 8)
    # Undo the zigzag: 0, 1, 2, 3, ... -> 0, -1, 1, -2, ...; deltas are 16-bit wrapping.
    deltas = ((zigzag >> 1) ^ (0 - (zigzag & 1))).astype(np.uint16)
    if sum(t[2] for t in table) != n_samples or sum(t[3] for t in table) != n_runs:
        raise ValueError("the recording table does not add up to the header's counts")

    recordings, sample_at, run_at = [], 0, 0
    for subject, experiment, n, runs in table:
        lengths = run_lengths[run_at : run_at + runs]
        if lengths.sum() != n:
            raise ValueError(f"experiment {experiment}: label runs cover {lengths.sum()} of {n}")
        labels = np.repeat(run_labels[run_at : run_at + runs], lengths)
        block = deltas[CHANNELS * sample_at : CHANNELS * (sample_at + n)].reshape(CHANNELS, n)
        # cumulative sum modulo 2**16, then read as int16 (the codes fit in int16)
        codes = np.cumsum(block, axis=1, dtype=np.uint16).view(np.int16)
        signals = (codes.astype(np.float32) * steps[:, None]).T.copy()
        recordings.append(
            {"subject": subject, "experiment": experiment, "signals": signals, "labels": labels}
        )
        sample_at += n
        run_at += runs
    recordings.sort(key=lambda r: r["experiment"])
    return recordings


def window_label(labels):
    """The activity 1-6 if every sample of the window carries it, else -1."""
    first = int(labels[0])
    return first if 1 <= first <= 6 and bool(np.all(labels == first)) else -1


def windows(recordings, length=WINDOW_LEN, stride=WINDOW_STRIDE, test=False):
    """The recipe's windows of one split, channel-major: (float32 [N, 6, length], int8 [N]).

    Windows start at 0, stride, 2*stride, ... within each recording (in the given order)
    and end at or before its last sample. `test` picks the subjects of UCI HAR's test split
    (TEST_SUBJECTS), else the other 21.
    """
    xs, ys = [], []
    for r in recordings:
        if (r["subject"] in TEST_SUBJECTS) != test:
            continue
        n = len(r["labels"])
        for start in range(0, n - length + 1, stride):
            xs.append(r["signals"][start : start + length].T)
            ys.append(window_label(r["labels"][start : start + length]))
    x = np.stack(xs).astype(np.float32) if xs else np.zeros((0, CHANNELS, length), np.float32)
    return x, np.array(ys, dtype=np.int8)


def channel_stats(x):
    """Per-channel (mean, std) float32 [6] of windows x [N, 6, T], as `Windows::channel_stats`.

    float64 throughout, population std (divide by the count), rounded to float32 at the end.
    numpy adds pairwise, Rust in order, so the two can differ in the float64's last bits;
    after the rounding to float32 they agree on this data (hapt/tests/data.rs pins them).
    """
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(0, 2))
    std = np.sqrt(((x64 - mean[None, :, None]) ** 2).mean(axis=(0, 2)))
    return mean.astype(np.float32), std.astype(np.float32)


def standardise(x, mean, std):
    """(x - mean[c]) / std[c] in float32, as `Windows::standardise`."""
    return (x - mean[None, :, None]) / std[None, :, None]
