"""The versioned session store: SQLite (WAL) for the graph, content-addressed blobs for pixels.

Layout of a store home::

    HOME/store.db            sessions + versions (SQLite, WAL journal)
    HOME/blobs/ab/cdef...    blobs keyed by the sha256 of their decoded pixels (see blobs.py);
                             stores written before schema 2 also hold PNG blobs keyed by
                             the sha256 of their bytes, read as they are

Design decisions (see docs/ARCHITECTURE.md, "Sessions"):

* **Durability.** ``PRAGMA journal_mode=WAL`` and ``synchronous=FULL`` (each
  transaction fsyncs the WAL; measured at well under a millisecond here), plus
  an explicit fsync of every blob file and its directory before the transaction
  that references it. Order of a commit: blobs (temp, fsync, rename, fsync dir)
  -> ``BEGIN IMMEDIATE`` -> re-check the blob files exist (so a concurrent
  ``gc`` cannot have removed a deduplicated blob) -> insert version, move head
  -> ``COMMIT``. A crash anywhere leaves at most an orphan blob or temp file
  (``gc`` removes them), never a version whose blob is missing.
* **Concurrency.** One SQLite connection per ``Store`` object, guarded by a
  lock (``check_same_thread=False``), so a ``Store`` may be shared by threads;
  any number of ``Store`` objects / processes may open one home. Writers take
  ``BEGIN IMMEDIATE`` and wait up to 30 s (busy timeout) for each other.
  ``commit(parent=...)`` is a compare-and-swap on the head: if the head still
  is ``parent`` the new version becomes the head (``branched=False``); if
  another writer moved it, the version is still stored as a child of
  ``parent`` but the head stays put and the returned ``Version`` has
  ``branched=True``.
* **Redo memory.** Each session keeps a small stack of the versions undone
  from (``redo_stack``). ``redo`` goes to the top of that stack when it is a
  child of the head, else to the most recent child. Commits that move the head
  and checkouts clear the stack.
* **Refs.** A version is named by its full id, a unique id prefix of at least
  4 hex characters, its per-session sequence number (an ``int`` or a string of
  digits; a digit-only string is read as a number first and, if no version
  has that number and it is 4+ characters long, as an id prefix), ``"root"``, or
  ``"head"``/``"@"``.
* **Paths.** Session names must match ``SESSION_NAME_PATTERN``; they are never
  used to build a path. Export targets go through ``safe_output_path``, which
  refuses paths inside the store home.
* **Import name clash.** ``import_bundle(path)`` without ``name`` keeps the
  bundle's session name, suffixing ``-2``, ``-3``... when taken; with an
  explicit ``name`` that is taken it raises ``SessionError``. The session id is
  kept unless that id already exists in this store (then a new one is made);
  version ids are always kept (they are unique per session).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from PIL import Image

from imagent.errors import (
    BundleError,
    InputError,
    InternalError,
    MaskError,
    NothingToRedo,
    NothingToUndo,
    SessionConflict,
    SessionError,
    SessionNotFound,
    StoreCorruptError,
    UnsafePathError,
    UsageError,
    VersionNotFound,
)

from . import bundle as _bundle
from .blobs import (
    BlobDir,
    EncodedBlob,
    blob_problem,
    encode_alpha,
    encode_exact_original,
    encode_image,
    encode_mask,
    encode_original,
    pixel_key,
    portable_blob,
)

__all__ = [
    "Store", "Session", "Version", "DiffResult", "ReplayReport", "EncodedBlob",
    "encode_image", "encode_mask", "encode_alpha", "pixel_digest",
    "safe_output_path", "validate_session_name", "SESSION_NAME_PATTERN",
]

# 2: blobs keyed by their pixels (blobs.py); a schema-1 store is opened and upgraded in
# place (its PNG blobs stay valid), and an older imagent then refuses it instead of
# reporting every new blob as damaged.
SCHEMA_VERSION = 2
BUSY_TIMEOUT_S = 30.0
REDO_STACK_MAX = 256
TEMP_GRACE_S = 15 * 60.0
SESSION_NAME_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$"
_NAME_RE = re.compile(SESSION_NAME_PATTERN)
_HEX_RE = re.compile(r"^[0-9a-f]+$")
_SESSIONS_HINT = "Run `imagent sessions` to list the sessions in this store."
_LOG_HINT = "Use a version number from `imagent log`, 'head', 'root', or at least 4 characters of a version id."
DIFF_AMPLIFY = 4


# --------------------------------------------------------------------------- values
@dataclass(frozen=True)
class Session:
    id: str
    name: str
    head_id: str
    root_id: str
    created_at: str
    updated_at: str
    source: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Version:
    id: str
    session_id: str
    seq: int
    parent_id: str | None
    request: str
    tool_calls: list
    image_hash: str
    mask_hash: str | None
    alpha_hash: str | None
    width: int
    height: int
    metrics: dict
    backends: dict
    seed: int | None
    timings: dict
    created_at: str
    kind: str
    branched: bool = False

    def __hash__(self) -> int:  # the dict/list fields are not hashable; identity is (session, id)
        return hash((self.session_id, self.id))

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def is_root(self) -> bool:
        return self.parent_id is None

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "session_id": self.session_id, "seq": self.seq, "parent_id": self.parent_id,
            "request": self.request, "tool_calls": json.loads(json.dumps(self.tool_calls)),
            "image_hash": self.image_hash, "mask_hash": self.mask_hash, "alpha_hash": self.alpha_hash,
            "width": self.width, "height": self.height,
            "metrics": json.loads(json.dumps(self.metrics)), "backends": json.loads(json.dumps(self.backends)),
            "seed": self.seed, "timings": json.loads(json.dumps(self.timings)),
            "created_at": self.created_at, "kind": self.kind, "branched": self.branched,
        }


@dataclass(frozen=True)
class DiffResult:
    """Pixel difference of two versions. ``bbox`` is (x0, y0, x1, y1) with x1/y1 exclusive."""

    image: Image.Image  # RGB visualisation: |a - b| * DIFF_AMPLIFY, clipped
    changed_fraction: float  # pixels whose max channel |diff| > 0, over all compared pixels
    changed_fraction_over_8: float  # ... > 8 levels
    mean_abs: float  # mean |diff| over all channels and compared pixels, 0..255
    max_abs: int
    bbox: tuple[int, int, int, int] | None
    size_changed: bool
    size_a: tuple[int, int] = (0, 0)
    size_b: tuple[int, int] = (0, 0)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"changed_fraction": self.changed_fraction, "changed_fraction_over_8": self.changed_fraction_over_8,
                "mean_abs": self.mean_abs, "max_abs": self.max_abs,
                "bbox": list(self.bbox) if self.bbox else None, "size_changed": self.size_changed,
                "size_a": list(self.size_a), "size_b": list(self.size_b), "note": self.note}


@dataclass
class ReplayReport:
    """Result of ``Store.replay``: one dict per replayed version on the path root -> head.

    Iterating (or ``rows``/``steps``) gives one dict per step:
    ``{"id", "seq", "expected_hash", "got_hash", "match"}`` (plus ``"error"``
    if the runner raised an imagent error; replay stops there; plus
    ``got_alpha_hash``/``expected_alpha_hash`` when the runner returns ``(image, alpha)``,
    and then ``match`` needs both). Hashes are ``pixel_digest`` values;
    ``expected_hash``/``match`` are None unless ``verify``.
    """

    session_id: str
    head_id: str
    verified: bool
    steps: list[dict] = field(default_factory=list)
    image: Image.Image | None = None  # the replayed head image

    @property
    def ok(self) -> bool:
        return all(s.get("match") is not False and "error" not in s for s in self.steps)

    @property
    def rows(self) -> list[dict]:  # alias of ``steps``; the report also iterates over them
        return self.steps

    def __iter__(self):
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, i):
        return self.steps[i]

    @property
    def mismatches(self) -> list[dict]:
        return [s for s in self.steps if s.get("match") is False]

    def to_dict(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "head_id": self.head_id, "verified": self.verified,
                "ok": self.ok, "steps": [dict(s) for s in self.steps]}


# --------------------------------------------------------------------------- helpers
def pixel_digest(image: Image.Image) -> str:
    """sha256 of mode + size + raw pixel bytes (independent of any file encoding).

    This is the blob key of the image (``blobs.pixel_key``): ``Version.image_hash ==
    pixel_digest(store.load_image(version))`` for every version written by schema 2.
    """
    return pixel_key(image.mode, image.width, image.height, image.tobytes())


def validate_session_name(name: Any) -> str:
    """Return ``name`` if it is a safe session name, else raise ``UnsafePathError``."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or "\n" in name:
        raise UnsafePathError(
            f"Session name {name!r} is not allowed.",
            hint="Use 1-64 characters from letters, digits, '-', '_' and '.', not starting with a dot "
                 f"(pattern {SESSION_NAME_PATTERN}).")
    return name


