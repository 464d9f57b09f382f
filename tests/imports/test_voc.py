import io
import zipfile

import pytest

from app.imports.tables import LabelFileError, LabelTable
from app.imports.voc import read_voc, read_voc_zip


def annotation(filename: str | None, *objects: tuple[str, int]) -> bytes:
    name_element = f"<filename>{filename}</filename>" if filename else ""
    object_elements = "".join(
        f"<object><name>{name}</name><pose>Unspecified</pose><difficult>{difficult}</difficult>"
        "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>"
        "<part><name>head</name></part></object>"
        for name, difficult in objects
    )
    return (
        '<?xml version="1.0"?>\n<annotation><folder>VOC2012</folder>'
        f"{name_element}<size><width>500</width><height>375</height><depth>3</depth></size>"
        f"{object_elements}</annotation>"
    ).encode()


def summary(table: LabelTable) -> list[tuple[str, list[str], str | None]]:
    return [(row.filename, row.labels, row.split) for row in table.rows]


def test_annotation_xml_gives_distinct_object_names() -> None:
    files = {
        "VOC2012/Annotations/2007_000027.xml": annotation(
            "2007_000027.jpg", ("person", 0), ("dog", 1), ("person", 0)
        ),
        "VOC2012/Annotations/2007_000032.xml": annotation(None, ("aeroplane", 0)),
        "VOC2012/Annotations/2007_000033.xml": annotation("2007_000033.jpg"),
        "VOC2012/ImageSets/Main/train.txt": b"2007_000027\n2007_000033\n",
        "VOC2012/ImageSets/Main/val.txt": b"2007_000032\n",
    }

    table = read_voc(files)

    assert table.format == "voc_xml"
    assert summary(table) == [
        ("2007_000027.jpg", ["person", "dog"], "train"),  # difficult objects count, parts don't
        ("2007_000032.jpg", ["aeroplane"], "val"),  # no <filename>: derived from the XML name
        ("2007_000033.jpg", [], "train"),
    ]
    assert table.label_names == ["person", "dog", "aeroplane"]


def test_broken_annotation_files_are_row_errors() -> None:
    files = {
        "Annotations/a.xml": b"<annotation><filename>a.jpg</filename>\n<object><name>cat",
        "Annotations/b.xml": b"<notvoc/>",
        "Annotations/c.xml": b"<annotation><object><pose>Left</pose></object></annotation>",
        "Annotations/d.xml": (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>'
            b"<annotation><filename>&lol;</filename></annotation>"
        ),
        "Annotations/e.xml": annotation("e.jpg", ("cat", 0)),
    }

    table = read_voc(files)

    assert summary(table) == [("e.jpg", ["cat"], None)]
    assert [str(error) for error in table.errors] == [
        "row 1: Annotations/a.xml: not well-formed XML (line 2, column 18)",
        "row 2: Annotations/b.xml: the root element is <notvoc>, not <annotation>",
        "row 3: Annotations/c.xml: an <object> has no <name>",
        "row 4: Annotations/d.xml: XML with a DTD or entity declarations is not accepted",
    ]


def test_single_xml_file_without_annotations_folder() -> None:
    table = read_voc({"upload.xml": annotation("x.jpg", ("cat", 0))})

    assert summary(table) == [("x.jpg", ["cat"], None)]


def test_imagesets_class_lists() -> None:
    files = {
        "ImageSets/Main/dog_train.txt": b"2008_000001  1\n2008_000002 -1\n2008_000003  0\n",
        "ImageSets/Main/cat_train.txt": b"2008_000001 -1\n2008_000002  1\n2008_000003 -1\n",
        "ImageSets/Main/cat_val.txt": b"2008_000010  1\n2008_000011 -1\n",
        "ImageSets/Main/cat_trainval.txt": b"2008_000001 -1\n2008_000010  1\n",
        "ImageSets/Main/potted_plant_val.txt": b"2008_000010 -1\n2008_000011 -1\n",
    }

    table = read_voc(files)

    assert table.format == "voc_imagesets"
    assert summary(table) == [
        ("2008_000001.jpg", ["dog"], "train"),
        ("2008_000002.jpg", ["cat"], "train"),
        ("2008_000003.jpg", ["dog"], "train"),  # 0 = difficult: the dog is there
        ("2008_000010.jpg", ["cat"], "val"),
        ("2008_000011.jpg", [], "val"),  # negative for every class: labeled with none
    ]
    assert table.label_names == ["cat", "dog", "potted_plant"]
    assert table.errors == []


def test_imagesets_malformed_lines_are_errors() -> None:
    files = {"ImageSets/Main/dog_train.txt": b"a 1\nb 2\nc\n\nd -1\n"}

    table = read_voc(files)

    assert [row.filename for row in table.rows] == ["a.jpg", "d.jpg"]
    assert [str(error) for error in table.errors] == [
        "row 2: ImageSets/Main/dog_train.txt: expected '<image> 1', '<image> 0' or "
        "'<image> -1', got 'b 2'",
        "row 3: ImageSets/Main/dog_train.txt: expected '<image> 1', '<image> 0' or "
        "'<image> -1', got 'c'",
    ]


def test_no_voc_files_is_refused() -> None:
    with pytest.raises(LabelFileError, match="no Pascal VOC labels found"):
        read_voc({"JPEGImages/a.jpg": b"\xff\xd8"})


def test_zip_of_a_dataset_reads_only_label_files() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("VOCdevkit/VOC2012/Annotations/a.xml", annotation("a.jpg", ("cat", 0)))
        archive.writestr("VOCdevkit/VOC2012/ImageSets/Main/val.txt", "a\n")
        archive.writestr("VOCdevkit/VOC2012/JPEGImages/a.jpg", bytes(2 * 1024 * 1024))

    table = read_voc_zip(buffer.getvalue(), max_total_uncompressed=1024 * 1024)

    assert summary(table) == [("a.jpg", ["cat"], "val")]


def test_zip_with_escaping_label_path_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../Annotations/a.xml", annotation("a.jpg", ("cat", 0)))

    with pytest.raises(LabelFileError, match=r"^\.\./Annotations/a\.xml: path escapes"):
        read_voc_zip(buffer.getvalue())


def test_not_a_zip_is_refused() -> None:
    with pytest.raises(LabelFileError, match="not a zip archive"):
        read_voc_zip(b"nope")
