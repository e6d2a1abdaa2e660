"""MNIST and Fashion-MNIST for xbarsim experiments: find, verify, download, load.

The IDX file format
-------------------
MNIST (LeCun, Cortes and Burges) and Fashion-MNIST (Xiao, Rasul and Vollgraf,
arXiv:1708.07747) are distributed as four IDX files each, usually gzipped::

    train-images-idx3-ubyte.gz   60000 x 28 x 28 unsigned bytes (pixels, 0 = background)
    train-labels-idx1-ubyte.gz   60000 unsigned bytes (class 0..9)
    t10k-images-idx3-ubyte.gz    10000 x 28 x 28
    t10k-labels-idx1-ubyte.gz    10000

An IDX file is a big-endian header followed by the raw array, C order::

    offset 0   magic number, 4 bytes: 0x00 0x00 <type code> <number of dimensions d>
    offset 4   d dimension sizes, unsigned 32-bit big-endian each
    offset 4+4d  prod(sizes) elements of the type, big-endian

    type codes: 0x08 unsigned byte, 0x09 signed byte, 0x0B int16,
                0x0C int32, 0x0D float32, 0x0E float64

:func:`read_idx` checks the magic number, the type code, the header length and
that the payload holds exactly ``prod(sizes)`` elements; anything else raises
``ValueError`` naming the file and what is wrong. It reads gzipped and plain
files alike (gzip is recognised by its own magic bytes ``1f 8b``, not by the
file name). :func:`write_idx` writes the same format.

Where the data is looked up
---------------------------
:func:`find_dataset` searches, in this order, and uses the first directory that
holds all four files (each either gzipped, ``<file>.gz``, or plain, ``<file>``):

1. the ``data_dir`` argument (the CLI's ``--data-dir``): ``<data_dir>/<dataset>``,
   then ``<data_dir>`` itself;
2. ``$XBARSIM_DATA/<dataset>``;
3. the user cache, ``$XDG_CACHE_HOME/xbarsim/<dataset>`` (``~/.cache/xbarsim/<dataset>``
   when ``$XDG_CACHE_HOME`` is unset or not absolute); :func:`download_dataset`
   writes here;
4. Fashion-MNIST only: ``/usr/share/datasets/fashion-mnist``, installed by the
   Debian package ``dataset-fashion-mnist``. There is no Debian MNIST package.

``<dataset>`` is ``mnist`` or ``fashion-mnist``. ``$XBARSIM_DATA`` is a root
shared by both datasets, so files lying directly in it are never used: both
datasets use the same file names, and MNIST would load silently as
Fashion-MNIST.

When no full copy is found, Fashion-MNIST falls back to a real, class-balanced
subset shipped with xbarsim (``experiments/data/fashion_mnist_subset.npz``, built by
``experiments/build_subset.py``) and says so in a logged warning. MNIST has no
subset: a missing MNIST is an error that says how to get it.

Checksums
---------
:data:`DATASETS` holds the SHA-256 digest and size of every upstream ``.gz``
file; :func:`download_dataset` rejects anything else. The Debian package
re-wraps the same deflate streams without the original file name and time stamp
in the gzip header, so its ``.gz`` files differ byte-wise from upstream (23 bytes
shorter) while decompressing to identical IDX content. Local copies are therefore
checked structurally (IDX header, shapes, label range), not by digest.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import math
import os
import struct
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

__all__ = [
    "IDX_TYPE_CODES",
    "DATA_ROOT_ENV",
    "SUBSET_PATH",
    "RemoteFile",
    "DatasetSpec",
    "DATASETS",
    "DatasetLookup",
    "DatasetBundle",
    "DatasetDownloadError",
    "read_idx",
    "write_idx",
    "decode_idx",
    "encode_idx",
    "dataset_spec",
    "user_cache_dir",
    "find_dataset",
    "download_file",
    "download_dataset",
    "load_subset",
    "load_dataset",
    "make_loaders",
]

# --------------------------------------------------------------------------- IDX format

#: IDX type code -> big-endian numpy dtype of the payload.
IDX_TYPE_CODES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_TYPE_NAMES = {0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}
_GZIP_MAGIC = b"\x1f\x8b"


def decode_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file into a native-endian array.

    ``source`` names the file in error messages. Raises ``ValueError`` for a bad
    magic number, an unknown type code, a truncated header, or a payload whose
    length does not match the dimensions.
    """
    if len(data) < 4:
        raise ValueError(f"{source}: not an IDX file: {len(data)} bytes, shorter than the 4-byte magic number")
    magic = data[:4].hex()
    if data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{source}: bad IDX magic number 0x{magic}: the first two bytes must be zero "
            "(magic number = 0x0000<type code><number of dimensions>)"
        )
    type_code, ndim = data[2], data[3]
    if type_code not in IDX_TYPE_CODES:
        known = ", ".join(f"0x{code:02x} ({name})" for code, name in _IDX_TYPE_NAMES.items())
        raise ValueError(f"{source}: unknown IDX type code 0x{type_code:02x} in magic number 0x{magic}; known: {known}")
    if ndim == 0:
        raise ValueError(f"{source}: IDX magic number 0x{magic} declares 0 dimensions")
    header_bytes = 4 + 4 * ndim
    if len(data) < header_bytes:
        raise ValueError(
            f"{source}: truncated IDX header: {ndim} dimensions need {header_bytes} header bytes, "
            f"the file has {len(data)}"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header_bytes])
    dtype = IDX_TYPE_CODES[type_code]
    count = math.prod(shape)
    expected = count * dtype.itemsize
    found = len(data) - header_bytes
    if found != expected:
        what = "truncated" if found < expected else "longer than its dimensions"
        raise ValueError(
            f"{source}: IDX payload {what}: dimensions {shape} of {_IDX_TYPE_NAMES[type_code]} "
            f"need {expected} bytes after the {header_bytes}-byte header, found {found}"
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header_bytes).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # a writable, native-endian copy


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzipped or not, into a native-endian numpy array.

    Raises ``FileNotFoundError`` if the file is absent and ``ValueError`` (with the
    path and the fault) for a corrupt gzip stream or an invalid IDX file.
    """
    path = Path(path)
    data = path.read_bytes()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: corrupt or truncated gzip stream ({exc})") from exc
    return decode_idx(data, source=str(path))


def _idx_type_code(dtype: np.dtype) -> int:
    for code, idx_dtype in IDX_TYPE_CODES.items():
        if dtype.kind == idx_dtype.kind and dtype.itemsize == idx_dtype.itemsize:
            return code
    allowed = ", ".join(_IDX_TYPE_NAMES.values())
    raise ValueError(f"dtype {dtype} cannot be stored in an IDX file; allowed: {allowed}")


def encode_idx(array: np.ndarray) -> bytes:
    """Serialise an array (1 to 255 dimensions, an IDX dtype) as IDX bytes."""
    array = np.asarray(array)
    code = _idx_type_code(array.dtype)
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"an IDX array needs 1 to 255 dimensions, got {array.ndim}")
    if any(size >= 2**32 for size in array.shape):
        raise ValueError(f"IDX dimension sizes must be below 2**32, got {array.shape}")
    header = bytes((0, 0, code, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=IDX_TYPE_CODES[code]).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzipped when ``compress`` (default: name ends in ``.gz``).

    The gzip header carries no time stamp, so the same array gives the same bytes.
    """
    path = Path(path)
    data = encode_idx(array)
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        data = gzip.compress(data, compresslevel=6, mtime=0)
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- dataset catalogue

