"""Tests for xbarsim.experiments.data.datasets: IDX format, lookup order, downloader, shipped subset, loaders.

No test touches the network: downloads are served from ``file://`` URLs or a
local ``http.server`` on 127.0.0.1, with IDX files and checksums made here.
"""
from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import logging
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from xbarsim.experiments.data import datasets
from xbarsim.experiments.data.datasets import (
    DATASETS,
    SUBSET_PATH,
    DatasetDownloadError,
    download_dataset,
    download_file,
    find_dataset,
    load_dataset,
    load_subset,
    make_loaders,
    read_idx,
    user_cache_dir,
    write_idx,
)

FILE_NAMES = {role: remote.file_name for role, remote in DATASETS["fashion-mnist"].files.items()}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def isolated_lookup(tmp_path, monkeypatch):
    """No real HOME, cache, $XBARSIM_DATA or Debian directory leaks into a test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("XBARSIM_DATA", raising=False)
    system_dir = tmp_path / "system" / "fashion-mnist"
    spec = DATASETS["fashion-mnist"]
    monkeypatch.setitem(DATASETS, "fashion-mnist", dataclasses.replace(spec, system_dirs=(system_dir,)))
    return system_dir


def write_fake_dataset(directory: Path, n_train: int = 40, n_test: int = 20, seed: int = 0, gz: bool = True) -> dict:
    """Four small, valid IDX files of random 28x28 images with labels 0..9."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for role, array in arrays.items():
        name = FILE_NAMES[role] if gz else FILE_NAMES[role][:-3]
        write_idx(directory / name, array)
    return arrays


# --------------------------------------------------------------------------- IDX format


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize(
    "dtype, shape",
    [(np.uint8, (5, 28, 28)), (np.uint8, (7,)), (np.int8, (3, 4)), (np.int16, (6,)),
     (np.int32, (2, 3, 4)), (np.float32, (4, 5)), (np.float64, (3,))],
)
def test_idx_round_trip(tmp_path, suffix, dtype, shape):
    rng = np.random.default_rng(1)
    array = (rng.standard_normal(shape) * 100).astype(dtype)
    path = write_idx(tmp_path / f"a-idx{len(shape)}{suffix}", array)
    raw = path.read_bytes()
    assert raw[:2] == (b"\x1f\x8b" if suffix else b"\x00\x00")
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def test_idx_header_is_the_published_layout(tmp_path):
    path = write_idx(tmp_path / "x", np.zeros((2, 28, 28), np.uint8))
    assert path.read_bytes()[:16] == bytes.fromhex("00000803" "00000002" "0000001c" "0000001c")


def test_idx_writer_rejects_types_idx_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="int64"):
        write_idx(tmp_path / "x", np.zeros(3, np.int64))


