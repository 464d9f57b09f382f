import io
import json
import zipfile

import pytest

from app.imports.detection import detect_format, extract_index_csv, read_label_file
from app.imports.tables import LabelFileError


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


COCO = json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [],
                   "categories": [{"id": 1, "name": "cat"}]}).encode()
STUDIO = json.dumps([{"id": 1, "data": {"image": "/data/upload/1/abcdef12-a.jpg"},
                      "annotations": [{"result": []}]}]).encode()
VOC_XML = b"<?xml version='1.0'?><annotation><filename>a.jpg</filename></annotation>"


@pytest.mark.parametrize(
    ("filename", "data", "expected"),
    [
        ("labels.csv", b"filename,label\na.jpg,cat\n", "csv"),
        ("labels.txt", b"a.jpg;cat\n", "csv"),
        ("index.csv", b"path,cat\na.jpg,1\n", "index_csv"),
        ("dataset.zip", zipped({"index.csv": b"path,cat\n", "a.jpg": b"x"}), "index_zip"),
        ("dataset.zip", zipped({"data/index.csv": b"path,cat\n"}), "index_zip"),
        ("voc.zip", zipped({"VOC/Annotations/a.xml": VOC_XML}), "voc_zip"),
        ("voc.zip", zipped({"ImageSets/Main/cat_train.txt": b"a 1\n"}), "voc_zip"),
        ("photos.zip", zipped({"a.jpg": b"x"}), "unknown"),
        ("broken.zip", b"PK\x03\x04 and then nothing", "unknown"),
        ("instances_val2017.json", COCO, "coco"),
        ("export.json", STUDIO, "label_studio"),
        ("project-1.json", b"[]", "label_studio"),
        ("a.xml", VOC_XML, "voc_xml"),
        ("upload", b"  <annotation/>", "voc_xml"),
        ("settings.json", b'{"other": 1}', "unknown"),
        ("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "unknown"),
    ],
)
def test_detect_format(filename: str, data: bytes, expected: str) -> None:
    assert detect_format(filename, data) == expected


def test_read_label_file_dispatches() -> None:
    assert read_label_file("labels.csv", b"a.jpg,cat\n").rows[0].labels == ["cat"]
    assert read_label_file("c.json", COCO, categories=["cat"]).format == "coco"
    assert read_label_file("e.json", STUDIO).rows[0].filename == "a.jpg"
    assert read_label_file("a.xml", VOC_XML).rows[0].filename == "a.jpg"
    archive = zipped({"images/index.csv": b"path,cat\nimages/a.jpg,1\n", "index.csv":
                      b"path,dog\na.jpg,1\n"})
    table = read_label_file("d.zip", archive)
    assert (table.format, table.rows[0].filename, table.rows[0].labels) == (
        "index_csv", "a.jpg", ["dog"]  # the shallowest index.csv wins
    )


def test_invalid_json_is_reported_with_its_position() -> None:
    with pytest.raises(LabelFileError, match=r"^invalid JSON at line 2, column 1: "):
        read_label_file("export.json", b'[{"id": 1}\n')


def test_unrecognised_file_is_refused() -> None:
    with pytest.raises(LabelFileError, match="unrecognised label file"):
        read_label_file("photos.zip", zipped({"a.jpg": b"x"}))


def test_zip_without_index_is_refused() -> None:
    with pytest.raises(LabelFileError, match=r"the archive has no index\.csv"):
        extract_index_csv(zipped({"a.jpg": b"x"}))
