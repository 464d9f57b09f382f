"""Pure parsing for ingest: image checks and thumbnails, safe zip reading, label file readers
and writers, and file-name matching. No database, no web framework: services call these."""

from app.imports.archives import ZipEntry, is_junk, iter_zip, normalise_member_path
from app.imports.coco import CocoCategory, coco_categories, read_coco
from app.imports.csv_labels import read_csv, read_index_zip_csv
from app.imports.detection import (
    LABEL_FORMATS,
    detect_format,
    extract_index_csv,
    read_label_file,
)
from app.imports.export import ExportRecord, write_json, write_onehot_csv
from app.imports.images import (
    ACCEPTED_FORMATS,
    ImageInfo,
    make_thumbnail,
    probe_image,
    process_image,
)
from app.imports.label_studio import read_label_studio
from app.imports.matching import MatchResult, map_labels, match_rows
from app.imports.rejections import ArchiveRejected, RejectedFile, format_bytes
from app.imports.tables import LabelFileError, LabelRow, LabelTable, RowError
from app.imports.voc import read_voc, read_voc_zip

__all__ = [
    "ACCEPTED_FORMATS",
    "LABEL_FORMATS",
    "ArchiveRejected",
    "CocoCategory",
    "ExportRecord",
    "ImageInfo",
    "LabelFileError",
    "LabelRow",
    "LabelTable",
    "MatchResult",
    "RejectedFile",
    "RowError",
    "ZipEntry",
    "coco_categories",
    "detect_format",
    "extract_index_csv",
    "format_bytes",
    "is_junk",
    "iter_zip",
    "make_thumbnail",
    "map_labels",
    "match_rows",
    "normalise_member_path",
    "probe_image",
    "process_image",
    "read_coco",
    "read_csv",
    "read_index_zip_csv",
    "read_label_file",
    "read_label_studio",
    "read_voc",
    "read_voc_zip",
    "write_json",
    "write_onehot_csv",
]
