"""Provenance recorded with every result file: which xbarsim wrote it."""
from __future__ import annotations

import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

_ROOT = Path(__file__).resolve().parents[1]  # the source tree's root (holds pyproject.toml in a checkout)


def _is_xbarsim_checkout(root: Path) -> bool:
    """True only for xbarsim's own source tree: its pyproject names the project ``xbarsim``."""
    try:
        return tomllib.loads((root / "pyproject.toml").read_text())["project"]["name"] == "xbarsim"
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError):
        return False


@lru_cache(maxsize=1)
def xbarsim_version() -> str:
    """Installed version, plus ``+g<commit>`` when running from xbarsim's own git checkout.

    An installed wheel lives in site-packages, which may sit inside some other
    git repository (a user's project with its venv): the commit is asked for only
    when the source tree is xbarsim's own checkout, and only of that tree's root.
    """
    try:
        version = metadata.version("xbarsim")
    except metadata.PackageNotFoundError:
        version = "unknown"
    if not _is_xbarsim_checkout(_ROOT):
        return version
    try:
        top = subprocess.run(["git", "-C", str(_ROOT), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
        if not top or Path(top).resolve() != _ROOT:
            return version
        commit = subprocess.run(["git", "-C", str(_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+g{commit}" if commit else version