#: Environment variable naming a root directory that holds ``mnist/`` and ``fashion-mnist/``.
DATA_ROOT_ENV = "XBARSIM_DATA"

#: The Fashion-MNIST subset shipped with xbarsim (see ``experiments/build_subset.py``).
SUBSET_PATH = Path(__file__).resolve().parent / "fashion_mnist_subset.npz"

_ROLES = ("train_images", "train_labels", "test_images", "test_labels")


@dataclass(frozen=True)
class RemoteFile:
    """One published file: its name, SHA-256 digest and size of the ``.gz`` as distributed."""

    file_name: str
    sha256: str
    size_bytes: int | None = None

    @property
    def idx_name(self) -> str:
        """The name of the uncompressed file (``file_name`` without ``.gz``)."""
        return self.file_name[:-3] if self.file_name.endswith(".gz") else self.file_name


@dataclass(frozen=True)
class DatasetSpec:
    """What xbarsim knows about one dataset: files, digests, mirrors, where systems install it."""

    name: str  # directory name and lookup key: "mnist", "fashion-mnist"
    title: str  # for messages: "MNIST", "Fashion-MNIST"
    class_names: tuple[str, ...]
    files: Mapping[str, RemoteFile]  # role ("train_images", ...) -> file
    mirrors: tuple[str, ...]  # base URLs, tried in order
    system_dirs: tuple[Path, ...] = ()  # distribution packages, searched last
    install_hint: str = ""  # how a distribution installs it, if one does
    subset_path: Path | None = None  # shipped subset used when no full copy is found
    image_shape: tuple[int, int] = (28, 28)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


