import json

import pytest

from app.imports.csv_labels import read_csv
from app.imports.export import ExportRecord, write_json, write_onehot_csv

RECORDS = [
    ExportRecord("a.jpg", ["cat"], "train"),
    ExportRecord("b, the second.jpg", ["dog", "cat"], None),
    ExportRecord("c.jpg", [], "val"),
]


def test_onehot_csv_has_a_column_per_label() -> None:
    data = write_onehot_csv(RECORDS, ["cat", "dog", "bird"])

    assert data.decode() == (
        "filename,cat,dog,bird\n"
        "a.jpg,1,0,0\n"
        '"b, the second.jpg",1,1,0\n'
        "c.jpg,0,0,0\n"
    )


def test_onehot_csv_reads_back_as_the_same_labels() -> None:
    table = read_csv(write_onehot_csv(RECORDS, ["cat", "dog", "bird"]))

    assert [(row.filename, sorted(row.labels)) for row in table.rows] == [
        ("a.jpg", ["cat"]), ("b, the second.jpg", ["cat", "dog"]), ("c.jpg", []),
    ]
    assert table.label_names == ["cat", "dog", "bird"]


def test_onehot_csv_refuses_labels_outside_the_columns() -> None:
    with pytest.raises(ValueError, match="label 'dog' is not in label_names"):
        write_onehot_csv(RECORDS, ["cat"])


def test_json_has_one_record_per_image() -> None:
    assert json.loads(write_json(RECORDS)) == [
        {"filename": "a.jpg", "labels": ["cat"], "split": "train"},
        {"filename": "b, the second.jpg", "labels": ["dog", "cat"], "split": None},
        {"filename": "c.jpg", "labels": [], "split": "val"},
    ]


def test_json_keeps_unicode_readable() -> None:
    assert "café" in write_json([ExportRecord("café.jpg", ["chat"])]).decode("utf-8")