def _valid_idx(tmp_path) -> bytes:
    write_idx(tmp_path / "valid", (np.arange(2 * 28 * 28) % 256).astype(np.uint8).reshape(2, 28, 28))
    return (tmp_path / "valid").read_bytes()


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda b: b"\x01" + b[1:], "bad IDX magic number 0x01000803"),
        (lambda b: b[:2] + b"\x0a" + b[3:], "unknown IDX type code 0x0a"),
        (lambda b: b[:-10], r"IDX payload truncated: dimensions \(2, 28, 28\) of uint8 need 1568 bytes .* found 1558"),
        (lambda b: b + b"\x00", "IDX payload longer than its dimensions"),
        (lambda b: b[:9], "truncated IDX header: 3 dimensions need 16 header bytes, the file has 9"),
        (lambda b: b[:2], "not an IDX file"),
        (lambda b: b[:3] + b"\x00" + b[4:], "declares 0 dimensions"),
        # wrong dims: header says 2 x 28 x 27, payload holds 2 x 28 x 28
        (lambda b: b[:12] + (27).to_bytes(4, "big") + b[16:], r"dimensions \(2, 28, 27\)"),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_corrupt_idx_is_rejected_naming_the_file(tmp_path, corrupt, message, gz):
    data = corrupt(_valid_idx(tmp_path))
    path = tmp_path / ("broken-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(ValueError, match=message) as excinfo:
        read_idx(path)
    assert str(path) in str(excinfo.value)


def test_truncated_gzip_is_rejected_naming_the_file(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(_valid_idx(tmp_path))[:-20])
    with pytest.raises(ValueError, match="corrupt or truncated gzip") as excinfo:
        read_idx(path)
    assert str(path) in str(excinfo.value)


def test_dataset_with_wrong_image_dims_is_rejected(tmp_path):
    write_fake_dataset(tmp_path / "data")
    bad = tmp_path / "data" / FILE_NAMES["test_images"]
    write_idx(bad, np.zeros((20, 28, 27), np.uint8))
    with pytest.raises(ValueError, match=r"expected Fashion-MNIST images as uint8 \(N, 28, 28\)") as excinfo:
        load_dataset(data_dir=tmp_path / "data")
    assert str(bad) in str(excinfo.value)


def test_dataset_with_mismatched_label_count_is_rejected(tmp_path):
    write_fake_dataset(tmp_path / "data")
    write_idx(tmp_path / "data" / FILE_NAMES["train_labels"], np.zeros(39, np.uint8))
    with pytest.raises(ValueError, match="40 images but 39 labels"):
        load_dataset(data_dir=tmp_path / "data")


# --------------------------------------------------------------------------- lookup order


def test_lookup_order_env_then_cache_then_system(tmp_path, monkeypatch, isolated_lookup):
    env_root = tmp_path / "env"
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XBARSIM_DATA", str(env_root))
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    places = [env_root / "fashion-mnist", xdg / "xbarsim" / "fashion-mnist", isolated_lookup]
    for seed, place in enumerate(places):
        write_fake_dataset(place, seed=seed)
    for place in places:
        assert find_dataset("fashion-mnist").directory == place
        assert load_dataset("fashion-mnist", subset_fallback=False).source == str(place)
        for name in FILE_NAMES.values():
            (place / name).unlink()
    assert not find_dataset("fashion-mnist").found


def test_a_named_data_dir_is_the_only_place_searched(tmp_path, monkeypatch, isolated_lookup):
    monkeypatch.setenv("XBARSIM_DATA", str(tmp_path / "env"))
    write_fake_dataset(tmp_path / "env" / "fashion-mnist")  # would be found without a data_dir
    explicit = tmp_path / "explicit"
    assert not find_dataset("fashion-mnist", data_dir=explicit).found
    # neither another copy nor the shipped subset stands in for the folder the user named
    with pytest.raises(FileNotFoundError, match="in the data_dir you named") as excinfo:
        load_dataset("fashion-mnist", data_dir=explicit)
    assert str(explicit / "fashion-mnist") in str(excinfo.value)
    write_fake_dataset(explicit / "fashion-mnist", seed=3)
    assert load_dataset("fashion-mnist", data_dir=explicit).source == str(explicit / "fashion-mnist")


def test_cache_defaults_to_home_and_ignores_relative_xdg(tmp_path, monkeypatch):
    assert user_cache_dir("fashion-mnist") == tmp_path / "home" / ".cache" / "xbarsim" / "fashion-mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert user_cache_dir("mnist") == tmp_path / "home" / ".cache" / "xbarsim" / "mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir("FASHION_MNIST") == tmp_path / "xdg" / "xbarsim" / "fashion-mnist"
    write_fake_dataset(tmp_path / "xdg" / "xbarsim" / "mnist", gz=False)
    assert find_dataset("mnist").directory == tmp_path / "xdg" / "xbarsim" / "mnist"


def test_data_dir_may_hold_the_files_directly_or_a_dataset_folder(tmp_path):
    write_fake_dataset(tmp_path / "flat", gz=False)
    bundle = load_dataset("mnist", data_dir=tmp_path / "flat")
    assert bundle.source == str(tmp_path / "flat") and bundle.class_names[3] == "3"
    write_fake_dataset(tmp_path / "flat" / "mnist", seed=5)
    assert find_dataset("mnist", data_dir=tmp_path / "flat").directory == tmp_path / "flat" / "mnist"


def test_env_root_never_uses_files_lying_directly_in_it(tmp_path, monkeypatch):
    write_fake_dataset(tmp_path / "env")  # MNIST or Fashion-MNIST? Same names: ambiguous
    monkeypatch.setenv("XBARSIM_DATA", str(tmp_path / "env"))
    assert not find_dataset("fashion-mnist").found


def test_incomplete_copy_is_skipped_and_reported(tmp_path, caplog):
    write_fake_dataset(tmp_path / "data" / "fashion-mnist")
    (tmp_path / "data" / "fashion-mnist" / FILE_NAMES["test_labels"]).unlink()
    lookup = find_dataset("fashion-mnist", data_dir=tmp_path / "data")
    assert not lookup.found
    assert "incomplete, missing t10k-labels-idx1-ubyte[.gz]" in lookup.searched[0]
    assert "incomplete" in caplog.text


def test_nothing_found_without_subset_lists_every_path_searched(tmp_path, monkeypatch, isolated_lookup):
    monkeypatch.setenv("XBARSIM_DATA", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError) as excinfo:
        load_dataset("fashion-mnist", subset_fallback=False)
    message = str(excinfo.value)
    for path in [
        tmp_path / "env" / "fashion-mnist",
        tmp_path / "home" / ".cache" / "xbarsim" / "fashion-mnist",
        isolated_lookup,
    ]:
        assert f"{path} (" in message
    assert "apt-get install dataset-fashion-mnist" in message and "download_dataset('fashion-mnist')" in message


def test_missing_mnist_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="MNIST not found") as excinfo:
        load_dataset("mnist", subset_fallback=True)
    message = str(excinfo.value)
    assert "download_dataset('mnist')" in message and "--data-dir" in message
    assert "apt-get" not in message  # there is no Debian MNIST package


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'; known: mnist, fashion-mnist"):
        load_dataset("cifar10")


