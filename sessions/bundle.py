"""Session bundles: one zip holding ``manifest.json`` and ``blobs/<key>``.

Format 2 (written now): blobs are keyed by their pixels and stored in the blob format of
``blobs.py`` (JPEG/WebP originals re-encoded, so any machine decodes the same pixels).
Format 1 (written before): PNG blobs keyed by the sha256 of their bytes. Both are read;
a blob of either kind is accepted in either format version.

Writing is deterministic (fixed member order and timestamps, sorted-key JSON)
and atomic (``imagent.fsio.atomic_write``: temp file beside the target, fsync,
``os.replace``, fsync of the directory), so export -> import -> export gives the same bytes.

Reading trusts nothing: every member name must be ``manifest.json`` or
``blobs/<64 lowercase hex>`` (anything else, e.g. ``../../evil`` or an absolute
path, is a zip-slip attempt -> ``BundleError``); the manifest must parse and
describe a well-formed tree; every referenced blob must be present, decode, and
match its name (pixel digest; legacy PNG blobs: sha256 of the bytes). Nothing is extracted to disk here: the store writes the verified
bytes by hash only after the whole bundle has passed.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

from imagent.errors import BundleError
from imagent.fsio import atomic_write

from .blobs import HASH_RE, blob_problem

FORMAT = "imagent.bundle"
FORMAT_VERSION = 2
READ_FORMAT_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_BLOB_MEMBER_RE = re.compile(r"^blobs/([0-9a-f]{64})$")
_ID_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_BLOB_BYTES = 1024 * 1024 * 1024
_HINT = "Re-export the session from the store it came from; the bundle file is damaged or not an imagent bundle."

# field -> (allowed types, required)
_VERSION_SCHEMA: dict[str, tuple[tuple[type, ...], bool]] = {
    "id": ((str,), True),
    "session_id": ((str,), False),
    "seq": ((int,), True),
    "parent_id": ((str, type(None)), True),
    "request": ((str,), True),
    "tool_calls": ((list,), True),
    "image_hash": ((str,), True),
    "mask_hash": ((str, type(None)), True),
    "alpha_hash": ((str, type(None)), True),
    "width": ((int,), True),
    "height": ((int,), True),
    "metrics": ((dict,), True),
    "backends": ((dict,), True),
    "seed": ((int, type(None)), True),
    "timings": ((dict,), True),
    "created_at": ((str,), True),
    "kind": ((str,), True),
    "branched": ((bool,), True),
}
_SESSION_SCHEMA: dict[str, tuple[tuple[type, ...], bool]] = {
    "id": ((str,), True),
    "name": ((str,), True),
    "head_id": ((str,), True),
    "root_id": ((str,), True),
    "created_at": ((str,), True),
    "updated_at": ((str,), True),
    "source": ((str, type(None)), True),
}


def manifest_bytes(manifest: dict) -> bytes:
    return (json.dumps(manifest, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def write_bundle(target: Path, manifest: dict, blobs: dict[str, bytes]) -> Path:
    """Write the zip atomically to ``target`` (already checked by ``safe_output_path``)."""
    def write_zip(fh) -> None:
        with zipfile.ZipFile(fh, "w") as zf:
            info = zipfile.ZipInfo(MANIFEST, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, manifest_bytes(manifest))
            for key in sorted(blobs):
                info = zipfile.ZipInfo(f"blobs/{key}", date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_STORED  # blobs are already compressed
                info.external_attr = 0o644 << 16
                zf.writestr(info, blobs[key])

    return atomic_write(target, write_zip)


def _check_fields(record: Any, schema: dict, what: str) -> None:
    if not isinstance(record, dict):
        raise BundleError(f"Bundle manifest: {what} is not a JSON object.", hint=_HINT)
    for field, (types, required) in schema.items():
        if field not in record:
            if required:
                raise BundleError(f"Bundle manifest: {what} lacks the field {field!r}.", hint=_HINT)
            continue
        value = record[field]
        if isinstance(value, bool) and bool not in types:  # bool is an int subclass
            raise BundleError(f"Bundle manifest: {what} field {field!r} has the wrong type.", hint=_HINT)
        if not isinstance(value, types):
            raise BundleError(f"Bundle manifest: {what} field {field!r} has the wrong type "
                              f"({type(value).__name__}).", hint=_HINT)


def validate_manifest(manifest: Any) -> tuple[dict, list[dict]]:
    """Check the manifest's shape and graph; return ``(session, versions sorted by seq)``."""
    if not isinstance(manifest, dict):
        raise BundleError("Bundle manifest is not a JSON object.", hint=_HINT)
    if manifest.get("format") != FORMAT:
        raise BundleError(f"Not an imagent bundle (format is {manifest.get('format')!r}, "
                          f"expected {FORMAT!r}).", hint=_HINT)
    fv = manifest.get("format_version")
    if isinstance(fv, bool) or fv not in READ_FORMAT_VERSIONS:
        raise BundleError(f"Unsupported bundle format_version {fv!r} "
                          f"(this imagent reads {', '.join(map(str, READ_FORMAT_VERSIONS))}).",
                          hint="Upgrade imagent, or export the bundle again with this version.")
    session = manifest.get("session")
    _check_fields(session, _SESSION_SCHEMA, "session")
    versions = manifest.get("versions")
    if not isinstance(versions, list) or not versions:
        raise BundleError("Bundle manifest has no versions.", hint=_HINT)
    by_id: dict[str, dict] = {}
    seqs: set[int] = set()
    for i, v in enumerate(versions):
        _check_fields(v, _VERSION_SCHEMA, f"version #{i}")
        if not _ID_RE.match(v["id"]):
            raise BundleError(f"Bundle manifest: version #{i} has a malformed id {v['id']!r}.", hint=_HINT)
        if v["id"] in by_id:
            raise BundleError(f"Bundle manifest: version id {v['id']} appears twice.", hint=_HINT)
        if v["seq"] < 0 or v["seq"] in seqs:
            raise BundleError(f"Bundle manifest: version #{i} has a bad or repeated seq {v['seq']}.", hint=_HINT)
        if v["width"] <= 0 or v["height"] <= 0:
            raise BundleError(f"Bundle manifest: version #{i} has a bad size.", hint=_HINT)
        for field in ("image_hash", "mask_hash", "alpha_hash"):
            h = v[field]
            if h is not None and not HASH_RE.match(h):
                raise BundleError(f"Bundle manifest: version #{i} {field} {h!r} is not a sha256 hex digest.",
                                  hint=_HINT)
        for tc in v["tool_calls"]:
            if not isinstance(tc, dict) or not isinstance(tc.get("name"), str):
                raise BundleError(f"Bundle manifest: version #{i} has a malformed tool call.", hint=_HINT)
        seqs.add(v["seq"])
        by_id[v["id"]] = v
    roots = [v for v in by_id.values() if v["parent_id"] is None]
    if len(roots) != 1 or roots[0]["id"] != session["root_id"] or roots[0]["seq"] != 0:
        raise BundleError("Bundle manifest: the versions do not form one tree rooted at the session root.",
                          hint=_HINT)
    for v in by_id.values():
        pid = v["parent_id"]
        if pid is None:
            continue
        parent = by_id.get(pid)
        if parent is None:
            raise BundleError(f"Bundle manifest: version {v['id'][:8]} names a parent {str(pid)[:8]} "
                              "that is not in the bundle.", hint=_HINT)
        if parent["seq"] >= v["seq"]:  # parents are always older, which also rules out cycles
            raise BundleError(f"Bundle manifest: version {v['id'][:8]} is older than its parent.", hint=_HINT)
    if session["head_id"] not in by_id:
        raise BundleError("Bundle manifest: the session head is not one of its versions.", hint=_HINT)
    return session, sorted(by_id.values(), key=lambda v: v["seq"])