def safe_output_path(path: str | os.PathLike, *, must_not_exist: bool = False,
                     forbidden_roots: Iterable[str | os.PathLike] = ()) -> Path:
    """Check an output file path given by a user; return it absolute and resolved.

    Refused with ``UnsafePathError``: empty or NUL-containing paths, existing
    directories or non-regular files, a missing parent folder, an existing file
    when ``must_not_exist``, and anything inside one of ``forbidden_roots`` (after
    resolving ``..`` and symlinks) -- e.g. the store home.
    """
    raw = os.fspath(path)
    if isinstance(raw, bytes):
        raw = os.fsdecode(raw)
    if not raw.strip() or "\x00" in raw:
        raise UnsafePathError(f"Output path {raw!r} is empty or contains a NUL byte.",
                              hint="Give a file path such as ./photo-session.zip.")
    target = Path(raw).expanduser().resolve(strict=False)
    for root in forbidden_roots:
        r = Path(root).expanduser().resolve(strict=False)
        if target == r or r in target.parents:
            raise UnsafePathError(f"Output path {raw!r} points inside the session store ({r}).",
                                  hint="Write exports outside the store folder (IMAGENT_HOME).")
    if target.is_dir():
        raise UnsafePathError(f"Output path {raw!r} is a directory.",
                              hint="Give a file name inside it, e.g. DIR/session.zip.")
    if target.exists():
        if must_not_exist:
            raise UnsafePathError(f"Output file {raw!r} already exists.",
                                  hint="Choose another name or remove the file first.")
        if not target.is_file():
            raise UnsafePathError(f"Output path {raw!r} exists and is not a regular file.",
                                  hint="Choose a regular file path.")
    if not target.parent.is_dir():
        raise UnsafePathError(f"The folder of output path {raw!r} does not exist ({target.parent}).",
                              hint="Create the folder first or choose an existing one.")
    return target


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return obj.item()
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy array
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)
    except (TypeError, ValueError) as exc:
        raise InputError(f"Cannot store {what}: {exc}.", hint=f"Pass {what} as plain JSON values.") from exc


def _norm_tool_calls(tool_calls: Iterable[Any]) -> list[dict]:
    out = []
    for tc in tool_calls or ():
        if hasattr(tc, "to_json_dict"):
            tc = tc.to_json_dict()
        elif hasattr(tc, "model_dump"):
            tc = tc.model_dump()
        if not isinstance(tc, dict) or not isinstance(tc.get("name"), str):
            raise InputError(f"A tool call must be a {{'name', 'args'}} dict; got {tc!r}.",
                             hint="Pass ToolCall.to_json_dict() values.")
        out.append({"name": tc["name"], "args": dict(tc.get("args") or {})})
    return out


def _check_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int) and not hasattr(seed, "__index__"):
        raise InputError(f"Seed {seed!r} is not an integer.", hint="Pass an int seed or None.")
    seed = int(seed)
    if not -(2 ** 63) <= seed < 2 ** 63:
        raise InputError(f"Seed {seed} does not fit in 64 bits.", hint="Use a seed below 2**63.")
    return seed


_VCOLS = ("id", "session_id", "seq", "parent_id", "request", "tool_calls", "image_hash", "mask_hash",
          "alpha_hash", "width", "height", "metrics", "backends", "seed", "timings", "created_at", "kind",
          "branched")
_VSEL = ", ".join(f"v.{c}" for c in _VCOLS)
_SCOLS = ("id", "name", "head_id", "root_id", "created_at", "updated_at", "source", "redo_stack")
_SSEL = ", ".join(_SCOLS)


def _row_to_version(r: tuple) -> Version:
    return Version(id=r[0], session_id=r[1], seq=r[2], parent_id=r[3], request=r[4],
                   tool_calls=json.loads(r[5]), image_hash=r[6], mask_hash=r[7], alpha_hash=r[8],
                   width=r[9], height=r[10], metrics=json.loads(r[11]), backends=json.loads(r[12]),
                   seed=r[13], timings=json.loads(r[14]), created_at=r[15], kind=r[16], branched=bool(r[17]))


def _row_to_session(r: tuple) -> Session:
    return Session(id=r[0], name=r[1], head_id=r[2], root_id=r[3], created_at=r[4], updated_at=r[5], source=r[6])


def _key_metrics(metrics: dict, limit: int = 3) -> list[str]:
    """Up to ``limit`` short ``name=value`` figures for a log line (nested dicts looked into once)."""
    flat: list[tuple[str, Any]] = []
    for k, val in metrics.items():
        if isinstance(val, dict):
            flat.extend((str(k2), v2) for k2, v2 in val.items())
        else:
            flat.append((str(k), val))
    nums = [(k, val) for k, val in flat if isinstance(val, (int, float)) and not isinstance(val, bool)]
    nums.sort(key=lambda kv: 0 if kv[0] == "changed_fraction" else 1)  # stable: otherwise keep order
    out, seen = [], set()
    for k, val in nums:
        if k in seen:
            continue
        seen.add(k)
        if k == "changed_fraction":
            out.append(f"changed={val:.1%}")
        else:
            out.append(f"{k}={val:.3g}" if isinstance(val, float) else f"{k}={val}")
        if len(out) == limit:
            break
    return out


