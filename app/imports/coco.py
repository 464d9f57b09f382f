"""COCO instances JSON: an image gets a label for each category present among its annotations.

Every entry of `images` becomes a row, so an image with no (selected) annotations is a row with
no labels: it was looked at and none of the chosen categories apply. The user picks which
categories become tags; `coco_categories` lists them with how many images each appears in.
Rows are numbered by position in `images`; errors about annotations name the annotation.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from app.imports.tables import LabelFileError, LabelTable, TableBuilder, load_json


class CocoCategory(NamedTuple):
    """A category of a COCO file and the number of images that have at least one of it."""

    id: int
    name: str
    image_count: int


def coco_categories(data: bytes) -> list[CocoCategory]:
    """List the file's categories in file order, with their image counts, for the user to pick."""
    document = _load(data)
    categories = _categories(document)
    images = _images_per_category(document)
    return [
        CocoCategory(category_id, name, len(images.get(category_id, ())))
        for category_id, name in categories.items()
    ]


def read_coco(data: bytes, categories: list[str] | None = None) -> LabelTable:
    """Read a COCO instances file; `categories` names the ones that become labels (None = all)."""
    document = _load(data)
    names_by_id = _categories(document)
    selected = _select(names_by_id, categories)
    builder = TableBuilder("coco")
    builder.declare_labels([name for category_id, name in names_by_id.items()
                            if category_id in selected])
    labels_by_image = _labels_by_image(document, names_by_id, selected, builder)
    seen_ids: set[str] = set()
    for position, image in enumerate(_list(document, "images"), 1):
        if not isinstance(image, dict) or "id" not in image:
            builder.error(position, f"images[{position - 1}] is not an object with an 'id'")
            continue
        if _key(image["id"]) in seen_ids:
            builder.error(position, f"image id {image['id']} appears twice in 'images'")
            continue
        seen_ids.add(_key(image["id"]))
        filename = image.get("file_name")
        if not isinstance(filename, str):
            builder.error(position, f"image id {image['id']} has no file_name")
            continue
        labels = labels_by_image.get(_key(image["id"]), [])
        builder.add_row(position, filename, labels, where=f"image id {image['id']}")
    return builder.build()


def _labels_by_image(
    document: dict[str, Any],
    names_by_id: dict[int, str],
    selected: set[int],
    builder: TableBuilder,
) -> dict[str, list[str]]:
    image_ids = {_key(image.get("id")) for image in _list(document, "images")
                 if isinstance(image, dict)}
    labels: dict[str, list[str]] = {}
    for position, annotation in enumerate(_list(document, "annotations"), 1):
        if not isinstance(annotation, dict):
            builder.error(position, f"annotations[{position - 1}] is not an object")
            continue
        subject = f"annotation id {annotation.get('id', '?')}"
        image_id = _key(annotation.get("image_id"))
        category_id = annotation.get("category_id")
        if image_id not in image_ids:
            builder.error(
                position, f"{subject} points at image id {annotation.get('image_id')}, "
                "which is not in 'images'"
            )
        elif not isinstance(category_id, int) or category_id not in names_by_id:
            builder.error(
                position, f"{subject} has category id {category_id}, "
                "which is not in 'categories'"
            )
        elif category_id in selected:
            labels.setdefault(image_id, []).append(names_by_id[category_id])
    return labels


def _images_per_category(document: dict[str, Any]) -> dict[int, set[str]]:
    """Category id → ids of the images annotated with it (malformed annotations skipped)."""
    images: dict[int, set[str]] = {}
    for annotation in _list(document, "annotations"):
        if isinstance(annotation, dict) and isinstance(annotation.get("category_id"), int):
            images.setdefault(annotation["category_id"], set()).add(
                _key(annotation.get("image_id"))
            )
    return images


def _select(names_by_id: dict[int, str], categories: list[str] | None) -> set[int]:
    if categories is None:
        return set(names_by_id)
    ids_by_name = {name: category_id for category_id, name in names_by_id.items()}
    unknown = [name for name in categories if name not in ids_by_name]
    if unknown:
        listed = ", ".join(f"'{name}'" for name in unknown)
        raise LabelFileError(f"the file has no categories named {listed}")
    return {ids_by_name[name] for name in categories}


def _load(data: bytes) -> dict[str, Any]:
    document = load_json(data)
    if not isinstance(document, dict) or not isinstance(document.get("images"), list):
        raise LabelFileError(
            "not a COCO instances file: expected an object with 'images', 'annotations' "
            "and 'categories' lists"
        )
    return document


def _categories(document: dict[str, Any]) -> dict[int, str]:
    names_by_id: dict[int, str] = {}
    for position, category in enumerate(_list(document, "categories")):
        if (
            not isinstance(category, dict)
            or not isinstance(category.get("id"), int)
            or not isinstance(category.get("name"), str)
            or not category["name"].strip()
        ):
            raise LabelFileError(f"categories[{position}] needs an integer 'id' and a 'name'")
        if category["id"] in names_by_id:
            raise LabelFileError(f"category id {category['id']} appears twice in 'categories'")
        names_by_id[category["id"]] = category["name"].strip()
    return names_by_id


def _list(document: dict[str, Any], key: str) -> list[Any]:
    value = document.get(key, [])
    if not isinstance(value, list):
        raise LabelFileError(f"'{key}' must be a list")
    return value


def _key(image_id: object) -> str:
    # Ids are matched as text: exporters disagree on 1 vs "1" and the image list decides.
    return str(image_id)