def read_bundle(path: str | os.PathLike) -> tuple[dict, list[dict], dict[str, bytes]]:
    """Open, check and load a bundle: ``(session, versions, {sha256: bytes})``. Writes nothing."""
    p = Path(path)
    if not p.is_file():
        raise BundleError(f"No bundle file at {str(p)!r}.", hint="Check the path of the .zip bundle to import.")
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"{str(p)!r} is not a readable zip bundle: {exc}", hint=_HINT) from exc
    with zf:
        members: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            name = info.filename
            if name == "blobs/" and info.is_dir():
                continue
            if name != MANIFEST and not _BLOB_MEMBER_RE.match(name):
                raise BundleError(f"Bundle {p.name!r} contains an unexpected or unsafe entry {name!r}.",
                                  hint="Only manifest.json and blobs/<sha256> are allowed; "
                                       "do not import bundles from untrusted sources.")
            if name in members:
                raise BundleError(f"Bundle {p.name!r} contains the entry {name!r} twice.", hint=_HINT)
            members[name] = info
        if MANIFEST not in members:
            raise BundleError(f"Bundle {p.name!r} has no manifest.json.", hint=_HINT)
        if members[MANIFEST].file_size > MAX_MANIFEST_BYTES:
            raise BundleError(f"Bundle {p.name!r} has an oversized manifest.", hint=_HINT)
        try:
            manifest = json.loads(zf.read(MANIFEST).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BundleError(f"Bundle {p.name!r}: manifest.json is not valid JSON ({exc}).", hint=_HINT) from exc
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise BundleError(f"Bundle {p.name!r}: manifest.json could not be read ({exc}).", hint=_HINT) from exc
        session, versions = validate_manifest(manifest)
        needed: set[str] = set()
        for v in versions:
            needed.update(h for h in (v["image_hash"], v["mask_hash"], v["alpha_hash"]) if h)
        blobs: dict[str, bytes] = {}
        for key in sorted(needed):
            info = members.get(f"blobs/{key}")
            if info is None:
                raise BundleError(f"Bundle {p.name!r} lacks the blob {key[:12]}... that its manifest references.",
                                  hint=_HINT)
            if info.file_size > MAX_BLOB_BYTES:
                raise BundleError(f"Bundle {p.name!r}: blob {key[:12]}... is oversized.", hint=_HINT)
            try:
                data = zf.read(info)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                # zipfile checks CRC-32 on read: a flipped byte usually lands here
                raise BundleError(f"Bundle {p.name!r}: blob {key[:12]}... could not be read ({exc}).",
                                  hint=_HINT) from exc
            problem = blob_problem(key, data)  # decodes it: pixels (legacy PNG: bytes) against the name
            if problem:
                raise BundleError(f"Bundle {p.name!r}: blob {key[:12]}... does not match its hash: {problem}",
                                  hint=_HINT)
            blobs[key] = data
    return session, versions, blobs
