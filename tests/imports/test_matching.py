from app.imports.matching import map_labels, match_rows
from app.imports.tables import LabelRow, LabelTable


def table(*filenames: str, labels: list[str] | None = None) -> LabelTable:
    rows = [LabelRow(number, name, []) for number, name in enumerate(filenames, 2)]
    return LabelTable(format="csv", rows=rows, label_names=labels or [])


KNOWN = {
    "cat_01.jpg": 1,
    "holiday/beach.jpg": 2,
    "train/dup.jpg": 3,
    "val/dup.jpg": 4,
    "Mixed.JPG": 5,
    "case/A.png": 6,
    "case/a.png": 7,
}


def matched_ids(result: object) -> dict[str, int]:
    return {row.filename: asset_id for row, asset_id in result.matched}  # type: ignore[attr-defined]


def test_exact_then_basename_then_ignoring_case() -> None:
    result = match_rows(
        table("cat_01.jpg", "C:\\Users\\me\\beach.jpg", "mixed.jpg", "CAT_01.JPG.bak"), KNOWN
    )

    assert matched_ids(result) == {
        "cat_01.jpg": 1,
        "C:\\Users\\me\\beach.jpg": 2,
        "mixed.jpg": 5,
    }
    assert result.unmatched == ["CAT_01.JPG.bak"]


def test_shared_basename_is_ambiguous_unless_the_path_tells_them_apart() -> None:
    result = match_rows(
        table("dup.jpg", "data/val/dup.jpg", "A.PNG", "case/a.png", "x/train/DUP.JPG"), KNOWN
    )

    assert matched_ids(result) == {"data/val/dup.jpg": 4, "case/a.png": 7, "x/train/DUP.JPG": 3}
    assert result.ambiguous == {
        "dup.jpg": ["train/dup.jpg", "val/dup.jpg"],
        "A.PNG": ["case/A.png", "case/a.png"],
    }


def test_two_rows_naming_one_image_is_a_conflict() -> None:
    result = match_rows(table("cat_01.jpg", "photos/cat_01.jpg"), KNOWN)

    assert matched_ids(result) == {"cat_01.jpg": 1}
    assert [str(conflict) for conflict in result.conflicts] == [
        "row 3: 'photos/cat_01.jpg' is the same image ('cat_01.jpg') as row 2 ('cat_01.jpg')"
    ]


def test_labels_map_to_existing_tags_ignoring_case() -> None:
    result = match_rows(
        table("cat_01.jpg", labels=["Cat", "dog", "Dog", "bird"]),
        KNOWN,
        existing_tags=["cat", "Fish"],
    )

    assert result.new_labels == ["dog", "bird"]
    assert result.label_map == {"Cat": "cat", "dog": "dog", "Dog": "dog", "bird": "bird"}


def test_map_labels_without_existing_tags() -> None:
    assert map_labels(["a", "b"], []) == ({"a": "a", "b": "b"}, ["a", "b"])
