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

_ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def xbarsim_version() -> str:
    """Installed version (else pyproject's + ``"+src"``), plus ``+g<commit>`` inside a git checkout."""
    try:
        version = metadata.version("xbarsim")
    except metadata.PackageNotFoundError:
        try:
            version = tomllib.loads((_ROOT / "pyproject.toml").read_text())["project"]["version"] + "+src"
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            version = "unknown"
    try:
        commit = subprocess.run(["git", "-C", str(_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+g{commit}" if commit else version
