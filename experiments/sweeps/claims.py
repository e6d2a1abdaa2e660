"""Point claims: several ``xbarsim sweep`` processes on one file share its points.

Before a sweep process computes a point it *claims* it: a small JSON file
``<output>.claims/<key>.claim`` records the claimant's host, pid (and the pid's
start time, where ``/proc`` has it, so a reused pid is not mistaken for the
claimant), when the claim was made and when it was last renewed.  The claimant
renews its claims every :data:`RENEW_S` seconds (or a third of the timeout, if
shorter) while their points run, and deletes a claim once its point is written
to the HDF5 file (complete or failed), so the file, not the claim, says a point
is done.

A claim is *stale*, and may be taken over, when

* its process is gone: same host, and that pid is not alive (or is alive but
  started at another time: a reused pid); or
* ``timeout`` is set and the claim has not been renewed for ``timeout``
  seconds, whatever host holds it.  This is the only way to take over a claim
  held by another host, whose processes this one cannot see (``--claim-timeout``);
  the hosts' clocks must agree to well within the timeout.

Every decision (read the claim, check the point in the file, write the claim)
is made under an exclusive ``flock`` on ``<output>.claims/.lock``, so two
processes never both claim one point.  ``flock`` works across hosts on NFSv4
and Lustre/GPFS mounted with locking; a file system without locks breaks the
sharing (and the HDF5 file's own locking).

A process killed with SIGKILL leaves its claims behind; they are stale at once
for the processes on its host (dead pid), and after ``timeout`` for the others.
"""
from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

__all__ = ["Claim", "ClaimBoard", "CLAIMED", "HELD", "DONE", "RENEW_S", "process_start_time", "pid_alive"]

log = logging.getLogger(__name__)

CLAIMED, HELD, DONE = "claimed", "held", "done"
RENEW_S = 30.0


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (``/proc/PID/stat`` field 22), or None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return int(stat[stat.rindex(b")") + 2:].split()[19])  # fields after "(comm)" start at field 3
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: int, start_time: int | None = None) -> bool:
    """Whether process ``pid`` exists on this host (and, if ``start_time`` is given and
    readable, is the same process and not a later one that reused the pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    if start_time is not None:
        now = process_start_time(pid)
        if now is not None and now != start_time:
            return False
    return True


@dataclasses.dataclass(frozen=True)
class Claim:
    """Who computes a point: host, pid (and its start time), claim and renewal times (Unix seconds)."""

    host: str
    pid: int
    pid_start: int | None
    claimed: float
    renewed: float
    token: str

    def stale_reason(self, timeout: float | None, now: float) -> str:
        """Why this claim may be taken over ("" if it may not)."""
        if self.host == socket.gethostname() and not pid_alive(self.pid, self.pid_start):
            return f"its process {self.host}:{self.pid} is gone"
        if timeout is not None and now - self.renewed > timeout:
            return f"not renewed for {now - self.renewed:.0f} s > --claim-timeout {timeout:g} s"
        return ""

    def can_go_stale(self, timeout: float | None) -> bool:
        """Whether this process could ever see the claim go stale (same host, or a timeout is set)."""
        return self.host == socket.gethostname() or timeout is not None


class ClaimBoard:
    """The claims of one sweep file (see module docstring)."""

    def __init__(self, sweep_path: str | Path, timeout: float | None = None):
        if timeout is not None and not timeout > 0:
            raise ValueError(f"claim timeout = {timeout!r} must be > 0 seconds (or None: no timeout)")
        self.path = Path(sweep_path)
        self.dir = self.path.with_name(self.path.name + ".claims")
        self.timeout = timeout
        self.renew_every = RENEW_S if timeout is None else min(RENEW_S, timeout / 3)
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.pid_start = process_start_time(self.pid)
        self.mine: dict[str, Claim] = {}
        self._last_renewal = time.time()

    @contextmanager
    def locked(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _file(self, key: str) -> Path:
        return self.dir / f"{key}.claim"

    def read(self, key: str) -> Claim | None:
        try:
            return Claim(**json.loads(self._file(key).read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:  # a claim file cut short by a kill: treat as gone
            log.info("claim file %s is unreadable (%s); ignoring it", self._file(key), exc)
            return None

    def _write(self, key: str, claim: Claim) -> None:
        tmp = self.dir / f".{key}.{self.pid}.tmp"
        tmp.write_text(json.dumps(dataclasses.asdict(claim)))
        os.replace(tmp, self._file(key))  # atomic: a reader sees the old claim or the new one

    def try_claim(self, key: str, still_todo: Callable[[], bool]) -> str:
        """Claim point ``key`` for this process.

        Returns :data:`CLAIMED`, :data:`HELD` (another live claim; try later) or
        :data:`DONE` (``still_todo()`` says the file no longer needs it, e.g.
        another process wrote it).  ``still_todo`` is called under the lock,
        only when the point is free or its claim is stale.
        """
        with self.locked():
            now = time.time()
            old = self.read(key)
            if old is not None and old.token not in {c.token for c in self.mine.values()}:
                why = old.stale_reason(self.timeout, now)
                if not why:
                    return HELD
                log.info("point %s: taking over the claim of %s:%d (%s)", key, old.host, old.pid, why)
            if not still_todo():
                if old is not None:
                    self._file(key).unlink(missing_ok=True)
                return DONE
            claim = Claim(self.host, self.pid, self.pid_start, now, now, uuid.uuid4().hex)
            self._write(key, claim)
            self.mine[key] = claim
            return CLAIMED

    def holder(self, key: str) -> Claim | None:
        """The current claim of ``key`` (None if unclaimed)."""
        return self.read(key)

    def release(self, key: str) -> None:
        """Delete this process's claim of ``key`` (after its point was written)."""
        claim = self.mine.pop(key, None)
        if claim is None:
            return
        with self.locked():
            current = self.read(key)
            if current is not None and current.token == claim.token:
                self._file(key).unlink(missing_ok=True)

    def release_all(self) -> None:
        for key in list(self.mine):
            self.release(key)

    def renew_due(self) -> None:
        """Renew this process's claims if :attr:`renew_every` seconds have passed since the last renewal."""
        now = time.time()
        if not self.mine or now - self._last_renewal < self.renew_every:
            return
        self._last_renewal = now
        with self.locked():
            for key, claim in list(self.mine.items()):
                current = self.read(key)
                if current is None or current.token != claim.token:
                    log.warning("point %s: this process's claim was taken over by %s (it was not renewed in "
                                "time); both may compute it", key,
                                "nobody" if current is None else f"{current.host}:{current.pid}")
                    continue
                self.mine[key] = dataclasses.replace(claim, renewed=now)
                self._write(key, self.mine[key])
