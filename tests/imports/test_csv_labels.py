import codecs

import pytest

from app.imports.csv_labels import read_csv, read_index_zip_csv
from app.imports.tables import LabelFileError, LabelTable


def summary(table: LabelTable) -> list[tuple[int, str, list[str], str | None]]:
    return [(row.row_number, row.filename, row.labels, row.split) for row in table.rows]


def errors(table: LabelTable) -> list[str]:
    return [str(error) for error in table.errors]


def test_rows_with_any_number_of_labels_and_a_header() -> None:
    data = (
        b"filename,label1,label2,label3\n"
        b"cat_01.jpg,cat,indoor\n"
        b"dog_01.jpg,dog,,outdoor\n"
        b'both.jpg,"cat;dog",grass|sky\n'
        b"nothing.jpg\n"
        b"\n"
        b"dup_labels.jpg,cat, cat ,cat\n"
    )

    table = read_csv(data)

    assert table.format == "csv"
    assert summary(table) == [
        (2, "cat_01.jpg", ["cat", "indoor"], None),
        (3, "dog_01.jpg", ["dog", "outdoor"], None),
        (4, "both.jpg", ["cat", "dog", "grass", "sky"], None),
        (5, "nothing.jpg", [], None),
        (7, "dup_labels.jpg", ["cat"], None),
    ]
    assert table.label_names == ["cat", "indoor", "dog", "outdoor", "grass", "sky"]
    assert table.errors == []


def test_without_header_the_first_row_is_data() -> None:
    table = read_csv(b"a.jpg,cat\nb.jpg,dog\n")

    assert summary(table) == [(1, "a.jpg", ["cat"], None), (2, "b.jpg", ["dog"], None)]


@pytest.mark.parametrize("first_cell", ["filename", "File", "IMAGE", "path", "name"])
def test_header_is_recognised_by_its_first_cell(first_cell: str) -> None:
    table = read_csv(f"{first_cell},labels\na.jpg,cat\n".encode())

    assert summary(table) == [(2, "a.jpg", ["cat"], None)]


def test_bom_and_windows_line_endings_are_tolerated() -> None:
    data = codecs.BOM_UTF8 + "filename,label\r\ncafé.jpg,chat\r\n".encode()

    assert summary(read_csv(data)) == [(2, "café.jpg", ["chat"], None)]


def test_excel_windows_encoding_falls_back_to_cp1252() -> None:
    data = "café.jpg,crème\n".encode("cp1252")

    assert summary(read_csv(data)) == [(1, "café.jpg", ["crème"], None)]


def test_utf16_tab_separated_export() -> None:
    data = "filename\tlabel\na.jpg\tcat\n".encode("utf-16")

    assert summary(read_csv(data)) == [(2, "a.jpg", ["cat"], None)]


def test_semicolon_delimited_file() -> None:
    assert summary(read_csv(b"a.jpg;cat;dog\n")) == [(1, "a.jpg", ["cat", "dog"], None)]


def test_split_column_in_header() -> None:
    table = read_csv(b"filename,split,label\na.jpg,train,cat\nb.jpg,Validation,dog\nc.jpg,,dog\n")

    assert summary(table) == [
        (2, "a.jpg", ["cat"], "train"),
        (3, "b.jpg", ["dog"], "val"),
        (4, "c.jpg", ["dog"], None),
    ]


def test_unknown_split_is_a_row_error() -> None:
    table = read_csv(b"filename,split,label\na.jpg,holdout,cat\n")

    assert table.rows == []
    assert errors(table) == ["row 2: unknown split 'holdout' (expected train, val or test)"]


def test_empty_file_name_and_duplicate_rows_are_errors() -> None:
    data = b"filename,label\na.jpg,cat\n,dog\nb.jpg,dog\na.jpg,bird\n"

    table = read_csv(data)

    assert [row.filename for row in table.rows] == ["a.jpg", "b.jpg"]
    assert errors(table) == [
        "row 3: empty file name",
        "row 5: duplicate file name 'a.jpg' (also in row 2); list each image once",
    ]
    assert "bird" not in table.label_names


