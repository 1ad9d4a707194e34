"""Downloads (and local-mirror copies) that either complete verified or leave nothing.

``fetch_file`` streams a URL (or copies a mirror path) to a temporary file next
to the destination, checks it (size against Content-Length, then a verifier
such as ``verify_map``), and only then renames it into place. Transient
failures (timeouts, connection errors, HTTP 5xx/429, a truncated body, a file
that fails verification) are retried with exponential back-off; permanent ones
(HTTP 404 and other 4xx, a missing mirror file) fail at once. Stale temporary
files of a killed run are removed before a new attempt, and a destination that
already exists and verifies is kept, so a rerun after a kill resumes where the
killed run stopped.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import logging
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path

from cryosse.io import atomic_path, is_gzip

log = logging.getLogger(__name__)

USER_AGENT = "cryosse-acquire/1"
_CHUNK = 1 << 20


#: the longest Retry-After (s) a 429/503 answer is waited for; a longer one fails the attempt
MAX_RETRY_AFTER_S = 900.0


class DownloadError(RuntimeError):
    """A download that failed; ``reason`` is a short cause for the rejection table.

    ``permanent`` failures (HTTP 404 and other 4xx, a file missing from the mirror, a file
    that arrives damaged on every attempt) are the entry's: they become rejections.
    Transient ones (timeouts, 5xx, 429, dropped connections, truncated bodies) are the
    archive's: after the retries they fail the job instead, so a maintenance window never
    removes entries for good. ``retry_after`` is the server's Retry-After, in seconds.
    """

    def __init__(self, message: str, reason: str, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class VerifyError(ValueError):
    """A downloaded file that is damaged (corrupt gzip, bad MRC header, mmCIF that does not parse)."""


def is_remote(location: str) -> bool:
    return location.startswith(("http://", "https://", "ftp://"))


def _attempt(location: str, tmp: Path, timeout_s: float) -> None:
    """One transfer of ``location`` into ``tmp``; raises DownloadError."""
    if not is_remote(location):
        src = Path(location.removeprefix("file://"))
        if not src.is_file():
            raise DownloadError(f"{src}: not found in the mirror", "not found in mirror", permanent=True)
        shutil.copyfile(src, tmp)
        return
    req = urllib.request.Request(location, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp, open(tmp, "wb") as out:
            expected = resp.headers.get("Content-Length")
            n = 0
            # read1: whatever has arrived (up to a chunk), so a stalled transfer shows on disk.
            while block := resp.read1(_CHUNK):
                out.write(block)
                n += len(block)
            if expected is not None and n != int(expected):
                raise DownloadError(
                    f"{location}: truncated body ({n} of {expected} bytes)", "truncated download"
                )
    except urllib.error.HTTPError as exc:
        code = exc.code
        permanent = 400 <= code < 500 and code not in (408, 429)
        reason = "HTTP 404 not found" if code == 404 else f"HTTP {code}"
        wait = _retry_after(exc.headers.get("Retry-After")) if code in (429, 503) and exc.headers else None
        raise DownloadError(f"{location}: {reason} ({exc.reason})", reason, permanent, wait) from exc
    except TimeoutError as exc:
        raise DownloadError(f"{location}: timed out after {timeout_s:g} s", "timeout") from exc
    except http.client.IncompleteRead as exc:
        raise DownloadError(f"{location}: truncated body ({exc})", "truncated download") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (TimeoutError, socket.timeout)):
            raise DownloadError(f"{location}: timed out after {timeout_s:g} s", "timeout") from exc
        raise DownloadError(f"{location}: {exc.reason}", f"connection failed ({exc.reason})") from exc
    except (ConnectionError, http.client.HTTPException, OSError) as exc:
        raise DownloadError(f"{location}: {exc}", f"connection failed ({type(exc).__name__})") from exc


def _remove_stale(dest: Path) -> None:
    for stale in dest.parent.glob(f".{dest.name}.*"):
        with contextlib.suppress(OSError):
            stale.unlink()


def fetch_file(
    location: str,
    dest: str | os.PathLike,
    verify: Callable[[Path], None] | None = None,
    retries: int = 4,
    backoff_s: float = 2.0,
    timeout_s: float = 120.0,
    what: str = "",
) -> Path:
    """Fetch ``location`` (URL or mirror path) to ``dest``; verified before it exists.

    An existing ``dest`` that passes ``verify`` is kept (resume after a kill).
    Raises DownloadError (with ``.reason``) once the attempts are spent.
    """
    dest = Path(dest)
    label = what or dest.name
    if dest.exists():
        try:
            if verify is not None:
                verify(dest)
            log.info("%s: %s already present and verified", label, dest)
            return dest
        except VerifyError as exc:
            log.warning("%s: existing %s fails verification (%s); fetching again", label, dest, exc)
            dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(dest)
    last: DownloadError | None = None
    damaged = 0
    for attempt in range(retries + 1):
        if attempt:
            delay = backoff_s * 2 ** (attempt - 1)
            if last is not None and last.retry_after is not None:
                if last.retry_after > MAX_RETRY_AFTER_S:
                    break  # the server asks for longer than a job should wait: fail, rerun later
                delay = max(delay, last.retry_after)
            log.warning("%s: attempt %d failed (%s); retrying in %.1f s", label, attempt, last, delay)
            time.sleep(delay)
        try:
            with atomic_path(dest) as tmp:
                _attempt(location, tmp, timeout_s)
                if verify is not None:
                    try:
                        verify(tmp)
                    except VerifyError as exc:
                        damaged += 1
                        raise DownloadError(f"{location}: {exc}", str(exc).split(": ", 1)[-1]) from exc
            log.info("%s: fetched %s (%d bytes)", label, location, dest.stat().st_size)
            return dest
        except DownloadError as exc:
            last = exc
            if exc.permanent:
                break
    assert last is not None
    # A file that arrived whole but damaged on every attempt is the entry's problem (permanent);
    # anything else that outlasted the retries is the archive's (transient).
    permanent = last.permanent or damaged == attempt + 1
    raise DownloadError(f"{label}: {last}", last.reason, permanent, last.retry_after)


def fetch_bytes(
    location: str, retries: int = 4, backoff_s: float = 2.0, timeout_s: float = 120.0, what: str = ""
) -> bytes:
    """The body of a URL (small responses such as a search), with the same retries."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="cryosse-") as tmp:
        path = fetch_file(location, Path(tmp) / "body", None, retries, backoff_s, timeout_s, what)
        return path.read_bytes()


