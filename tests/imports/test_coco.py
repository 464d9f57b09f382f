import json

import pytest

from app.imports.coco import CocoCategory, coco_categories, read_coco
from app.imports.tables import LabelFileError


def coco_file(**overrides: object) -> bytes:
    document: dict[str, object] = {
        "info": {"description": "tiny"},
        "images": [
            {"id": 1, "file_name": "train2017/000001.jpg", "width": 640, "height": 480},
            {"id": 2, "file_name": "000002.jpg", "width": 640, "height": 480},
            {"id": 3, "file_name": "000003.jpg", "width": 640, "height": 480},
            {"id": 4, "file_name": "000004.jpg", "width": 640, "height": 480},
        ],
        "categories": [
            {"id": 1, "name": "person", "supercategory": "person"},
            {"id": 3, "name": "car", "supercategory": "vehicle"},
            {"id": 18, "name": "dog", "supercategory": "animal"},
        ],
        "annotations": [
            {"id": 101, "image_id": 1, "category_id": 18, "bbox": [0, 0, 5, 5], "iscrowd": 0},
            {"id": 102, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 0},
            {"id": 103, "image_id": 1, "category_id": 18, "bbox": [9, 9, 5, 5], "iscrowd": 0},
            {"id": 104, "image_id": 2, "category_id": 3, "bbox": [0, 0, 5, 5], "iscrowd": 0},
            {"id": 105, "image_id": 3, "category_id": 1, "bbox": [0, 0, 5, 5], "iscrowd": 1},
        ],
    }
    document.update(overrides)
    return json.dumps(document, indent=2).encode()


def test_categories_are_listed_with_image_counts_in_file_order() -> None:
    assert coco_categories(coco_file()) == [
        CocoCategory(1, "person", 2),
        CocoCategory(3, "car", 1),
        CocoCategory(18, "dog", 1),
    ]


def test_chosen_categories_become_labels_and_every_image_is_a_row() -> None:
    table = read_coco(coco_file(), categories=["dog", "person"])

    assert table.format == "coco"
    assert [(row.row_number, row.filename, row.labels) for row in table.rows] == [
        (1, "train2017/000001.jpg", ["dog", "person"]),
        (2, "000002.jpg", []),  # only a car, which was not chosen
        (3, "000003.jpg", ["person"]),
        (4, "000004.jpg", []),  # no annotations at all
    ]
    assert table.label_names == ["person", "dog"]
    assert table.errors == []


def test_all_categories_by_default() -> None:
    table = read_coco(coco_file())

    assert table.rows[1].labels == ["car"]
    assert table.label_names == ["person", "car", "dog"]


def test_annotation_for_unknown_image_or_category_is_an_error() -> None:
    data = coco_file(annotations=[
        {"id": 7, "image_id": 99, "category_id": 1},
        {"id": 8, "image_id": 2, "category_id": 42},
        {"id": 9, "image_id": 2, "category_id": 18},
    ])

    table = read_coco(data)

    assert [str(error) for error in table.errors] == [
        "row 1: annotation id 7 points at image id 99, which is not in 'images'",
        "row 2: annotation id 8 has category id 42, which is not in 'categories'",
    ]
    assert table.rows[1].labels == ["dog"]


def test_duplicate_file_names_and_image_ids_are_errors() -> None:
    data = coco_file(images=[
        {"id": 1, "file_name": "a.jpg"},
        {"id": 2, "file_name": "a.jpg"},
        {"id": 1, "file_name": "b.jpg"},
        {"id": 5},
    ], annotations=[])

    table = read_coco(data)

    assert [row.filename for row in table.rows] == ["a.jpg"]
    assert [str(error) for error in table.errors] == [
        "row 2: duplicate file name 'a.jpg' (also in image id 1); list each image once",
        "row 3: image id 1 appears twice in 'images'",
        "row 4: image id 5 has no file_name",
    ]


def test_invalid_json_names_line_and_column() -> None:
    with pytest.raises(LabelFileError) as caught:
        read_coco(b'{\n  "images": [\n    {"id": 1,}\n  ]\n}')

    assert str(caught.value).startswith("invalid JSON at line 3, column 14: ")


def test_unknown_chosen_category_is_refused() -> None:
    with pytest.raises(LabelFileError, match="the file has no categories named 'cat', 'tree'"):
        read_coco(coco_file(), categories=["dog", "cat", "tree"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[]", "not a COCO instances file"),
        (b'{"images": [], "annotations": {}}', "'annotations' must be a list"),
        (b'{"images": [], "categories": [{"id": "1", "name": "x"}]}',
         r"categories\[0\] needs an integer 'id' and a 'name'"),
        (b'{"images": [], "categories": [{"id": 1, "name": "x"}, {"id": 1, "name": "y"}]}',
         "category id 1 appears twice"),
    ],
)
def test_structural_problems_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(LabelFileError, match=message):
        read_coco(data)


def test_string_ids_match_numeric_references() -> None:
    data = coco_file(images=[{"id": "7", "file_name": "a.jpg"}],
                     annotations=[{"id": 1, "image_id": 7, "category_id": 3}])

    assert read_coco(data).rows[0].labels == ["car"]
