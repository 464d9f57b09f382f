"""Pascal VOC labels: per-image annotation XML, or per-class image lists.

`read_voc` takes the dataset's files keyed by relative path, under any prefix ("VOC2012/...").

* With `Annotations/*.xml` present (or else any `*.xml`), each file is one image: its labels
  are the distinct `object/name` values (objects marked difficult count: they are in the
  picture), its file name the `filename` element, or `<xml stem>.jpg` without one. Splits come from
  `ImageSets/Main/{train,val,test}.txt` when those lists are there.
* Otherwise `ImageSets/Main/<class>_<split>.txt` lists are read. A line `<name> 1` is a positive,
  `-1` a negative and `0` ("difficult") a positive too, since the object is in the image. Every
  listed image becomes a row (one with only negatives has no labels); its file name is
  `<name>.jpg`, as in VOC's JPEGImages. The split is the file's (`trainval` says none).

XML with a DTD or entity declarations is refused: VOC files never have one, and entities are how
XML bombs work.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ElementTree
from pathlib import PurePosixPath

from app.imports.archives import iter_zip
from app.imports.rejections import ArchiveRejected, RejectedFile
from app.imports.tables import LabelFileError, LabelTable, TableBuilder

_ANNOTATION = re.compile(r"(?:^|/)Annotations/[^/]+\.xml$", re.IGNORECASE)
_CLASS_LIST = re.compile(r"(?:^|/)ImageSets/Main/(.+)_(train|val|test|trainval)\.txt$")
_SPLIT_LIST = re.compile(r"(?:^|/)ImageSets/Main/(train|val|test)\.txt$")
_MEMBERSHIP = {"1": True, "0": True, "-1": False}


def read_voc(files: dict[str, bytes]) -> LabelTable:
    """Read Pascal VOC annotations (XML, or else ImageSets class lists) into a LabelTable."""
    annotations = sorted(path for path in files if _ANNOTATION.search(path)) or sorted(
        path for path in files if path.lower().endswith(".xml")
    )
    if annotations:
        return _read_annotations(files, annotations)
    class_lists = sorted(path for path in files if _CLASS_LIST.search(path))
    if class_lists:
        return _read_class_lists(files, class_lists)
    raise LabelFileError(
        "no Pascal VOC labels found: expected Annotations/*.xml or "
        "ImageSets/Main/<class>_<split>.txt files"
    )


def read_voc_zip(
    data: bytes,
    *,
    max_total_uncompressed: int = 1024**3,
    max_member_bytes: int = 64 * 1024**2,
    max_members: int = 2_000_000,
) -> LabelTable:
    """Read the VOC label files of a zipped dataset, ignoring its images."""
    files: dict[str, bytes] = {}
    try:
        for item in iter_zip(
            io.BytesIO(data),
            max_total_uncompressed=max_total_uncompressed,
            max_member_bytes=max_member_bytes,
            max_members=max_members,
            archive_name="the archive",
            include=is_voc_label_path,
        ):
            if isinstance(item, RejectedFile):
                raise LabelFileError(f"{item.filename}: {item.reason}")
            files[item.path] = item.data
    except ArchiveRejected as exc:
        raise LabelFileError(exc.reason) from exc
    return read_voc(files)


def is_voc_label_path(path: str) -> bool:
    """True for the files of a VOC dataset that carry labels."""
    return bool(
        _ANNOTATION.search(path) or _CLASS_LIST.search(path) or _SPLIT_LIST.search(path)
    )


def _read_annotations(files: dict[str, bytes], paths: list[str]) -> LabelTable:
    builder = TableBuilder("voc_xml")
    splits = _split_lists(files, builder)
    for position, path in enumerate(paths, 1):
        try:
            root = _parse_xml(files[path])
        except ValueError as exc:
            builder.error(position, f"{path}: {exc}")
            continue
        if root.tag != "annotation":
            builder.error(position, f"{path}: the root element is <{root.tag}>, not <annotation>")
            continue
        names = [obj.findtext("name") for obj in root.findall("object")]
        if any(name is None or not name.strip() for name in names):
            builder.error(position, f"{path}: an <object> has no <name>")
            continue
        stem = PurePosixPath(path).stem
        filename = (root.findtext("filename") or "").strip() or f"{stem}.jpg"
        labels = [name.strip() for name in names if name]
        builder.add_row(position, filename, labels, split=splits.get(stem), where=path)
    return builder.build()


def _read_class_lists(files: dict[str, bytes], paths: list[str]) -> LabelTable:
    builder = TableBuilder("voc_imagesets")
    images: dict[str, tuple[list[str], str | None]] = {}
    for path in paths:
        match = _CLASS_LIST.search(path)
        assert match is not None
        class_name, split = match.group(1), match.group(2)
        builder.declare_labels([class_name])
        for line_number, line in enumerate(_lines(files[path], path), 1):
            tokens = line.split()
            if not tokens:
                continue
            if len(tokens) != 2 or tokens[1] not in _MEMBERSHIP:
                builder.error(
                    line_number,
                    f"{path}: expected '<image> 1', '<image> 0' or '<image> -1', got '{line}'",
                )
                continue
            labels, image_split = images.setdefault(tokens[0], ([], None))
            if image_split is None and split != "trainval":
                images[tokens[0]] = (labels, split)
            if _MEMBERSHIP[tokens[1]] and class_name not in labels:
                labels.append(class_name)
    for position, (name, (labels, split)) in enumerate(images.items(), 1):
        builder.add_row(position, f"{name}.jpg", labels, split=split, where=f"image '{name}'")
    return builder.build()


def _split_lists(files: dict[str, bytes], builder: TableBuilder) -> dict[str, str]:
    """Image stem → split, from ImageSets/Main/{train,val,test}.txt."""
    splits: dict[str, str] = {}
    for path in sorted(files):
        match = _SPLIT_LIST.search(path)
        if match is None:
            continue
        try:
            lines = _lines(files[path], path)
        except LabelFileError as exc:
            builder.warn(0, f"{exc}; splits from it are ignored")
            continue
        for line in lines:
            tokens = line.split()
            if tokens:
                splits.setdefault(tokens[0], match.group(1))
    return splits


def _lines(data: bytes, path: str) -> list[str]:
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise LabelFileError(f"{path} is not UTF-8 text (byte {exc.start})") from exc


def _parse_xml(data: bytes) -> ElementTree.Element:
    """Parse annotation XML; raises ValueError with a position for anything malformed."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ValueError("XML with a DTD or entity declarations is not accepted")
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        line, column = exc.position
        raise ValueError(f"not well-formed XML (line {line}, column {column + 1})") from exc