# --------------------------------------------------------------------------- downloader


def _served_dataset(tmp_path) -> tuple[Path, dict, dict]:
    served = tmp_path / "served"
    arrays = write_fake_dataset(served, seed=3)
    checksums = {name: hashlib.sha256((served / name).read_bytes()).hexdigest() for name in FILE_NAMES.values()}
    return served, arrays, checksums


def test_download_from_file_url_verifies_and_lands_in_the_cache(tmp_path):
    served, arrays, checksums = _served_dataset(tmp_path)
    directory = download_dataset("fashion-mnist", mirrors=[served.as_uri()], checksums=checksums)
    assert directory == user_cache_dir("fashion-mnist")
    assert sorted(p.name for p in directory.iterdir()) == sorted(FILE_NAMES.values())  # no temporaries left
    bundle = load_dataset("fashion-mnist", subset_fallback=False)
    assert bundle.source == str(directory)
    np.testing.assert_array_equal(bundle.train_labels.numpy(), arrays["train_labels"])


def test_download_with_wrong_checksum_is_rejected_and_leaves_nothing(tmp_path):
    served, _, checksums = _served_dataset(tmp_path)
    checksums[FILE_NAMES["train_images"]] = "0" * 64
    root = tmp_path / "downloads"
    with pytest.raises(DatasetDownloadError, match="SHA-256 mismatch") as excinfo:
        download_dataset("fashion-mnist", root, mirrors=[served.as_uri()], checksums=checksums)
    assert "nothing was written to" in str(excinfo.value)
    assert not root.exists()  # the first file failed: no file, no temporary, no empty directory


def test_download_file_rejects_wrong_size_and_removes_the_temporary(tmp_path):
    source = tmp_path / "payload.bin"
    source.write_bytes(b"x" * 100)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    destination = tmp_path / "out" / "payload.bin"
    with pytest.raises(DatasetDownloadError, match="more than the expected 50 bytes"):
        download_file([source.as_uri()], destination, digest, size_bytes=50)
    assert list(destination.parent.iterdir()) == []
    assert download_file([source.as_uri()], destination, digest, size_bytes=100).read_bytes() == b"x" * 100


def test_download_replaces_a_file_with_the_wrong_digest(tmp_path):
    served, _, checksums = _served_dataset(tmp_path)
    root = tmp_path / "downloads"
    root.mkdir()
    stale = root / FILE_NAMES["test_labels"]
    stale.write_bytes(b"stale")
    download_dataset("fashion-mnist", root, mirrors=[served.as_uri()], checksums=checksums)
    assert stale.read_bytes() == (served / stale.name).read_bytes()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


def test_download_over_http_falls_back_to_the_next_mirror(tmp_path, monkeypatch):
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    served, arrays, checksums = _served_dataset(tmp_path)
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        root = tmp_path / "downloads"
        download_dataset("fashion-mnist", root, mirrors=[f"{base}/missing/", f"{base}/served/"], checksums=checksums,
                         timeout=10)
        bundle = load_dataset("fashion-mnist", data_dir=root)
        np.testing.assert_array_equal(bundle.test_labels.numpy(), arrays["test_labels"])
        # verified files already present are kept, so no working mirror is needed the second time
        assert download_dataset("fashion-mnist", root, mirrors=[f"{base}/missing/"], checksums=checksums) == root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_published_digests_are_well_formed():
    for spec in DATASETS.values():
        assert len(spec.files) == 4
        for remote in spec.files.values():
            assert len(remote.sha256) == 64 and int(remote.sha256, 16) >= 0 and remote.size_bytes > 0


# --------------------------------------------------------------------------- shipped subset