def _auto_name_stem(source: str | None) -> str:
    stem = ""
    if source:
        base = re.split(r"[\\/]", str(source).rstrip("/\\"))[-1]
        if "." in base.lstrip("."):
            base = base[: base.rfind(".")]
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip(".-")[:48]
    return stem or "session"


class _BlobGone(Exception):
    """A blob vanished (concurrent gc) between writing it and the transaction: rewrite and retry."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    head_id     TEXT NOT NULL,
    root_id     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    source      TEXT,
    redo_stack  TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS sessions_updated ON sessions(updated_at);
CREATE TABLE IF NOT EXISTS versions (
    session_id  TEXT NOT NULL,
    id          TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    parent_id   TEXT,
    request     TEXT NOT NULL,
    tool_calls  TEXT NOT NULL,
    image_hash  TEXT NOT NULL,
    mask_hash   TEXT,
    alpha_hash  TEXT,
    width       INTEGER NOT NULL,
    height      INTEGER NOT NULL,
    metrics     TEXT NOT NULL,
    backends    TEXT NOT NULL,
    seed        INTEGER,
    timings     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    branched    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS versions_seq ON versions(session_id, seq);
CREATE INDEX IF NOT EXISTS versions_parent ON versions(session_id, parent_id, seq);
CREATE INDEX IF NOT EXISTS versions_id ON versions(id);
"""


