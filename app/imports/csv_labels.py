"""CSV label files.

Two layouts are read:

* `read_csv` — one image per row: the first column is the file name, every further cell is a
  label of that image (any number of columns, blank cells ignored). A cell may also hold several
  labels separated by ';' or '|' (so `a.jpg,"cat;dog"` works). The first row is a header when its
  first cell is a column title such as `filename`, `file`, `image`, `path` or `name`; a header
  column named `split` gives each row's split. When a header is present and every other cell is
  0/1 the file is read as one-hot columns instead (what `write_onehot_csv` produces).
* `read_index_zip_csv` — the `index.csv` of a zip: a path column and one 0/1 column per label
  (blank counts as 0), plus an optional `split` column.

Text is decoded as UTF-8 (with or without BOM), UTF-16 with a BOM, or else Windows-1252, which is
what Excel writes on Windows. The delimiter is ',' unless the first lines have none, in which
case tab, then ';' (Excel in many European locales) are tried.
"""

from __future__ import annotations

import codecs
import csv
import io
import re

from app.imports.archives import normalise_member_path
from app.imports.tables import LabelFileError, LabelTable, TableBuilder, normalise_split

FILENAME_HEADERS = frozenset(
    {"filename", "file", "image", "path", "name", "file_name", "filepath", "image_name",
     "image_path", "img"}
)
_LABEL_SEPARATORS = re.compile(r"[;|]")
_ONE = frozenset({"1", "1.0"})
_ZERO = frozenset({"0", "0.0", ""})
_SNIFF_LINES = 20

CsvRows = list[tuple[int, list[str]]]


def read_csv(data: bytes) -> LabelTable:
    """Read a CSV of `filename,label,label,...` rows (header optional) into a LabelTable."""
    rows = _parse(data)
    _line, first_cells = rows[0]
    if first_cells[0].lower() not in FILENAME_HEADERS:
        return _read_label_cells(rows, split_column=None)
    header, body = first_cells, rows[1:]
    split_column = _find_column(header, {"split"}, skip=0)
    if len(header) > 1 and body and _all_binary(body, skip={0, split_column}):
        return _read_onehot(header, body, path_column=0, table_format="csv_onehot")
    return _read_label_cells(body, split_column=split_column)


def read_index_zip_csv(data: bytes) -> LabelTable:
    """Read an archive's index.csv: a path column and one 0/1 column per label."""
    rows = _parse(data)
    _line, header = rows[0]
    path_column = _find_column(header, FILENAME_HEADERS, skip=None)
    if path_column is None:
        raise LabelFileError(
            "index.csv has no path column: the header row needs a column named path, "
            f"filename or image (found: {', '.join(header)})"
        )
    return _read_onehot(header, rows[1:], path_column=path_column, table_format="index_csv")


def decode_text(data: bytes) -> str:
    """Decode a text file the way spreadsheets write them (UTF-8/UTF-16 BOM, else cp1252)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _parse(data: bytes) -> CsvRows:
    """Split into (line number, stripped cells) rows, skipping blank lines."""
    text = decode_text(data)
    # strict: an unclosed quote is an error rather than a cell swallowing the rest of the file.
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text), strict=True
    )
    rows: CsvRows = []
    try:
        for cells in reader:
            stripped = [cell.strip() for cell in cells]
            if any(stripped):
                rows.append((reader.line_num, stripped))
    except csv.Error as exc:
        raise LabelFileError(f"line {reader.line_num}: unreadable CSV ({exc})") from exc
    if not rows:
        raise LabelFileError("the file is empty")
    return rows


def _sniff_delimiter(text: str) -> str:
    sample = [line for line in text.splitlines()[:_SNIFF_LINES] if line.strip()]
    for delimiter in (",", "\t", ";"):
        if any(delimiter in line for line in sample):
            return delimiter
    return ","


def _find_column(
    header: list[str], names: set[str] | frozenset[str], skip: int | None
) -> int | None:
    for index, title in enumerate(header):
        if index != skip and title.lower() in names:
            return index
    return None


def _all_binary(body: CsvRows, skip: set[int | None]) -> bool:
    return all(
        cell.lower() in _ONE or cell.lower() in _ZERO
        for _line, cells in body
        for index, cell in enumerate(cells)
        if index not in skip
    )


def _read_label_cells(body: CsvRows, split_column: int | None) -> LabelTable:
    builder = TableBuilder("csv")
    label_cells = [
        cell for _line, cells in body for index, cell in enumerate(cells[1:], 1)
        if index != split_column and cell
    ]
    if split_column is None and label_cells and all(cell in _ONE | _ZERO for cell in label_cells):
        raise LabelFileError(
            "the label cells are all 0 or 1, which looks like one column per label, but there "
            "is no header row naming the labels; add one such as 'filename,cat,dog'"
        )
    for line, cells in body:
        labels: list[str] = []
        for index, cell in enumerate(cells[1:], 1):
            if index != split_column:
                labels.extend(_LABEL_SEPARATORS.split(cell))
        split = None
        if split_column is not None and split_column < len(cells):
            try:
                split = normalise_split(cells[split_column])
            except ValueError as exc:
                builder.error(line, str(exc))
                continue
        builder.add_row(line, cells[0], labels, split=split)
    return builder.build()


def _read_onehot(
    header: list[str], body: CsvRows, *, path_column: int, table_format: str
) -> LabelTable:
    split_column = _find_column(header, {"split"}, skip=path_column)
    label_columns = [
        (index, title) for index, title in enumerate(header)
        if index not in (path_column, split_column)
    ]
    _check_header(label_columns)
    builder = TableBuilder(table_format)
    builder.declare_labels([title for _index, title in label_columns])
    for line, raw_cells in body:
        if len(raw_cells) > len(header) and any(raw_cells[len(header):]):
            builder.error(line, f"{len(raw_cells)} cells, but the header has {len(header)}")
            continue
        cells = raw_cells + [""] * (len(header) - len(raw_cells))
        bad = [
            f"column '{title}' has '{cells[index]}'" for index, title in label_columns
            if cells[index].lower() not in _ONE | _ZERO
        ]
        if bad:
            builder.error(line, "; ".join(bad) + " (expected 0 or 1)")
            continue
        labels = [title for index, title in label_columns if cells[index].lower() in _ONE]
        try:
            split = normalise_split(cells[split_column]) if split_column is not None else None
        except ValueError as exc:
            builder.error(line, str(exc))
            continue
        filename = cells[path_column]
        if table_format == "index_csv" and filename:
            path = normalise_member_path(filename)
            if path is None:
                builder.error(line, f"path '{filename}' escapes the archive")
                continue
            filename = path
        builder.add_row(line, filename, labels, split=split)
    return builder.build()


def _check_header(label_columns: list[tuple[int, str]]) -> None:
    seen: set[str] = set()
    for index, title in label_columns:
        if not title:
            raise LabelFileError(f"column {index + 1} has no name in the header row")
        if title in seen:
            raise LabelFileError(f"column '{title}' appears twice in the header row")
        seen.add(title)
