"""Atomic file writes: the one helper every package uses (standard library only).

``atomic_write(path, data)`` writes to a temp file in the target's own folder (same
filesystem), fsyncs it, ``os.replace``s it onto ``path`` and fsyncs the folder. Readers
see either the old file or the complete new one, never a partial file; on any error
(KeyboardInterrupt included) the temp file is removed and the old file is untouched. A
crash (SIGKILL, power loss) can leave a temp file behind, never a partial target.

It sits at the namespace root, beside ``errors.py``: a leaf that ``tools`` and
``sessions`` may import. Errors are the plain ``OSError`` (or whatever ``data`` raised);
callers turn them into their own ``ImagentError`` with a hint.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "atomic_write_text", "fsync_dir", "temp_path_for"]

_CREATE_TRIES = 16


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync a folder so a rename or creation inside it is durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_path_for(path: Path, tmp_prefix: str | None = None) -> Path:
    """A fresh temp name beside ``path``: ``<tmp_prefix><pid>-<random>``, by default
    ``.<name>.tmp-<pid>-<random>`` (hidden, and recognisable as a leftover)."""
    prefix = f".{path.name}.tmp-" if tmp_prefix is None else tmp_prefix
    return path.parent / f"{prefix}{os.getpid()}-{secrets.token_hex(6)}"


def atomic_write(path: str | os.PathLike, data: bytes | bytearray | memoryview | Callable[[BinaryIO], object],
                 *, fsync: bool = True, mode: int = 0o666, tmp_prefix: str | None = None) -> Path:
    """Replace ``path`` atomically with ``data`` and return ``path`` as a ``Path``.

    ``data``: bytes, or a callable that writes to the open binary temp file (e.g.
    ``lambda fh: image.save(fh, format="PNG")``; its return value is ignored).
    ``fsync``: fsync the file before the rename and the folder after it (turn off only
    for scratch data). ``mode``: permissions of a new file (the umask applies, as for
    ``open``); an existing file's permissions are kept. ``tmp_prefix``: the temp file's
    name prefix, for callers that clean up leftovers by name (see ``temp_path_for``).
    """
    target = Path(path)
    for attempt in range(_CREATE_TRIES):
        tmp = temp_path_for(target, tmp_prefix)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
            break
        except FileExistsError:
            if attempt == _CREATE_TRIES - 1:
                raise
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        try:
            keep = target.stat().st_mode & 0o7777
        except OSError:
            keep = None  # a new file: the creation mode (after umask) stands
        if keep is not None:
            os.chmod(tmp, keep)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if fsync:
        fsync_dir(target.parent)
    return target


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8",
                      fsync: bool = True, mode: int = 0o666) -> Path:
    """``atomic_write`` of ``text`` encoded with ``encoding`` (no newline translation)."""
    return atomic_write(path, text.encode(encoding), fsync=fsync, mode=mode)