def test_header_with_zero_one_cells_is_read_as_one_hot() -> None:
    table = read_csv(b"filename,cat,dog\na.jpg,1,0\nb.jpg,1,1\nc.jpg,0,\n")

    assert table.format == "csv_onehot"
    assert summary(table) == [
        (2, "a.jpg", ["cat"], None),
        (3, "b.jpg", ["cat", "dog"], None),
        (4, "c.jpg", [], None),
    ]
    assert table.label_names == ["cat", "dog"]


def test_zero_one_cells_without_header_are_refused() -> None:
    with pytest.raises(LabelFileError, match="no header row naming the labels"):
        read_csv(b"a.jpg,1,0\nb.jpg,0,1\n")


@pytest.mark.parametrize("data", [b"", b"\n\n  \n", codecs.BOM_UTF8])
def test_empty_file_is_refused(data: bytes) -> None:
    with pytest.raises(LabelFileError, match="the file is empty"):
        read_csv(data)


def test_unclosed_quote_is_reported_with_its_line() -> None:
    with pytest.raises(LabelFileError) as caught:
        read_csv(b'a.jpg,cat\nb.jpg,"dog\nc.jpg,bird\n')

    assert str(caught.value) == "line 3: unreadable CSV (unexpected end of data)"


def test_index_csv_paths_labels_and_splits() -> None:
    data = b"path,cat,dog,split\n./images/a.jpg,1,0,train\nimages\\b.jpg,1,1,val\nc.jpg,,0,\n"

    table = read_index_zip_csv(data)

    assert summary(table) == [
        (2, "images/a.jpg", ["cat"], "train"),
        (3, "images/b.jpg", ["cat", "dog"], "val"),
        (4, "c.jpg", [], None),
    ]
    assert table.label_names == ["cat", "dog"]
    assert table.errors == []


def test_index_csv_path_column_may_be_anywhere() -> None:
    table = read_index_zip_csv(b"cat,image,dog\n1,a.jpg,0\n")

    assert summary(table) == [(2, "a.jpg", ["cat"], None)]


def test_index_csv_values_other_than_zero_one_name_column_and_value() -> None:
    table = read_index_zip_csv(b"path,cat,dog\na.jpg,1,0\nb.jpg,2,yes\n")

    assert [row.filename for row in table.rows] == ["a.jpg"]
    assert errors(table) == [
        "row 3: column 'cat' has '2'; column 'dog' has 'yes' (expected 0 or 1)"
    ]


def test_index_csv_path_escaping_the_archive_is_a_row_error() -> None:
    table = read_index_zip_csv(b"path,cat\n../../etc/passwd,1\n")

    assert table.rows == []
    assert errors(table) == ["row 2: path '../../etc/passwd' escapes the archive"]


def test_index_csv_row_with_too_many_cells() -> None:
    table = read_index_zip_csv(b"path,cat\na.jpg,1,1\nb.jpg,1,\n")

    assert [row.filename for row in table.rows] == ["b.jpg"]
    assert errors(table) == ["row 2: 3 cells, but the header has 2"]


def test_index_csv_without_path_column_is_refused() -> None:
    with pytest.raises(LabelFileError) as caught:
        read_index_zip_csv(b"picture,cat\na.jpg,1\n")

    assert str(caught.value) == (
        "index.csv has no path column: the header row needs a column named path, filename "
        "or image (found: picture, cat)"
    )


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"path,cat,cat\n", "column 'cat' appears twice in the header row"),
        (b"path,,dog\n", "column 2 has no name in the header row"),
    ],
)
def test_index_csv_bad_header(header: bytes, message: str) -> None:
    with pytest.raises(LabelFileError, match=message):
        read_index_zip_csv(header + b"a.jpg,1,0\n")
