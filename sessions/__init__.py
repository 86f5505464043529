"""imagent.sessions — the versioned, undoable, replayable session store.

Imports nothing of the project except ``imagent.errors``. See ``store.py``.
"""

from .blobs import EncodedBlob, encode_alpha, encode_image, encode_mask
from .store import (
    SESSION_NAME_PATTERN,
    DiffResult,
    ReplayReport,
    Session,
    Store,
    Version,
    pixel_digest,
    safe_output_path,
    validate_session_name,
)

__all__ = [
    "Store", "Session", "Version", "DiffResult", "ReplayReport", "EncodedBlob",
    "encode_image", "encode_mask", "encode_alpha", "pixel_digest", "safe_output_path",
    "validate_session_name", "SESSION_NAME_PATTERN",
]
