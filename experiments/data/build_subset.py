"""Build the Fashion-MNIST subset shipped with xbarsim (``experiments/data/fashion_mnist_subset.npz``).

The subset is a class-balanced random sample of the real Fashion-MNIST files:
300 training images per class (3000) and 100 test images per class (1000),
uint8, stored in a deflate-compressed ``.npz`` under 2 MB. :func:`xbarsim.experiments.data.datasets.load_dataset`
uses it when no full copy is installed, so a fresh checkout can run the smoke
presets without a download.

A larger sample does not fit: Fashion-MNIST deflates to about 430 bytes per
image, so 2 MB holds about 4600 images in all.

The build is deterministic: the same source files, seed and sizes give the same
bytes (``numpy.random.default_rng(seed)``; zip entries carry a fixed time stamp).
The source is checked against the SHA-256 of the decompressed upstream IDX
files, so a repackaged copy (such as Debian's ``dataset-fashion-mnist``, whose
``.gz`` headers differ from upstream) is accepted and anything else is refused.

Run::

    python -m xbarsim.experiments.data.build_subset [--data-dir /usr/share/datasets/fashion-mnist]

Besides the four arrays the archive holds ``train_indices`` and ``test_indices``:
the position of every example in the full upstream files.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import logging
import sys
import zipfile
from pathlib import Path

import numpy as np

from xbarsim.experiments.data.datasets import DATASETS, SUBSET_PATH, encode_idx, find_dataset, read_idx

log = logging.getLogger(__name__)

SEED = 20240601
TRAIN_PER_CLASS = 300
TEST_PER_CLASS = 100
MAX_BYTES = 2_000_000

#: SHA-256 of the decompressed upstream IDX files (identical for the upstream and Debian ``.gz``).
IDX_CONTENT_SHA256 = {
    "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


def class_balanced_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """``per_class`` distinct indices of every class, drawn without replacement, in ascending order."""
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < per_class:
            raise ValueError(f"class {label} has {len(members)} examples, fewer than {per_class}")
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` as a deflate-compressed ``.npz`` whose bytes depend only on the arrays."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, member.getvalue(), compresslevel=9)
    return path


def build_subset(
    data_dir: Path,
    output: Path = SUBSET_PATH,
    *,
    seed: int = SEED,
    train_per_class: int = TRAIN_PER_CLASS,
    test_per_class: int = TEST_PER_CLASS,
    verify_source: bool = True,
) -> Path:
    """Sample the subset from the full Fashion-MNIST in ``data_dir`` and write it to ``output``."""
    lookup = find_dataset("fashion-mnist", data_dir)
    if not lookup.found or lookup.directory not in (Path(data_dir), Path(data_dir) / "fashion-mnist"):
        raise FileNotFoundError(f"no complete Fashion-MNIST in {data_dir}: " + "; ".join(lookup.searched[:2]))
    arrays = {role: read_idx(path) for role, path in lookup.files.items()}
    if verify_source:
        for role, array in arrays.items():
            digest = hashlib.sha256(encode_idx(array)).hexdigest()
            if digest != IDX_CONTENT_SHA256[role]:
                raise ValueError(
                    f"{lookup.files[role]}: IDX content SHA-256 {digest} is not the published Fashion-MNIST "
                    f"{IDX_CONTENT_SHA256[role]}"
                )
    rng = np.random.default_rng(seed)
    train_indices = class_balanced_indices(arrays["train_labels"], train_per_class, rng)
    test_indices = class_balanced_indices(arrays["test_labels"], test_per_class, rng)
    subset = {
        "train_images": arrays["train_images"][train_indices],
        "train_labels": arrays["train_labels"][train_indices],
        "test_images": arrays["test_images"][test_indices],
        "test_labels": arrays["test_labels"][test_indices],
        "train_indices": train_indices.astype(np.int32),
        "test_indices": test_indices.astype(np.int32),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    write_npz(output, subset)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DATASETS["fashion-mnist"].system_dirs[0],
                        help="directory with the four Fashion-MNIST IDX files (default: the Debian package's)")
    parser.add_argument("--output", type=Path, default=SUBSET_PATH)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--train-per-class", type=int, default=TRAIN_PER_CLASS)
    parser.add_argument("--test-per-class", type=int, default=TEST_PER_CLASS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    path = build_subset(args.data_dir, args.output, seed=args.seed,
                        train_per_class=args.train_per_class, test_per_class=args.test_per_class)
    size = path.stat().st_size
    log.info("wrote %s (%d bytes)", path, size)
    if size > MAX_BYTES:
        log.error("%s is %d bytes, over the %d-byte budget for shipped data", path, size, MAX_BYTES)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