#: The datasets xbarsim knows. Digests and sizes are those of the upstream ``.gz`` files as
#: listed in TensorFlow Datasets' ``url_checksums/{mnist,fashion_mnist}.txt``. The Fashion-MNIST
#: ones were also checked by rebuilding the upstream files from the Debian package (same deflate
#: streams, upstream gzip header restored): that reproduces these SHA-256 digests and the MD5
#: sums in Zalando's README. The MNIST ones agree across many independent projects but were not
#: checked against the bytes (no MNIST copy was at hand).
DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST",
        class_names=tuple(str(digit) for digit in range(10)),
        files={
            "train_images": RemoteFile(
                "train-images-idx3-ubyte.gz",
                sha256="440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                size_bytes=9912422,
            ),
            "train_labels": RemoteFile(
                "train-labels-idx1-ubyte.gz",
                sha256="3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                size_bytes=28881,
            ),
            "test_images": RemoteFile(
                "t10k-images-idx3-ubyte.gz",
                sha256="8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                size_bytes=1648877,
            ),
            "test_labels": RemoteFile(
                "t10k-labels-idx1-ubyte.gz",
                sha256="f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                size_bytes=4542,
            ),
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        title="Fashion-MNIST",
        class_names=(
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ),
        files={
            "train_images": RemoteFile(
                "train-images-idx3-ubyte.gz",
                sha256="3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                size_bytes=26421880,
            ),
            "train_labels": RemoteFile(
                "train-labels-idx1-ubyte.gz",
                sha256="a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                size_bytes=29515,
            ),
            "test_images": RemoteFile(
                "t10k-images-idx3-ubyte.gz",
                sha256="346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                size_bytes=4422102,
            ),
            "test_labels": RemoteFile(
                "t10k-labels-idx1-ubyte.gz",
                sha256="67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                size_bytes=5148,
            ),
        },
        mirrors=(
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        ),
        system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
        install_hint="apt-get install dataset-fashion-mnist",
        subset_path=SUBSET_PATH,
    ),
}