def test_shipped_subset_is_small_real_and_class_balanced():
    assert SUBSET_PATH.parent == Path(datasets.__file__).parent  # installed inside the package
    assert SUBSET_PATH.stat().st_size <= 2_000_000
    subset = load_subset()
    for split, size in (("train", 3000), ("test", 1000)):
        images, labels = subset[f"{split}_images"], subset[f"{split}_labels"]
        assert images.dtype == np.uint8 and images.shape == (size, 28, 28)
        assert labels.dtype == np.uint8 and labels.shape == (size,)
        assert images.min() == 0 and images.max() == 255
        assert np.bincount(labels, minlength=10).tolist() == [size // 10] * 10
        indices = subset[f"{split}_indices"]
        assert len(np.unique(indices)) == size and np.all(np.diff(indices) > 0)


def test_subset_is_used_with_a_notice_on_stderr(monkeypatch, capsys, caplog):
    bundle = load_dataset("fashion-mnist")
    assert bundle.is_subset and bundle.source == f"subset:{SUBSET_PATH}"
    assert bundle.train_images.shape == (3000, 784) and bundle.test_images.shape == (1000, 784)
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "using the shipped subset" in record.getMessage() and "\n" not in record.getMessage()
    # With logging left unconfigured (no handlers anywhere), the warning still reaches stderr.
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    load_dataset("fashion-mnist")
    err = capsys.readouterr().err
    assert "using the shipped subset (3000 train / 1000 test images)" in err
    assert "apt-get install dataset-fashion-mnist" in err and "download_dataset('fashion-mnist')" in err
    assert "--data-dir" in err


@pytest.mark.skipif(not DEBIAN_DIR.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_debian_fashion_mnist_loads_and_contains_the_subset():
    bundle = load_dataset("fashion-mnist", data_dir=DEBIAN_DIR, flatten=False)
    assert bundle.source == str(DEBIAN_DIR) and not bundle.is_subset
    assert bundle.train_images.shape == (60000, 1, 28, 28) and bundle.test_images.shape == (10000, 1, 28, 28)
    subset = load_subset()
    full = (bundle.train_images[subset["train_indices"], 0] * 255).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(full, subset["train_images"])
    np.testing.assert_array_equal(bundle.test_labels[subset["test_indices"]].numpy(), subset["test_labels"])


# --------------------------------------------------------------------------- loaders


def test_bundle_tensors_are_scaled_and_shaped(tmp_path):
    arrays = write_fake_dataset(tmp_path / "d")
    flat = load_dataset(data_dir=tmp_path / "d")
    image = load_dataset(data_dir=tmp_path / "d", flatten=False)
    assert flat.train_images.dtype == torch.float32 and flat.train_images.shape == (40, 784)
    assert image.test_images.shape == (20, 1, 28, 28) and image.input_shape == (1, 28, 28)
    assert flat.train_labels.dtype == torch.int64 and flat.num_classes == 10
    assert 0.0 <= float(flat.train_images.min()) and float(flat.train_images.max()) <= 1.0
    np.testing.assert_allclose(image.test_images[:, 0].numpy(), arrays["test_images"] / np.float32(255), rtol=1e-6)


def test_loaders_with_a_fixed_seed_give_identical_batches():
    bundle = load_dataset("fashion-mnist")  # the shipped subset
    def epochs(seed, count=2):
        train, _ = make_loaders(bundle, batch_size=256, seed=seed)
        return [[(x.clone(), y.clone()) for x, y in train] for _ in range(count)]
    first, again, other = epochs(7), epochs(7), epochs(8)
    for epoch_a, epoch_b in zip(first, again):
        assert len(epoch_a) == len(epoch_b) == 12  # ceil(3000 / 256)
        for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(first[0][0][1], first[1][0][1])  # reshuffled each epoch
    assert not torch.equal(first[0][0][1], other[0][0][1])  # seed matters
    assert sorted(torch.cat([y for _, y in first[0]]).tolist()) == sorted(bundle.train_labels.tolist())


def test_test_loader_keeps_file_order_and_drop_last(tmp_path):
    write_fake_dataset(tmp_path / "d", n_train=40, n_test=20)
    bundle = load_dataset(data_dir=tmp_path / "d")
    train, test = make_loaders(bundle, batch_size=16, seed=0, test_batch_size=8, drop_last=True)
    assert [len(y) for _, y in train] == [16, 16]
    assert torch.equal(torch.cat([x for x, _ in test]), bundle.test_images)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        make_loaders(bundle, batch_size=0, seed=0)
