"""Recognise which kind of label file was uploaded, and read it with the right reader.

Format names: `csv`, `index_csv` (a standalone index.csv), `index_zip` (a zip with an
index.csv), `coco`, `voc_xml`, `voc_zip`, `label_studio`, and `unknown`.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import PurePosixPath
from typing import BinaryIO

from app.imports.archives import iter_zip, normalise_member_path
from app.imports.coco import read_coco
from app.imports.csv_labels import read_csv, read_index_zip_csv
from app.imports.label_studio import read_label_studio
from app.imports.rejections import ArchiveRejected, RejectedFile
from app.imports.tables import LabelFileError, LabelTable, load_json
from app.imports.voc import is_voc_label_path, read_voc, read_voc_zip

LABEL_FORMATS = (
    "csv", "index_csv", "index_zip", "coco", "voc_xml", "voc_zip", "label_studio",
)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_INDEX_MAX_BYTES = 256 * 1024**2


def detect_format(filename: str, data: bytes) -> str:
    """Best-effort guess of a label file's format from its name and content."""
    suffix = PurePosixPath(filename.lower()).suffix
    if data.startswith(_ZIP_MAGIC) or suffix == ".zip":
        return _detect_zip(data)
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith((b"<?xml", b"<annotation")) or suffix == ".xml":
        return "voc_xml"
    if head.startswith((b"{", b"[")) or suffix == ".json":
        return _detect_json(data)
    if PurePosixPath(filename.replace("\\", "/")).name.lower() == "index.csv":
        return "index_csv"
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "unknown"  # binary, and not UTF-16 text
    return "csv"


def read_label_file(
    filename: str, data: bytes, *, categories: list[str] | None = None
) -> LabelTable:
    """Detect the format of a label file and read it; `categories` applies to COCO only."""
    label_format = detect_format(filename, data)
    if label_format == "csv":
        return read_csv(data)
    if label_format == "index_csv":
        return read_index_zip_csv(data)
    if label_format == "index_zip":
        return read_index_zip_csv(extract_index_csv(data))
    if label_format == "coco":
        return read_coco(data, categories)
    if label_format == "voc_xml":
        return read_voc({filename: data})
    if label_format == "voc_zip":
        return read_voc_zip(data)
    if label_format == "label_studio":
        return read_label_studio(data)
    if filename.lower().endswith(".json") or data.lstrip()[:1] in (b"{", b"["):
        load_json(data)  # raises with the line and column of a syntax error
    raise LabelFileError(
        "unrecognised label file: expected a CSV, a zip with index.csv, COCO JSON, "
        "Pascal VOC (XML or zip) or a Label Studio JSON export"
    )


def extract_index_csv(archive: bytes | BinaryIO | str | os.PathLike[str]) -> bytes:
    """The bytes of the (shallowest) index.csv inside a zip archive (bytes, file or path)."""
    found: dict[str, bytes] = {}
    try:
        for item in iter_zip(
            io.BytesIO(archive) if isinstance(archive, bytes) else archive,
            max_total_uncompressed=_INDEX_MAX_BYTES,
            max_member_bytes=_INDEX_MAX_BYTES,
            max_members=2_000_000,
            archive_name="the archive",
            include=_is_index,
        ):
            if isinstance(item, RejectedFile):
                continue  # images and junk are the ingest's business, not the index's
            found[item.path] = item.data
    except ArchiveRejected as exc:
        raise LabelFileError(exc.reason) from exc
    if not found:
        raise LabelFileError("the archive has no index.csv")
    return found[min(found, key=lambda path: (path.count("/"), path))]


def _is_index(path: str) -> bool:
    return PurePosixPath(path).name.lower() == "index.csv"


def _detect_zip(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            paths = [normalise_member_path(name) or "" for name in archive.namelist()]
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return "unknown"
    if any(_is_index(path) for path in paths):
        return "index_zip"
    if any(is_voc_label_path(path) for path in paths):
        return "voc_zip"
    return "unknown"


def _detect_json(data: bytes) -> str:
    try:
        document = load_json(data)
    except LabelFileError:
        return "unknown"
    if isinstance(document, dict) and "images" in document:
        return "coco"
    if isinstance(document, list) and all(isinstance(item, dict) for item in document):
        return "label_studio"
    return "unknown"
