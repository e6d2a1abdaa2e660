"""``KEY=VALUE`` on the command line: the one parser behind ``--set`` and ``--filter``.

Every subcommand reads its ``KEY=VALUE`` items here, so ``xbarsim train --set``,
``xbarsim repro --set`` and ``xbarsim results/plot --filter`` give a value the same
type.  ``VALUE`` is read as JSON first (``3`` -> int, ``0.01`` and ``1e-3`` -> float,
``[300, 100]`` -> list, ``{"a": 1}`` -> dict, ``null`` -> None, ``"text"`` -> str);
``true``/``false`` in any case (``True``, ``FALSE``) -> bool, as a Python or TOML
user writes them; anything else is the plain string (``fashion-mnist``,
``SoftBounds``).  An empty value is refused rather than guessed (give ``'""'`` for
the empty string).
"""
from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["parse_value", "parse_assignment", "assignment_type"]


def parse_value(text: str) -> Any:
    """The value of ``text`` (JSON, then a bool in any case, else the string itself)."""
    try:
        return json.loads(text)
    except ValueError:
        low = text.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        return text


def parse_assignment(text: str, flag: str = "--set") -> tuple[str, Any]:
    """``"KEY=VALUE"`` -> ``(KEY, parse_value(VALUE))``; ``ValueError`` naming ``flag`` and the key."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise ValueError(f"{flag} expects FIELD=VALUE, got {text!r}")
    if not raw:
        raise ValueError(f"{flag} {key}: the value is empty (write {key}='\"\"' for an empty string)")
    return key, parse_value(raw)


def assignment_type(flag: str = "--set"):
    """An argparse ``type=`` for ``KEY=VALUE`` items: ``(key, value)``, or argparse's usage error."""
    def parse(text: str) -> tuple[str, Any]:
        try:
            return parse_assignment(text, flag)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc
    parse.__name__ = "KEY=VALUE"
    return parse
