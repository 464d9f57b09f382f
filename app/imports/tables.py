"""The neutral result every label-file reader returns, and the builder readers share.

A reader turns a file into `LabelTable.rows` (one per image, labels as plain names) and
`LabelTable.errors` (rows it could not use, with the reason). A file it cannot read at all raises
`LabelFileError`. Rows that have an error are left out of `rows`, so an import may use `rows` as
they are; an all-or-nothing import refuses to go on while `errors` is not empty.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {"validation": "val", "valid": "val", "training": "train", "testing": "test"}


class LabelFileError(ValueError):
    """The label file as a whole cannot be read (bad JSON, no header, wrong structure)."""


@dataclass(slots=True)
class LabelRow:
    """One image named in a label file and the labels it has there ([] = none of them apply).

    `row_number` is where the image appears: the line in a CSV (header included), the 1-based
    position in a JSON list, or the position of a VOC annotation file in path order.
    """

    row_number: int
    filename: str
    labels: list[str]
    split: str | None = None


@dataclass(frozen=True, slots=True)
class RowError:
    """A row that was left out, and why; `message` names its subject (file, task, column)."""

    row_number: int
    message: str

    def __str__(self) -> str:
        return f"row {self.row_number}: {self.message}"


@dataclass(slots=True)
class LabelTable:
    """Rows, per-row errors and label names (in order of first appearance) read from a file.

    `warnings` are things the user should know that did not stop a row from being read.
    """

    format: str
    rows: list[LabelRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    label_names: list[str] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)


def normalise_split(value: str) -> str | None:
    """Map 'train'/'val'/'test' (and spellings like 'validation') to a split; '' to None."""
    text = value.strip().lower()
    if not text:
        return None
    text = _SPLIT_ALIASES.get(text, text)
    if text not in SPLITS:
        raise ValueError(f"unknown split '{value.strip()}' (expected train, val or test)")
    return text


class TableBuilder:
    """Collects rows for a LabelTable, refusing empty and repeated file names."""

    def __init__(self, table_format: str) -> None:
        self._table = LabelTable(format=table_format)
        self._labels: dict[str, None] = {}
        self._first_seen: dict[str, str] = {}

    def declare_labels(self, names: list[str]) -> None:
        """Record label names known up front (CSV header columns, chosen COCO categories)."""
        for name in names:
            self._labels.setdefault(name, None)

    def add_row(
        self,
        row_number: int,
        filename: str,
        labels: list[str],
        *,
        split: str | None = None,
        where: str | None = None,
    ) -> LabelRow | None:
        """Add a row (labels stripped, blanks and repeats dropped) or record why it cannot be.

        `where` describes the row in messages about repeats ("task 4"); default "row N".
        """
        name = filename.strip()
        if not name:
            self.error(row_number, "empty file name")
            return None
        location = where or f"row {row_number}"
        if name in self._first_seen:
            self.error(
                row_number,
                f"duplicate file name '{name}' (also in {self._first_seen[name]}); "
                "list each image once",
            )
            return None
        self._first_seen[name] = location
        clean = list(dict.fromkeys(label.strip() for label in labels if label.strip()))
        self.declare_labels(clean)
        row = LabelRow(row_number=row_number, filename=name, labels=clean, split=split)
        self._table.rows.append(row)
        return row

    def error(self, row_number: int, message: str) -> None:
        """Record a row that is left out."""
        self._table.errors.append(RowError(row_number, message))

    def warn(self, row_number: int, message: str) -> None:
        """Record something worth knowing that did not stop the row."""
        self._table.warnings.append(RowError(row_number, message))

    def build(self) -> LabelTable:
        """Return the finished table."""
        self._table.label_names = list(self._labels)
        return self._table


def load_json(data: bytes) -> Any:
    """Parse JSON from bytes, raising LabelFileError that names the line and column."""
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise LabelFileError(f"not UTF-8 text (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise LabelFileError(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