# --- verifiers: raise VerifyError naming the cause ---------------------------------


def _check_gzip(path: Path) -> None:
    """A gzipped file must decompress to its end (CRC checked); a plain file passes."""
    if not is_gzip(path):
        return
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(_CHUNK):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        raise VerifyError(f"{path.name}: corrupt gzip ({exc})") from exc


def verify_map(path: Path) -> None:
    """A gzipped (or plain) MRC map whose header is sane and whose data are all there."""
    from cryosse.geometry import MapError, read_map

    path = Path(path)
    _check_gzip(path)
    try:
        read_map(path, mmap=True)
    except MapError as exc:
        raise VerifyError(f"{path.name}: bad MRC map ({str(exc).split(': ', 1)[-1]})") from exc


def verify_model(path: Path) -> None:
    """A (gzipped) mmCIF that gemmi parses into a model with atoms."""
    import gemmi

    path = Path(path)
    _check_gzip(path)
    try:
        doc = gemmi.cif.read(str(path))
        st = gemmi.make_structure_from_block(doc.sole_block())
    except (RuntimeError, ValueError, IndexError) as exc:
        raise VerifyError(f"{path.name}: mmCIF does not parse ({exc})") from exc
    if len(st) == 0 or st[0].count_atom_sites() == 0:
        raise VerifyError(f"{path.name}: mmCIF has no atoms")