# --------------------------------------------------------------------------- the store
class Store:
    """A session store rooted at ``home`` (see the module docstring)."""

    def __init__(self, home: str | os.PathLike) -> None:
        raw = os.fspath(home)
        if not str(raw).strip() or "\x00" in str(raw):
            raise UnsafePathError(f"Store location {raw!r} is empty or contains a NUL byte.",
                                  hint="Set IMAGENT_HOME to a folder path.")
        self.home = Path(raw).expanduser().resolve(strict=False)
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise SessionError(f"Store location {str(self.home)!r} exists and is not a folder.",
                               hint="Set IMAGENT_HOME to a folder (it is created if missing).") from None
        self.db_path = self.home / "store.db"
        self.blobs = BlobDir(self.home / "blobs")
        self._lock = threading.RLock()
        self._closed = False
        try:
            self._conn = sqlite3.connect(str(self.db_path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            self._set_wal()
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=OFF")
            with self._write() as c:
                uv = c.execute("PRAGMA user_version").fetchone()[0]
                if uv > SCHEMA_VERSION:
                    raise StoreCorruptError(
                        f"The store at {self.home} uses schema {uv}; this imagent knows up to {SCHEMA_VERSION}.",
                        hint="Upgrade imagent, or point IMAGENT_HOME elsewhere.")
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                if uv < SCHEMA_VERSION:
                    c.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001
                pass
            raise StoreCorruptError(f"The session database {self.db_path} cannot be opened: {exc}.",
                                    hint="Move the damaged store aside or set IMAGENT_HOME to a new folder; "
                                         "sessions exported as bundles can be imported again.") from exc

    # ------------------------------------------------------------------ plumbing
    def _set_wal(self) -> None:
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreCorruptError(f"Could not switch {self.db_path} to WAL mode (got {mode}).",
                                            hint="Put the store on a local filesystem.")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError("This Store is closed.", hint="Open a new Store(home).")

    @contextmanager
    def _write(self):
        with self._lock:
            self._check_open()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise SessionConflict(
                        f"The session store is busy: another process held it for over {BUSY_TIMEOUT_S:.0f} s.",
                        hint="Retry; if it persists, look for a stuck imagent process.") from exc
                raise
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    @contextmanager
    def _read(self):
        with self._lock:
            self._check_open()
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.home)!r})"

    # ------------------------------------------------------------------ lookups
    def _session_row(self, c: sqlite3.Connection, ref: Session | str) -> tuple:
        if isinstance(ref, Session):
            row = c.execute(f"SELECT {_SSEL} FROM sessions WHERE id=?", (ref.id,)).fetchone()
            if row is None:
                raise SessionNotFound(f"Session {ref.name!r} no longer exists in {self.home}.", hint=_SESSIONS_HINT)
            return row
        if not isinstance(ref, str):
            raise UsageError(f"A session is named by a Session or a string, not {type(ref).__name__}.")
        row = c.execute(f"SELECT {_SSEL} FROM sessions WHERE name=?", (ref,)).fetchone()
        if row is None:
            row = c.execute(f"SELECT {_SSEL} FROM sessions WHERE id=?", (ref,)).fetchone()
        if row is None and len(ref) >= 4 and _HEX_RE.match(ref):
            rows = c.execute(f"SELECT {_SSEL} FROM sessions WHERE id >= ? AND id < ? LIMIT 2",
                             (ref, ref + "g")).fetchall()
            if len(rows) == 1:
                row = rows[0]
        if row is None:
            n = c.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
            where = f"in {self.home}" + (" (the store has no sessions yet)" if n == 0 else "")
            raise SessionNotFound(f"No session named {ref!r} {where}.", hint=_SESSIONS_HINT)
        return row

    def _version_row(self, c: sqlite3.Connection, sid: str, vid: str) -> tuple | None:
        return c.execute(f"SELECT {_VSEL} FROM versions v WHERE v.session_id=? AND v.id=?", (sid, vid)).fetchone()

    def _resolve(self, c: sqlite3.Connection, srow: tuple, ref: Any) -> tuple:
        sid, sname = srow[0], srow[1]
        if isinstance(ref, Version):
            ref = ref.id
        row = None
        if isinstance(ref, bool) or ref is None:
            raise VersionNotFound(f"{ref!r} does not name a version of session {sname!r}.", hint=_LOG_HINT)
        if isinstance(ref, int):
            row = c.execute(f"SELECT {_VSEL} FROM versions v WHERE v.session_id=? AND v.seq=?",
                            (sid, ref)).fetchone()
        elif isinstance(ref, str):
            key = ref.strip().lower()
            if key == "root":
                row = self._version_row(c, sid, srow[3])
            elif key in ("head", "@"):
                row = self._version_row(c, sid, srow[2])
            elif len(key) == 32 and _HEX_RE.match(key):
                row = self._version_row(c, sid, key)
            elif key.isdigit() and key.isascii():
                row = c.execute(f"SELECT {_VSEL} FROM versions v WHERE v.session_id=? AND v.seq=?",
                                (sid, int(key))).fetchone()
            if row is None and 4 <= len(key) < 32 and _HEX_RE.match(key):
                rows = c.execute(f"SELECT {_VSEL} FROM versions v WHERE v.session_id=? AND v.id >= ? AND v.id < ? "
                                 "LIMIT 2", (sid, key, key + "g")).fetchall()
                if len(rows) > 1:
                    raise VersionNotFound(f"Version prefix {ref!r} is ambiguous in session {sname!r}.",
                                          hint="Give more characters of the id, or use the version number.")
                row = rows[0] if rows else None
        else:
            raise UsageError(f"A version is named by an id, a number or 'head'/'root', not {type(ref).__name__}.")
        if row is None:
            raise VersionNotFound(f"Session {sname!r} has no version {ref!r}.", hint=_LOG_HINT)
        return row

    def _path_rows(self, c: sqlite3.Connection, sid: str, vid: str) -> list[tuple]:
        """Version rows from the root to ``vid`` (inclusive), in order."""
        return c.execute(
            "WITH RECURSIVE path(id, depth) AS ("
            " SELECT ?, 0"
            " UNION ALL"
            " SELECT v.parent_id, path.depth + 1 FROM versions v JOIN path"
            "   ON v.session_id = ? AND v.id = path.id WHERE v.parent_id IS NOT NULL)"
            f" SELECT {_VSEL} FROM path JOIN versions v ON v.session_id = ? AND v.id = path.id"
            " ORDER BY path.depth DESC", (vid, sid, sid)).fetchall()

    # ------------------------------------------------------------------ sessions
    def create_session(self, image: Image.Image | EncodedBlob, *, name: str | None = None,
                       alpha: Image.Image | EncodedBlob | None = None, source: str | None = None,
                       seed: int | None = None, original: bytes | str | os.PathLike | None = None,
                       original_exact: bool = False) -> Session:
        """A new session whose root version (seq 0, request ``"open <source>"``) holds ``image``.

        ``original``: the file ``image`` was loaded from (its bytes or its path). When it
        is a JPEG or WebP (``blobs.ORIGINAL_FORMATS``) that decodes to exactly ``image``'s
        pixels (checked by decoding it), the root blob keeps those bytes as they are
        instead of encoding ``image``; otherwise it is ignored. The key is the same either way.

        ``original_exact=True``: ``original`` is the bytes the loader decoded to exactly
        ``image`` (``LoadedImage.exact_decode`` / ``file_bytes``). An 8-bit RGB PNG, JPEG or
        WebP (``blobs.EXACT_ORIGINAL_FORMATS``) is then kept as is without decoding it
        again (``blobs.encode_exact_original``); not with ``alpha`` (the file's pixels are
        then not the image's), nor when its header disagrees -- then as without the flag.
        """
        if name is not None:
            validate_session_name(name)
        if source is not None and not isinstance(source, str):
            source = os.fspath(source)
        img = None
        if original is not None and isinstance(image, Image.Image):
            if original_exact and alpha is None and isinstance(original, (bytes, bytearray, memoryview)):
                img = encode_exact_original(image, original)
            if img is None:
                img = encode_original(image, original)
        if img is None:
            img = image if isinstance(image, EncodedBlob) else encode_image(image)
        alp = self._alpha_blob(alpha, img)
        seed = _check_seed(seed)
        for b in (img, alp):
            if b is not None:
                self.blobs.write(b.data, b.sha256)
        vid, sid, now = uuid.uuid4().hex, uuid.uuid4().hex, _now()
        request = f"open {source}" if source else "open"
        for _attempt in range(20):
            sname = name or f"{_auto_name_stem(source)}-{secrets.token_hex(3)}"
            try:
                with self._write() as c:
                    self._check_blobs(img, None, alp)
                    c.execute(f"INSERT INTO sessions ({_SSEL}) VALUES (?,?,?,?,?,?,?,'[]')",
                              (sid, sname, vid, vid, now, now, source))
                    c.execute(f"INSERT INTO versions ({', '.join(_VCOLS)}) VALUES "
                              "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                              (vid, sid, 0, None, request, "[]", img.sha256, None,
                               alp.sha256 if alp else None, img.width, img.height, "{}", "{}", seed, "{}",
                               now, "open", 0))
            except sqlite3.IntegrityError:
                if name is not None:
                    raise SessionError(f"A session named {name!r} already exists.",
                                       hint="Pick another name, or continue that session "
                                            "(see `imagent sessions`).") from None
                continue
            except _BlobGone:
                for b in (img, alp):
                    if b is not None:
                        self.blobs.write(b.data, b.sha256)
                continue
            return Session(sid, sname, vid, vid, now, now, source)
        raise InternalError("Could not create the session: a name or blob race kept repeating.",
                            hint="Retry; if it persists, run `imagent verify --all`.")

    def list_sessions(self) -> list[Session]:
        with self._read() as c:
            rows = c.execute(f"SELECT {_SSEL} FROM sessions ORDER BY updated_at DESC, rowid DESC").fetchall()
        return [_row_to_session(r) for r in rows]

    def get_session(self, name_or_id: Session | str) -> Session:
        with self._read() as c:
            return _row_to_session(self._session_row(c, name_or_id))

    def latest_session(self) -> Session | None:
        with self._read() as c:
            row = c.execute(f"SELECT {_SSEL} FROM sessions ORDER BY updated_at DESC, rowid DESC LIMIT 1").fetchone()
        return _row_to_session(row) if row else None

    def delete_session(self, name_or_id: Session | str) -> None:
        """Remove the session and its versions; its blobs become orphans for ``gc``."""
        with self._write() as c:
            srow = self._session_row(c, name_or_id)
            c.execute("DELETE FROM versions WHERE session_id=?", (srow[0],))
            c.execute("DELETE FROM sessions WHERE id=?", (srow[0],))

    def rename_session(self, name_or_id: Session | str, new_name: str) -> Session:
        validate_session_name(new_name)
        try:
            with self._write() as c:
                srow = self._session_row(c, name_or_id)
                c.execute("UPDATE sessions SET name=? WHERE id=?", (new_name, srow[0]))
                row = c.execute(f"SELECT {_SSEL} FROM sessions WHERE id=?", (srow[0],)).fetchone()
        except sqlite3.IntegrityError:
            raise SessionError(f"A session named {new_name!r} already exists.",
                               hint="Pick another name (see `imagent sessions`).") from None
        return _row_to_session(row)

    # ------------------------------------------------------------------ versions
    def _alpha_blob(self, alpha: Any, img: EncodedBlob) -> EncodedBlob | None:
        if alpha is None:
            return None
        alp = alpha if isinstance(alpha, EncodedBlob) else encode_alpha(alpha)
        if (alp.width, alp.height) != (img.width, img.height):
            raise InputError(f"The alpha plane is {alp.width}x{alp.height} but the image is "
                             f"{img.width}x{img.height}.", hint="Pass the alpha that belongs to this image.")
        return alp

    def _check_blobs(self, *blobs: EncodedBlob | None) -> None:
        for b in blobs:
            if b is not None and not self.blobs.exists(b.sha256):
                raise _BlobGone(b.sha256)

    def commit(self, session: Session | str, *, parent: str | Version, image: Image.Image | EncodedBlob,
               mask: Any = None, alpha: Image.Image | EncodedBlob | None = None, request: str = "",
               tool_calls: Iterable[Any] = (), metrics: dict | None = None, backends: dict | None = None,
               seed: int | None = None, timings: dict | None = None, kind: str = "edit") -> Version:
        """Store a new version computed from ``parent``; compare-and-swap on the head (module docstring).

        ``image``/``mask``/``alpha`` may be pre-encoded ``EncodedBlob`` values
        (``encode_image``/``encode_mask``/``encode_alpha``).
        """
        img = image if isinstance(image, EncodedBlob) else encode_image(image)
        if img.kind != "image":
            raise UsageError(f"commit(image=...) got an encoded {img.kind}, not an image.")
        msk = None
        if mask is not None:
            msk = mask if isinstance(mask, EncodedBlob) else encode_mask(mask)
            if (msk.width, msk.height) != (img.width, img.height):
                raise MaskError(f"The mask is {msk.width}x{msk.height} but the image is {img.width}x{img.height}.",
                                hint="A mask must have the size of its image.")
        alp = self._alpha_blob(alpha, img)
        tc_json = _dumps(_norm_tool_calls(tool_calls), "tool_calls")
        m_json = _dumps(dict(metrics or {}), "metrics")
        b_json = _dumps(dict(backends or {}), "backends")
        t_json = _dumps(dict(timings or {}), "timings")
        seed = _check_seed(seed)
        request = str(request or "")
        kind = str(kind or "edit")
        blobs = [b for b in (img, msk, alp) if b is not None]
        for b in blobs:
            self.blobs.write(b.data, b.sha256)
        vid = uuid.uuid4().hex
        for _attempt in range(5):
            now = _now()
            try:
                with self._write() as c:
                    self._check_blobs(*blobs)
                    srow = self._session_row(c, session)
                    sid = srow[0]
                    prow = self._resolve(c, srow, parent)
                    seq = c.execute("SELECT MAX(seq) FROM versions WHERE session_id=?", (sid,)).fetchone()[0] + 1
                    branched = srow[2] != prow[0]
                    c.execute(f"INSERT INTO versions ({', '.join(_VCOLS)}) VALUES "
                              "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                              (vid, sid, seq, prow[0], request, tc_json, img.sha256,
                               msk.sha256 if msk else None, alp.sha256 if alp else None, img.width, img.height,
                               m_json, b_json, seed, t_json, now, kind, int(branched)))
                    if branched:
                        c.execute("UPDATE sessions SET updated_at=? WHERE id=?", (now, sid))
                    else:
                        c.execute("UPDATE sessions SET head_id=?, updated_at=?, redo_stack='[]' WHERE id=?",
                                  (vid, now, sid))
            except _BlobGone:
                for b in blobs:
                    self.blobs.write(b.data, b.sha256)
                continue
            return Version(id=vid, session_id=sid, seq=seq, parent_id=prow[0], request=request,
                           tool_calls=json.loads(tc_json), image_hash=img.sha256,
                           mask_hash=msk.sha256 if msk else None, alpha_hash=alp.sha256 if alp else None,
                           width=img.width, height=img.height, metrics=json.loads(m_json),
                           backends=json.loads(b_json), seed=seed, timings=json.loads(t_json), created_at=now,
                           kind=kind, branched=branched)
        raise SessionConflict("A concurrent garbage collection kept removing this commit's blobs.",
                              hint="Retry the edit once `imagent gc` has finished.")

    def head(self, session: Session | str) -> Version:
        with self._read() as c:
            srow = self._session_row(c, session)
            row = self._version_row(c, srow[0], srow[2])
        if row is None:
            raise StoreCorruptError(f"Session {srow[1]!r} points at a head version that does not exist.",
                                    hint=f"Run `imagent verify --session {srow[1]}`; `checkout` another version "
                                         "to repair the head.")
        return _row_to_version(row)

    def get_version(self, session: Session | str, ref: str | int | Version) -> Version:
        with self._read() as c:
            return _row_to_version(self._resolve(c, self._session_row(c, session), ref))

    def undo(self, session: Session | str) -> Version:
        """Move the head to its parent and remember where we came from (for ``redo``)."""
        with self._write() as c:
            srow = self._session_row(c, session)
            head = self._version_row(c, srow[0], srow[2])
            if head is None:
                raise StoreCorruptError(f"Session {srow[1]!r} has a dangling head.",
                                        hint=f"Run `imagent verify --session {srow[1]}`.")
            if head[3] is None:
                raise NothingToUndo(f"Nothing to undo: session {srow[1]!r} is at its original image "
                                    f"(version 0, {head[0][:8]}).",
                                    hint="Make an edit first, or `checkout N` another version (see `imagent log`).")
            parent = self._version_row(c, srow[0], head[3])
            if parent is None:
                raise StoreCorruptError(f"Version {head[0][:8]} of session {srow[1]!r} has a missing parent.",
                                        hint=f"Run `imagent verify --session {srow[1]}`.")
            stack = json.loads(srow[7] or "[]")
            stack.append(head[0])
            c.execute("UPDATE sessions SET head_id=?, updated_at=?, redo_stack=? WHERE id=?",
                      (parent[0], _now(), json.dumps(stack[-REDO_STACK_MAX:]), srow[0]))
        return _row_to_version(parent)

    def redo(self, session: Session | str) -> Version:
        """Move the head to the child we last undid from, else to its most recent child."""
        with self._write() as c:
            srow = self._session_row(c, session)
            sid, head_id = srow[0], srow[2]
            stack = json.loads(srow[7] or "[]")
            target = None
            if stack:
                top = stack.pop()
                row = self._version_row(c, sid, top)
                if row is not None and row[3] == head_id:
                    target = row
                else:
                    stack = []
            if target is None:
                target = c.execute(f"SELECT {_VSEL} FROM versions v WHERE v.session_id=? AND v.parent_id=? "
                                   "ORDER BY v.seq DESC LIMIT 1", (sid, head_id)).fetchone()
            if target is None:
                seq = c.execute("SELECT seq FROM versions WHERE session_id=? AND id=?", (sid, head_id)).fetchone()
                raise NothingToRedo(f"Nothing to redo: version {seq[0] if seq else '?'} ({head_id[:8]}) of session "
                                    f"{srow[1]!r} has no later edits.",
                                    hint="Undo first, or see `imagent log` and `checkout N` to jump to a version.")
            c.execute("UPDATE sessions SET head_id=?, updated_at=?, redo_stack=? WHERE id=?",
                      (target[0], _now(), json.dumps(stack), sid))
        return _row_to_version(target)

    def checkout(self, session: Session | str, ref: str | int | Version) -> Version:
        with self._write() as c:
            srow = self._session_row(c, session)
            row = self._resolve(c, srow, ref)
            c.execute("UPDATE sessions SET head_id=?, updated_at=?, redo_stack='[]' WHERE id=?",
                      (row[0], _now(), srow[0]))
        return _row_to_version(row)

    def log(self, session: Session | str) -> list[Version]:
        with self._read() as c:
            srow = self._session_row(c, session)
            rows = c.execute(f"SELECT {_VSEL} FROM versions v WHERE v.session_id=? ORDER BY v.seq",
                             (srow[0],)).fetchall()
        return [_row_to_version(r) for r in rows]

    def path(self, session: Session | str, ref: str | int | Version = "head") -> list[Version]:
        """The versions from the root to ``ref`` (default the head), in order."""
        with self._read() as c:
            srow = self._session_row(c, session)
            row = self._resolve(c, srow, ref)
            return [_row_to_version(r) for r in self._path_rows(c, srow[0], row[0])]

    def children(self, session: Session | str, version_id: str | int | Version) -> list[Version]:
        with self._read() as c:
            srow = self._session_row(c, session)
            row = self._resolve(c, srow, version_id)
            rows = c.execute(f"SELECT {_VSEL} FROM versions v WHERE v.session_id=? AND v.parent_id=? "
                             "ORDER BY v.seq", (srow[0], row[0])).fetchall()
        return [_row_to_version(r) for r in rows]

    def log_tree(self, session: Session | str) -> str:
        """A text graph, oldest first; the newest child continues a line, older siblings branch off.

        ::

            o   0 1a2b3c4d  open photo.jpg
            o   1 5e6f7a8b  remove the flag  changed=0.042
            ├─o 2 9c0d1e2f  make it warmer
            │ o 4 3a4b5c6d  crop the left side
            @   3 7e8f9a0b  make it bluer
        """
        versions = self.log(session)
        head_id = self.get_session(session).head_id
        kids: dict[str | None, list[Version]] = {}
        for v in versions:
            kids.setdefault(v.parent_id, []).append(v)
        roots = kids.get(None, [])
        lines: list[tuple[str, Version]] = []
        stack: list[tuple[Version, str, str]] = [(r, "", "") for r in reversed(roots)]
        while stack:
            v, first, cont = stack.pop()
            mark = "@" if v.id == head_id else "o"
            lines.append((f"{first}{mark}", v))
            ch = kids.get(v.id, [])
            if not ch:
                continue
            stack.append((ch[-1], cont, cont))
            for c in reversed(ch[:-1]):
                stack.append((c, cont + "├─", cont + "│ "))
        width = max((len(g) for g, _ in lines), default=1)
        seqw = max((len(str(v.seq)) for v in versions), default=1)
        out = []
        for graph, v in lines:
            text = " ".join((v.request or f"({v.kind})").split())
            if len(text) > 60:
                text = text[:57] + "..."
            extras = _key_metrics(v.metrics)
            if v.branched:
                extras.append("(branched)")
            line = f"{graph.ljust(width)} {str(v.seq).rjust(seqw)} {v.short_id}  {text}"
            if extras:
                line += "  " + " ".join(extras)
            out.append(line.rstrip())
        return "\n".join(out)

    # ------------------------------------------------------------------ pixels
    def load_image(self, version: Version) -> Image.Image:
        """The version's pixels, decoded and checked against the blob key."""
        img = self.blobs.load(version.image_hash, what=f"image of version {version.short_id}")
        return img if img.mode == "RGB" else img.convert("RGB")

    def load_mask(self, version: Version):
        if not version.mask_hash:
            return None
        import numpy as np

        img = self.blobs.load(version.mask_hash, what=f"mask of version {version.short_id}")
        if img.mode != "L":
            img = img.convert("L")
        return np.asarray(img, dtype=np.float32) / np.float32(255.0)

    def load_alpha(self, version: Version) -> Image.Image | None:
        if not version.alpha_hash:
            return None
        img = self.blobs.load(version.alpha_hash, what=f"alpha of version {version.short_id}")
        return img if img.mode == "L" else img.convert("L")

    def diff(self, session: Session | str, ref_a: Any, ref_b: Any) -> DiffResult:
        import numpy as np

        va, vb = self.get_version(session, ref_a), self.get_version(session, ref_b)
        a = np.asarray(self.load_image(va), dtype=np.int16)
        b = np.asarray(self.load_image(vb), dtype=np.int16)
        size_changed = a.shape != b.shape
        h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
        note = ""
        if size_changed:
            note = (f"sizes differ ({va.width}x{va.height} vs {vb.width}x{vb.height}); "
                    f"compared the common top-left {w}x{h} area")
        d = np.abs(a[:h, :w] - b[:h, :w])
        per_px = d.max(axis=2)
        total = max(1, h * w)
        changed = per_px > 0
        bbox = None
        if changed.any():
            ys, xs = np.nonzero(changed.any(axis=1))[0], np.nonzero(changed.any(axis=0))[0]
            bbox = (int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1)
        vis = np.clip(d * DIFF_AMPLIFY, 0, 255).astype(np.uint8)
        return DiffResult(
            image=Image.fromarray(vis, "RGB"),
            changed_fraction=float(changed.sum()) / total,
            changed_fraction_over_8=float((per_px > 8).sum()) / total,
            mean_abs=float(d.mean()) if d.size else 0.0,
            max_abs=int(d.max()) if d.size else 0,
            bbox=bbox, size_changed=size_changed, size_a=(va.width, va.height), size_b=(vb.width, vb.height),
            note=note)

    # ------------------------------------------------------------------ bundles
    def resolve_export_path(self, path: str | os.PathLike, *, must_not_exist: bool = False) -> Path:
        """``safe_output_path`` with this store's home forbidden."""
        return safe_output_path(path, must_not_exist=must_not_exist, forbidden_roots=(self.home,))

    def export_bundle(self, session: Session | str, path: str | os.PathLike) -> Path:
        """Write ``manifest.json`` + ``blobs/<key>`` to a zip at ``path`` (atomically); return the path.

        Every blob is checked against its key first; JPEG/WebP originals travel re-encoded
        (``blobs.portable_blob``) so that another machine's decoders do not matter.
        """
        target = self.resolve_export_path(path)
        with self._read() as c:
            srow = self._session_row(c, session)
            rows = c.execute(f"SELECT {_VSEL} FROM versions v WHERE v.session_id=? ORDER BY v.seq",
                             (srow[0],)).fetchall()
        sess = _row_to_session(srow)
        versions = [_row_to_version(r).to_dict() for r in rows]
        blobs: dict[str, bytes] = {}
        for v in versions:
            for key in (v["image_hash"], v["mask_hash"], v["alpha_hash"]):
                if key and key not in blobs:
                    blobs[key] = portable_blob(self.blobs.read(key), key, what=f"blob {key[:12]}...")
        manifest = {"format": _bundle.FORMAT, "format_version": _bundle.FORMAT_VERSION,
                    "session": sess.to_dict(), "versions": versions,
                    "blobs": {k: len(blobs[k]) for k in sorted(blobs)}}
        return _bundle.write_bundle(target, manifest, blobs)

    def import_bundle(self, path: str | os.PathLike, *, name: str | None = None) -> Session:
        """Import a bundle as a new session (same version ids and graph); see the module docstring."""
        if name is not None:
            validate_session_name(name)
        sess, versions, blobs = _bundle.read_bundle(path)  # every check happens before anything is written
        if name is not None:
            with self._read() as c:
                if c.execute("SELECT 1 FROM sessions WHERE name=?", (name,)).fetchone():
                    raise SessionError(f"A session named {name!r} already exists.",
                                       hint="Import under another name (--name NEW_NAME).")
        base = name
        if base is None:
            if not isinstance(sess["name"], str) or not _NAME_RE.match(sess["name"]):
                raise BundleError(f"The bundle's session name {sess['name']!r} is not a safe session name.",
                                  hint="Import it with an explicit name (--name NEW_NAME).")
            base = sess["name"]
        for key in sorted(blobs):
            self.blobs.write(blobs[key], key)
        for attempt in range(200):
            try:
                with self._write() as c:
                    for key in blobs:
                        if not self.blobs.exists(key):
                            raise _BlobGone(key)
                    sid = sess["id"]
                    if not re.match(r"^[0-9a-f]{32}$", sid) or c.execute(
                            "SELECT 1 FROM sessions WHERE id=?", (sid,)).fetchone():
                        sid = uuid.uuid4().hex
                    sname = base
                    if name is None and attempt:
                        suffix = f"-{attempt + 1}"
                        sname = base[: 64 - len(suffix)] + suffix
                    if c.execute("SELECT 1 FROM sessions WHERE name=?", (sname,)).fetchone():
                        if name is not None:
                            raise SessionError(f"A session named {name!r} already exists.",
                                               hint="Import under another name (--name NEW_NAME).")
                        raise sqlite3.IntegrityError("name taken")
                    c.execute(f"INSERT INTO sessions ({_SSEL}) VALUES (?,?,?,?,?,?,?,'[]')",
                              (sid, sname, sess["head_id"], sess["root_id"], sess["created_at"],
                               sess["updated_at"], sess["source"]))
                    c.executemany(
                        f"INSERT INTO versions ({', '.join(_VCOLS)}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        [(v["id"], sid, v["seq"], v["parent_id"], v["request"], _dumps(v["tool_calls"], "tool_calls"),
                          v["image_hash"], v["mask_hash"], v["alpha_hash"], v["width"], v["height"],
                          _dumps(v["metrics"], "metrics"), _dumps(v["backends"], "backends"), v["seed"],
                          _dumps(v["timings"], "timings"), v["created_at"], v["kind"], int(v["branched"]))
                         for v in versions])
                    row = c.execute(f"SELECT {_SSEL} FROM sessions WHERE id=?", (sid,)).fetchone()
            except sqlite3.IntegrityError:
                continue
            except _BlobGone:
                for key in sorted(blobs):
                    self.blobs.write(blobs[key], key)
                continue
            return _row_to_session(row)
        raise SessionError(f"Could not find a free name for the imported session {base!r}.",
                           hint="Import it with an explicit name (--name NEW_NAME).")

    # ------------------------------------------------------------------ scripts and replay
    def export_script(self, session: Session | str, ref: str | int | Version = "head") -> str:
        """YAML: ``{image: <source>, seed: <root seed>, steps: [requests root -> head, root skipped]}``.

        A step is the request text, or ``{request: ..., seed: N}`` when that request ran
        with a seed other than the root's.

        ``ref`` (default the head) picks another end version for the path.
        """
        import yaml

        path = self.path(session, ref)
        sess = self.get_session(session)
        doc: dict[str, Any] = {"image": sess.source}
        if path[0].seed is not None:
            doc["seed"] = path[0].seed
        # A request made with a seed other than the script's gets its own (the assistant
        # records each request's base seed as metrics["request_seed"]).
        steps: list[Any] = []
        for v in path[1:]:
            seed = v.metrics.get("request_seed") if isinstance(v.metrics, dict) else None
            if seed is not None and seed != doc.get("seed"):
                steps.append({"request": v.request, "seed": seed})
            else:
                steps.append(v.request)
        doc["steps"] = steps
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False)

    def replay(self, session: Session | str, runner: Callable[[Image.Image, Version], Image.Image], *,
               verify: bool = False) -> ReplayReport:
        """Re-run the path root -> head with ``runner``, each step fed the parent's replayed image.

        Never modifies the session. With ``verify`` each replayed image's
        ``pixel_digest`` is compared with the stored one. ``runner`` returns the image, or
        ``(image, alpha)`` to have the version's alpha (None = opaque) checked as well.
        """
        from imagent.errors import ImagentError

        path = self.path(session, "head")
        report = ReplayReport(session_id=path[0].session_id, head_id=path[-1].id, verified=bool(verify))
        current = self.load_image(path[0])
        for v in path[1:]:
            step: dict[str, Any] = {"id": v.id, "seq": v.seq, "expected_hash": None, "got_hash": None,
                                    "match": None}
            if verify:
                step["expected_hash"] = pixel_digest(self.load_image(v))
            try:
                got = runner(current.copy(), v)
            except ImagentError as exc:
                step["error"] = str(exc)
                step["match"] = False if verify else None
                report.steps.append(step)
                break
            # A runner that reproduces transparency returns (image, alpha or None): the alpha
            # is then compared too (``alpha_hash``); a plain image leaves the alpha unchecked.
            with_alpha = isinstance(got, tuple)
            got_alpha = None
            if with_alpha:
                got, got_alpha = got
            if not isinstance(got, Image.Image):
                raise UsageError(f"The replay runner returned {type(got).__name__}, not a PIL image.")
            if got.mode != "RGB":
                got = got.convert("RGB")
            step["got_hash"] = pixel_digest(got)
            if with_alpha:
                step["got_alpha_hash"] = pixel_digest(got_alpha.convert("L")) if got_alpha else None
            if verify:
                step["match"] = step["got_hash"] == step["expected_hash"]
                if with_alpha:
                    expected_alpha = self.load_alpha(v)
                    step["expected_alpha_hash"] = (pixel_digest(expected_alpha)
                                                   if expected_alpha is not None else None)
                    step["match"] = step["match"] and \
                        step["got_alpha_hash"] == step["expected_alpha_hash"]
            report.steps.append(step)
            current = got
        report.image = current
        return report

    # ------------------------------------------------------------------ maintenance
    def gc(self, *, temp_grace_s: float = TEMP_GRACE_S) -> dict:
        """Delete blobs no version references, temp files older than ``temp_grace_s``, and
        previews (``sessions/previews.py``) of images no version has.

        Holds the write lock while it works, so no commit can reference a blob
        between the scan and the delete (commits re-check their blobs under
        the lock and rewrite any that vanished).
        """
        stats = {"blobs_removed": 0, "bytes_freed": 0, "temp_removed": 0, "blobs_kept": 0, "temp_kept": 0}
        now = time.time()
        with self._write() as c:
            referenced = {r[0] for r in c.execute(
                "SELECT image_hash FROM versions UNION SELECT mask_hash FROM versions WHERE mask_hash IS NOT NULL "
                "UNION SELECT alpha_hash FROM versions WHERE alpha_hash IS NOT NULL")}
            for path, key, is_temp in self.blobs.iter_files():
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                if is_temp:
                    if now - st.st_mtime >= temp_grace_s:
                        try:
                            path.unlink()
                            stats["temp_removed"] += 1
                            stats["bytes_freed"] += st.st_size
                        except FileNotFoundError:
                            pass
                    else:
                        stats["temp_kept"] += 1
                    continue
                if key is None:
                    continue  # not ours: leave it
                if key in referenced:
                    stats["blobs_kept"] += 1
                    continue
                try:
                    path.unlink()
                    stats["blobs_removed"] += 1
                    stats["bytes_freed"] += st.st_size
                except FileNotFoundError:
                    pass
        # the chat UI's preview cache: files no version uses any more (sessions/previews.py)
        from imagent.sessions.previews import prune  # noqa: PLC0415 - previews use this module

        pruned = prune(self, temp_grace_s=temp_grace_s)
        stats["previews_removed"] = pruned["removed"]
        stats["bytes_freed"] += pruned["bytes_freed"]
        return stats

    def verify(self) -> list[str]:
        """Integrity problems (missing or damaged blobs, dangling parents/heads); ``[]`` when fine."""
        problems: list[str] = []
        with self._read() as c:
            ic = c.execute("PRAGMA quick_check").fetchall()
            if ic != [("ok",)]:
                problems.extend(f"database: {r[0]}" for r in ic)
            for sid, name, head_id, root_id in c.execute("SELECT id, name, head_id, root_id FROM sessions"):
                head = c.execute("SELECT 1 FROM versions WHERE session_id=? AND id=?", (sid, head_id)).fetchone()
                if head is None:
                    problems.append(f"session {name!r}: head {head_id[:8]} is not one of its versions")
                root = c.execute("SELECT parent_id, seq FROM versions WHERE session_id=? AND id=?",
                                 (sid, root_id)).fetchone()
                if root is None:
                    problems.append(f"session {name!r}: root {root_id[:8]} is not one of its versions")
                elif root[0] is not None or root[1] != 0:
                    problems.append(f"session {name!r}: root {root_id[:8]} has a parent or a non-zero seq")
            for sid, vid, pid in c.execute(
                    "SELECT v.session_id, v.id, v.parent_id FROM versions v LEFT JOIN versions p "
                    "ON p.session_id = v.session_id AND p.id = v.parent_id "
                    "WHERE v.parent_id IS NOT NULL AND p.id IS NULL"):
                problems.append(f"version {vid[:8]} (session {sid[:8]}): dangling parent {pid[:8]}")
            for sid, n in c.execute("SELECT session_id, COUNT(*) FROM versions WHERE parent_id IS NULL "
                                    "GROUP BY session_id HAVING COUNT(*) > 1"):
                problems.append(f"session {sid[:8]}: {n} versions without a parent")
            for (sid,) in c.execute("SELECT DISTINCT v.session_id FROM versions v LEFT JOIN sessions s "
                                    "ON s.id = v.session_id WHERE s.id IS NULL"):
                problems.append(f"versions of unknown session {sid[:8]}")
            refs: dict[str, str] = {}
            for vid, seq, sid, ih, mh, ah in c.execute(
                    "SELECT id, seq, session_id, image_hash, mask_hash, alpha_hash FROM versions"):
                for what, key in (("image", ih), ("mask", mh), ("alpha", ah)):
                    if key and key not in refs:
                        refs[key] = f"{what} of version {seq} ({vid[:8]}, session {sid[:8]})"
        seen: set[str] = set()
        for path, key, is_temp in self.blobs.iter_files():
            if is_temp or key is None:
                continue
            seen.add(key)
            try:
                data = path.read_bytes()
            except OSError as exc:
                problems.append(f"blob {key[:12]}...: unreadable ({exc})")
                continue
            bad = blob_problem(key, data)  # decodes; pixels (legacy blobs: bytes) against the key
            if bad:
                where = refs.get(key, "unreferenced")
                problems.append(f"blob {key[:12]}... ({where}): damaged, does not match the hash ({bad})")
        for key, where in refs.items():
            if key not in seen:
                problems.append(f"blob {key[:12]}... ({where}): missing")
        return problems

    def verify_session(self, session: Session | str) -> dict[str, Any]:
        """Check one session deeply: ``{"session", "id", "versions", "problems"}``.

        For every version: its parent is a version of the session; its image, mask
        and alpha blobs exist, decode to pixels that match their key, and have the declared
        width x height; the session's head and root are among its versions. Each
        problem is ``{"version": seq or None, "id": short id or None, "problem": text}``.
        Tool calls are not checked here (the store does not know the tools;
        ``imagent verify`` checks them against the registry). Never modifies anything.
        """
        from imagent.errors import ImagentError

        sess = self.get_session(session)
        versions = self.log(sess)
        by_id = {v.id: v for v in versions}
        problems: list[dict[str, Any]] = []

        def problem(v: Version | None, text: str) -> None:
            problems.append({"version": v.seq if v else None, "id": v.short_id if v else None, "problem": text})

        if sess.head_id not in by_id:
            problem(None, f"the head {sess.head_id[:8]} is not one of the session's versions")
        if sess.root_id not in by_id:
            problem(None, f"the root {sess.root_id[:8]} is not one of the session's versions")
        decoded: dict[str, tuple[tuple[int, int] | None, str | None]] = {}  # key -> (size, error)

        def blob_size(key: str, what: str) -> tuple[tuple[int, int] | None, str | None]:
            if key not in decoded:
                try:
                    img = self.blobs.load(key, what=what)
                    decoded[key] = (img.size, None)
                except ImagentError as exc:
                    decoded[key] = (None, exc.message)
                except OSError as exc:
                    decoded[key] = (None, f"blob {key[:12]}... is unreadable: {exc}")
            return decoded[key]

        for v in versions:
            if v.parent_id is None:
                if v.seq != 0 or v.id != sess.root_id:
                    problem(v, "has no parent but is not the session's root")
            elif v.parent_id not in by_id:
                problem(v, f"its parent {v.parent_id[:8]} does not exist")
            for what, key in (("image", v.image_hash), ("mask", v.mask_hash), ("alpha", v.alpha_hash)):
                if not key:
                    if what == "image":
                        problem(v, "has no image")
                    continue
                size, error = blob_size(key, f"{what} of version {v.short_id}")
                if error:
                    problem(v, f"{what}: {error}")
                elif size != (v.width, v.height):
                    problem(v, f"{what} is {size[0]}x{size[1]}, the version declares {v.width}x{v.height}")
        return {"session": sess.name, "id": sess.id, "versions": len(versions), "problems": problems}