def dataset_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` for ``name`` ("mnist", "fashion-mnist"; case and ``_`` vs ``-`` ignored)."""
    key = name.strip().lower().replace("_", "-")
    if key == "fashionmnist":
        key = "fashion-mnist"
    try:
        return DATASETS[key]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


# --------------------------------------------------------------------------- lookup


def user_cache_dir(name: str) -> Path:
    """``$XDG_CACHE_HOME/xbarsim/<name>``, or ``~/.cache/xbarsim/<name>`` if that is unset or relative."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "xbarsim" / dataset_spec(name).name


@dataclass(frozen=True)
class DatasetLookup:
    """The result of :func:`find_dataset`.

    ``files`` maps each role (``train_images``, ``train_labels``, ``test_images``,
    ``test_labels``) to a path in ``directory``, or is ``None`` when nothing
    complete was found; ``searched`` says, in lookup order, what each place held.
    """

    name: str
    directory: Path | None
    files: Mapping[str, Path] | None
    searched: tuple[str, ...]

    @property
    def found(self) -> bool:
        return self.files is not None


def _search_dirs(spec: DatasetSpec, data_dir: str | os.PathLike | None) -> list[tuple[Path, str]]:
    if data_dir is not None:  # a folder the user named is the only place looked at
        root = Path(data_dir).expanduser()
        return [(root / spec.name, "data_dir"), (root, "data_dir")]
    places: list[tuple[Path, str]] = []
    env_root = os.environ.get(DATA_ROOT_ENV, "")
    if env_root:
        places.append((Path(env_root).expanduser() / spec.name, f"${DATA_ROOT_ENV}"))
    try:
        places.append((user_cache_dir(spec.name), "user cache"))
    except RuntimeError:  # no home directory to be found
        log.debug("no home directory: skipping the user cache")
    places += [(directory, "system package") for directory in spec.system_dirs]
    return places


def _files_in(spec: DatasetSpec, directory: Path) -> tuple[dict[str, Path], list[str]]:
    present, missing = {}, []
    for role in _ROLES:
        remote = spec.files[role]
        for candidate in (directory / remote.file_name, directory / remote.idx_name):
            if candidate.is_file():
                present[role] = candidate
                break
        else:
            missing.append(remote.idx_name + "[.gz]")
    return present, missing


def find_dataset(name: str = "fashion-mnist", data_dir: str | os.PathLike | None = None) -> DatasetLookup:
    """Find a complete local copy of ``name``; see the module docstring for the lookup order.

    Only looks at file names; :func:`load_dataset` validates the contents. A
    given ``data_dir`` is the only place searched: the fallback chain applies
    only when no folder is named.
    """
    spec = dataset_spec(name)
    searched = []
    for directory, origin in _search_dirs(spec, data_dir):
        if not directory.is_dir():
            searched.append(f"{directory} ({origin}): no such directory")
            continue
        present, missing = _files_in(spec, directory)
        if not missing:
            searched.append(f"{directory} ({origin}): found")
            return DatasetLookup(spec.name, directory, present, tuple(searched))
        if present:
            log.warning("incomplete %s copy in %s, missing %s; skipping it", spec.title, directory, ", ".join(missing))
            searched.append(f"{directory} ({origin}): incomplete, missing {', '.join(missing)}")
        else:
            searched.append(f"{directory} ({origin}): no {spec.title} files")
    return DatasetLookup(spec.name, None, None, tuple(searched))


# --------------------------------------------------------------------------- download


class DatasetDownloadError(RuntimeError):
    """No mirror delivered a file with the expected SHA-256 digest."""


def download_file(
    urls: Sequence[str],
    destination: str | os.PathLike,
    sha256: str,
    *,
    size_bytes: int | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download one file, trying ``urls`` in order, and keep it only if its SHA-256 matches.

    Each attempt streams into a temporary file next to ``destination``; a file
    whose digest (or size, when ``size_bytes`` is given) is wrong is deleted and
    the next URL is tried. The verified file is moved into place with an atomic
    rename, so ``destination`` is either absent or complete and verified. When
    every URL fails, raises :class:`DatasetDownloadError` listing each URL and why,
    and leaves no temporary file behind. ``file://`` URLs work too.
    """
    destination = Path(destination)
    sha256 = sha256.lower()
    if len(sha256) != 64 or any(char not in "0123456789abcdef" for char in sha256):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    if not urls:
        raise ValueError("download_file needs at least one URL")
    destination.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        handle = tempfile.NamedTemporaryFile(
            dir=destination.parent, prefix=f".{destination.name}.", suffix=".part", delete=False
        )
        temporary = Path(handle.name)
        try:
            with handle:
                reason = _stream_into(url, handle, sha256, size_bytes, timeout, destination.name)
            if reason is None:
                os.replace(temporary, destination)
                log.info("downloaded %s from %s (SHA-256 verified)", destination, url)
                return destination
            failures.append(f"{url}: {reason}")
            log.warning("rejected %s: %s", url, reason)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            failures.append(f"{url}: {type(exc).__name__}: {exc}")
            log.info("could not download %s: %s", url, exc)
        finally:
            temporary.unlink(missing_ok=True)
    raise DatasetDownloadError(
        f"could not download {destination.name}; nothing was written to {destination}. Tried: " + "; ".join(failures)
    )


def _stream_into(url, handle, sha256, size_bytes, timeout, label) -> str | None:
    """Copy ``url`` into ``handle``; return None if verified, else why it was rejected."""
    digest = hashlib.sha256()
    received = 0
    request = urllib.request.Request(url, headers={"User-Agent": "xbarsim-datasets"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        total = response.headers.get("Content-Length")
        total = int(total) if total else size_bytes
        with tqdm(total=total, unit="B", unit_scale=True, desc=label, disable=None, leave=False) as bar:
            while chunk := response.read(1 << 20):
                received += len(chunk)
                if size_bytes is not None and received > size_bytes:
                    return f"more than the expected {size_bytes} bytes"
                digest.update(chunk)
                handle.write(chunk)
                bar.update(len(chunk))
    if size_bytes is not None and received != size_bytes:
        return f"size mismatch: got {received} bytes, expected {size_bytes}"
    if digest.hexdigest() != sha256:
        return f"SHA-256 mismatch: got {digest.hexdigest()}, expected {sha256}"
    handle.flush()
    os.fsync(handle.fileno())
    return None


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download_dataset(
    name: str = "fashion-mnist",
    root: str | os.PathLike | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download the four ``.gz`` files of ``name`` into ``root`` and verify each SHA-256.

    ``root`` defaults to :func:`user_cache_dir` (where :func:`find_dataset` looks).
    ``mirrors`` (base URLs, tried in order) and ``checksums`` (file name ->
    SHA-256) default to the published ones in :data:`DATASETS`; with your own
    ``checksums`` the published sizes are not checked. Files already present
    with the right digest are kept. Returns the directory. Raises
    :class:`DatasetDownloadError` when a file cannot be fetched intact (files
    verified before that stay; a directory it created and left empty is removed).
    """
    spec = dataset_spec(name)
    directory = Path(root).expanduser() if root is not None else user_cache_dir(spec.name)
    bases = tuple(mirrors) if mirrors is not None else spec.mirrors
    created = not directory.exists()
    try:
        for role in _ROLES:
            remote = spec.files[role]
            if checksums is not None and remote.file_name not in checksums:
                raise ValueError(f"checksums has no SHA-256 for {remote.file_name}")
            sha256 = remote.sha256 if checksums is None else checksums[remote.file_name]
            size = remote.size_bytes if checksums is None else None
            destination = directory / remote.file_name
            if destination.is_file():
                if _sha256_of(destination) == sha256.lower():
                    log.info("%s already present and verified", destination)
                    continue
                log.warning("%s has the wrong SHA-256; downloading it again", destination)
            urls = [base.rstrip("/") + "/" + remote.file_name for base in bases]
            download_file(urls, destination, sha256, size_bytes=size, timeout=timeout)
    except BaseException:
        if created and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
        raise
    return directory


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True, eq=False)
class DatasetBundle:
    """A whole dataset in memory as torch tensors.

    Images are float32 in [0, 1] (pixel / 255), shaped ``(N, 784)`` when loaded
    with ``flatten=True`` and ``(N, 1, 28, 28)`` otherwise; labels are int64
    class indices. ``source`` is the directory the IDX files came from, or
    ``"subset:<path>"`` for the shipped subset (``is_subset`` is then True).
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: tuple[str, ...]
    source: str
    is_subset: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input: ``(784,)`` or ``(1, 28, 28)``."""
        return tuple(self.train_images.shape[1:])

    def train_dataset(self) -> TensorDataset:
        return TensorDataset(self.train_images, self.train_labels)

    def test_dataset(self) -> TensorDataset:
        return TensorDataset(self.test_images, self.test_labels)

    def __repr__(self) -> str:
        return (
            f"DatasetBundle(name={self.name!r}, train={len(self.train_labels)}, test={len(self.test_labels)}, "
            f"input_shape={self.input_shape}, source={self.source!r})"
        )


def _check_split(spec: DatasetSpec, images: np.ndarray, labels: np.ndarray, where: str) -> None:
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != spec.image_shape:
        raise ValueError(
            f"{where}: expected {spec.title} images as uint8 (N, {spec.image_shape[0]}, {spec.image_shape[1]}), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{where}: expected labels as uint8 (N,), got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{where}: {len(images)} images but {len(labels)} labels")
    if labels.size and labels.max() >= spec.num_classes:
        raise ValueError(f"{where}: label {labels.max()} out of range 0..{spec.num_classes - 1}")


def _read_dataset_files(spec: DatasetSpec, files: Mapping[str, Path]) -> dict[str, np.ndarray]:
    arrays = {role: read_idx(files[role]) for role in _ROLES}
    for split in ("train", "test"):
        where = f"{files[split + '_images']} / {files[split + '_labels'].name}"
        _check_split(spec, arrays[f"{split}_images"], arrays[f"{split}_labels"], where)
    return arrays


def load_subset(path: str | os.PathLike = SUBSET_PATH) -> dict[str, np.ndarray]:
    """The shipped Fashion-MNIST subset as uint8 arrays ``train_images`` (N, 28, 28),
    ``train_labels`` (N,), ``test_images``, ``test_labels``, plus ``train_indices`` and
    ``test_indices``: where each example sits in the full upstream files."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    missing = [role for role in _ROLES if role not in arrays]
    if missing:
        raise ValueError(f"{path}: not an xbarsim dataset subset, missing arrays {missing}")
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        _check_split(DATASETS["fashion-mnist"], images, labels, f"{path} ({split})")
    return arrays


def _how_to_get(spec: DatasetSpec) -> str:
    ways = []
    if spec.install_hint:
        ways.append(f"`{spec.install_hint}`")
    ways.append(f"`xbarsim.experiments.data.datasets.download_dataset({spec.name!r})` (into {_cache_for_message(spec)})")
    ways.append(f"`load_dataset({spec.name!r}, allow_download=True)`")
    ways.append(f"`--data-dir DIR` / ${DATA_ROOT_ENV} pointing at a directory with the four IDX files")
    return ", or ".join(ways)


def _cache_for_message(spec: DatasetSpec) -> str:
    try:
        return str(user_cache_dir(spec.name))
    except RuntimeError:
        return "the user cache"


def _as_tensors(images: np.ndarray, labels: np.ndarray, flatten: bool) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = torch.from_numpy(images).to(torch.float32).div_(255.0)
    shape = (len(images), -1) if flatten else (len(images), 1, *images.shape[1:])
    return pixels.reshape(shape), torch.from_numpy(labels.astype(np.int64))


def load_dataset(
    name: str = "fashion-mnist",
    data_dir: str | os.PathLike | None = None,
    allow_download: bool = False,
    subset_fallback: bool = True,
    flatten: bool = True,
) -> DatasetBundle:
    """Load MNIST or Fashion-MNIST into memory as a :class:`DatasetBundle`.

    Looks the dataset up with :func:`find_dataset`: in ``data_dir`` alone when it
    is given (its absence is then an error), else ``$XBARSIM_DATA``, then the user
    cache, then the Debian package for Fashion-MNIST. If no complete copy is found:

    * ``allow_download=True``: download it into the user cache with
      :func:`download_dataset` (a failed download raises; there is no fallback);
    * otherwise, for Fashion-MNIST with ``subset_fallback=True``: use the shipped
      subset and log a warning saying so and how to get the full set;
    * otherwise raise ``FileNotFoundError`` listing every place searched and how
      to get the data.

    A copy that is found but corrupt raises ``ValueError``; it is never skipped.
    """
    spec = dataset_spec(name)
    lookup = find_dataset(spec.name, data_dir)
    is_subset = False
    if lookup.found:
        arrays = _read_dataset_files(spec, lookup.files)
        source = str(lookup.directory)
    elif allow_download:
        log.info("%s not found locally (%s); downloading", spec.title, "; ".join(lookup.searched))
        directory = download_dataset(spec.name)
        files = {role: directory / spec.files[role].file_name for role in _ROLES}
        arrays = _read_dataset_files(spec, files)
        source = str(directory)
    elif subset_fallback and spec.subset_path is not None and data_dir is None:
        arrays = load_subset(spec.subset_path)
        source, is_subset = f"subset:{spec.subset_path}", True
        log.info("%s lookup: %s", spec.title, "; ".join(lookup.searched))
        log.warning(
            "%s: no full copy found, using the shipped subset (%d train / %d test images); for the full set use %s",
            spec.title, len(arrays["train_labels"]), len(arrays["test_labels"]), _how_to_get(spec),
        )
    else:
        note = "" if not spec.subset_path else \
            f" in the data_dir you named, {data_dir} (so nothing else was tried)" if data_dir is not None else \
            " (subset_fallback=False, so the shipped subset was not used)"
        raise FileNotFoundError(
            f"{spec.title} not found{note}. Searched: "
            + "; ".join(lookup.searched)
            + f". Get it with {_how_to_get(spec)}."
        )
    train_images, train_labels = _as_tensors(arrays["train_images"], arrays["train_labels"], flatten)
    test_images, test_labels = _as_tensors(arrays["test_images"], arrays["test_labels"], flatten)
    return DatasetBundle(
        spec.name, train_images, train_labels, test_images, test_labels, spec.class_names, source, is_subset
    )


def make_loaders(
    bundle: DatasetBundle,
    batch_size: int,
    seed: int,
    *,
    test_batch_size: int | None = None,
    drop_last: bool = False,
) -> tuple[DataLoader, DataLoader]:
    """Train and test ``DataLoader`` s over the in-memory tensors of ``bundle``.

    The training loader reshuffles every epoch from a ``torch.Generator`` seeded
    with ``seed``: two loaders made with the same seed give identical batches,
    epoch after epoch. The test loader keeps file order. Each batch is an
    ``(images, labels)`` pair gathered with one tensor index (a ``BatchSampler``
    as the sampler, so ``loader.batch_size`` is ``None``), far faster than
    collating examples one by one.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    test_batch_size = batch_size if test_batch_size is None else test_batch_size
    if test_batch_size < 1:
        raise ValueError(f"test_batch_size must be >= 1, got {test_batch_size}")
    generator = torch.Generator().manual_seed(int(seed))
    train, test = bundle.train_dataset(), bundle.test_dataset()
    train_batches = BatchSampler(RandomSampler(train, generator=generator), batch_size, drop_last)
    test_batches = BatchSampler(SequentialSampler(test), test_batch_size, drop_last=False)
    return (
        DataLoader(train, sampler=train_batches, batch_size=None),
        DataLoader(test, sampler=test_batches, batch_size=None),
    )
