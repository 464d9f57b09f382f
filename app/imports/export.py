"""Writers for a project's labels: one-hot CSV and JSON, one record per image."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ExportRecord:
    """One labeled image: its file name, tag names and split (None when automatic)."""

    filename: str
    labels: Sequence[str]
    split: str | None = None


def write_onehot_csv(records: Iterable[ExportRecord], label_names: Sequence[str]) -> bytes:
    """CSV with header `filename,<label>...` and a 0/1 cell per label (UTF-8, no BOM)."""
    columns = {name: index for index, name in enumerate(label_names)}
    if len(columns) != len(label_names):
        raise ValueError("label names must be distinct")
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\n")
    writer.writerow(["filename", *label_names])
    for record in records:
        cells = ["0"] * len(label_names)
        for label in record.labels:
            if label not in columns:
                raise ValueError(f"{record.filename}: label '{label}' is not in label_names")
            cells[columns[label]] = "1"
        writer.writerow([record.filename, *cells])
    return output.getvalue().encode("utf-8")


def write_json(records: Iterable[ExportRecord]) -> bytes:
    """A JSON list of `{"filename", "labels", "split"}` objects (UTF-8)."""
    payload = [
        {"filename": record.filename, "labels": list(record.labels), "split": record.split}
        for record in records
    ]
    return json.dumps(payload, ensure_ascii=False, indent=1).encode("utf-8")
