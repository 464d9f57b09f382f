import json

import pytest

from app.imports.label_studio import filename_from_reference, read_label_studio
from app.imports.tables import LabelFileError


def choices(*names: str, control: str = "choice") -> dict:
    return {
        "id": "r1", "type": "choices", "from_name": control, "to_name": "image",
        "origin": "manual", "value": {"choices": list(names)},
    }


def export() -> bytes:
    tasks = [
        {
            "id": 11,
            "data": {"image": "/data/upload/3/5d2b1a9f-cat_01.jpg"},
            "annotations": [
                {"id": 1, "completed_by": 1, "was_cancelled": False,
                 "created_at": "2024-05-01T10:00:00.000000Z",
                 "updated_at": "2024-05-01T10:00:00.000000Z",
                 "result": [choices("Cat")]},
                {"id": 2, "completed_by": 2, "was_cancelled": False,
                 "created_at": "2024-05-02T09:00:00.000000Z",
                 "updated_at": "2024-05-02T09:00:00.000000Z",
                 "result": [choices("Cat", "Indoor"), choices("Blurry", control="quality")]},
            ],
            "predictions": [],
        },
        {
            "id": 12,
            "data": {"image": "/data/local-files/?d=photos%2Fdog%2001.jpg"},
            "annotations": [
                {"id": 3, "was_cancelled": True, "created_at": "2024-06-01T00:00:00Z",
                 "result": [choices("Cat")]},
                {"id": 4, "was_cancelled": False, "created_at": "2024-05-01T00:00:00Z",
                 "result": [choices("Dog")]},
            ],
        },
        {
            "id": 13,
            "data": {"img": "s3://bucket/raw/0badf00d-empty.jpg"},
            "annotations": [{"id": 5, "result": []}],
        },
        {
            "id": 14,
            "data": {"image": "https://example.com/img/unlabeled.jpg"},
            "annotations": [],
            "predictions": [{"result": [choices("Dog")]}],
        },
        {
            "id": 15,
            "data": {"image": "https://example.com/img/boxes.jpg"},
            "annotations": [{"id": 6, "result": [
                {"type": "rectanglelabels", "value": {"rectanglelabels": ["Dog"]}},
            ]}],
        },
    ]
    return json.dumps(tasks).encode()


def test_latest_non_cancelled_annotation_decides() -> None:
    table = read_label_studio(export())

    assert table.format == "label_studio"
    assert [(row.row_number, row.filename, row.labels) for row in table.rows] == [
        (1, "cat_01.jpg", ["Cat", "Indoor", "Blurry"]),  # upload hash prefix removed
        (2, "dog 01.jpg", ["Dog"]),  # the newer annotation was cancelled
        (3, "0badf00d-empty.jpg", []),  # submitted with no choice; prefix kept outside uploads
        (5, "boxes.jpg", []),
    ]
    assert table.label_names == ["Cat", "Indoor", "Blurry", "Dog"]
    assert table.errors == []
    assert [str(warning) for warning in table.warnings] == [
        "row 4: task 14 ('unlabeled.jpg') has no annotation; skipped",
        "row 0: 1 result(s) of type 'rectanglelabels' ignored: only 'choices' are read",
    ]


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("/data/upload/1/3f2a1b4c-cat.jpg", "cat.jpg"),
        ("http://localhost:8080/data/upload/1/3f2a1b4c-cat.jpg", "cat.jpg"),
        ("/data/upload/1/cat.jpg", "cat.jpg"),
        ("/data/local-files/?d=dir/3f2a1b4c-cat.jpg", "3f2a1b4c-cat.jpg"),
        ("https://cdn.example.com/a/b/My%20Photo.JPG?token=abc", "My Photo.JPG"),
        ("gs://bucket/x/3f2a1b4c-9d8e-4f6a-8b7c-1234567890ab.png",
         "3f2a1b4c-9d8e-4f6a-8b7c-1234567890ab.png"),
        ("C:\\Users\\me\\cat.jpg", "cat.jpg"),
    ],
)
def test_filename_from_reference(reference: str, name: str) -> None:
    assert filename_from_reference(reference) == name


def test_json_min_export() -> None:
    records = [
        {"image": "/data/upload/1/aaaaaaaa-a.jpg", "id": 1, "choice": "Cat",
         "annotator": 1, "annotation_id": 1, "updated_at": "2024-01-01T00:00:00Z"},
        {"image": "/data/upload/1/bbbbbbbb-b.jpg", "id": 2,
         "choice": {"choices": ["Cat", "Dog"]}, "annotation_id": 2},
        {"image": "/data/upload/1/cccccccc-c.jpg", "id": 3, "choices": ["Dog"]},
        {"image": "/data/upload/1/dddddddd-d.jpg", "id": 4, "weather": {"choices": ["Sunny"]}},
        {"image": "/data/upload/1/eeeeeeee-e.jpg", "id": 5},
        {"image": "/data/upload/1/aaaaaaaa-a.jpg", "id": 1, "choice": "Dog",
         "annotator": 2, "annotation_id": 9, "updated_at": "2024-02-01T00:00:00Z"},
    ]

    table = read_label_studio(json.dumps(records).encode())

    assert table.format == "label_studio_min"
    assert [(row.filename, row.labels) for row in table.rows] == [
        ("b.jpg", ["Cat", "Dog"]),
        ("c.jpg", ["Dog"]),
        ("d.jpg", ["Sunny"]),
        ("e.jpg", []),
        ("a.jpg", ["Dog"]),  # the later annotation of task 1
    ]


def test_missing_image_and_duplicate_images_are_errors() -> None:
    tasks = [
        {"id": 1, "data": {"text": "no picture"}, "annotations": [{"result": []}]},
        {"id": 2, "data": {"image": "/x/a.jpg"}, "annotations": [{"result": []}]},
        {"id": 3, "data": {"image": "/y/a.jpg"}, "annotations": [{"result": []}]},
        {"id": 4, "data": {"image": "data:image/png;base64,iVBOR"},
         "annotations": [{"result": []}]},
        "not a task",
    ]

    table = read_label_studio(json.dumps(tasks).encode())

    assert [row.filename for row in table.rows] == ["a.jpg"]
    assert [str(error) for error in table.errors] == [
        "row 1: task 1 has no image reference (expected data.image)",
        "row 3: duplicate file name 'a.jpg' (also in task 2); list each image once",
        "row 4: task 4 embeds its image as a data: URL; it has no file name",
        "row 5: task #5 has no 'data' object",
    ]


def test_not_a_list_is_refused() -> None:
    with pytest.raises(LabelFileError, match="expected a JSON list of tasks"):
        read_label_studio(b'{"images": []}')


def test_invalid_json_names_line_and_column() -> None:
    with pytest.raises(LabelFileError, match=r"^invalid JSON at line 1, column 2: "):
        read_label_studio(b"[,]")
