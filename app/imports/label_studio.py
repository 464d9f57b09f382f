"""Label Studio JSON exports of image classification projects.

* JSON export: a list of tasks, each with `data` (the image, under `data.image`, else the first
  value that looks like an image path) and `annotations` (`completions` in old versions). The
  latest annotation that was not cancelled — by `updated_at`, then `created_at`, then id —
  decides: the image's labels are the `value.choices` of its results of type `choices`. A task
  with no such annotation is skipped with a warning (nobody labeled it); results of other types
  (boxes, text) are ignored with a warning.
* JSON-MIN export: a list of flat records with the image under `image` and the choices under
  `choice` or `choices` (or any key) as a string, a list, or `{"choices": [...]}`. Records of the
  same task `id` are reduced to the latest, as above.

The file name is the last part of the image reference, URL-decoded; for local-storage links
(`/data/local-files/?d=<path>`) it is the last part of `<path>`. Label Studio renames uploaded
files to `<8 hex digits>-<original name>`; for references under `/data/upload/` (and only there,
so names from buckets are left alone) that prefix is removed to give back the original name.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from app.imports.tables import LabelFileError, LabelTable, TableBuilder, load_json

_UPLOAD_PATH = re.compile(r"(?:^|/)data/upload/")
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-(.+)$")
_IMAGE_SUFFIX = re.compile(r"\.(jpe?g|png|webp|bmp|tiff?|gif)$", re.IGNORECASE)


def read_label_studio(data: bytes) -> LabelTable:
    """Read a Label Studio JSON or JSON-MIN export of a classification project."""
    tasks = load_json(data)
    if not isinstance(tasks, list):
        raise LabelFileError("not a Label Studio export: expected a JSON list of tasks")
    if any(isinstance(task, dict) and isinstance(task.get("data"), dict) for task in tasks):
        return _read_full(tasks)
    return _read_min(tasks)


def filename_from_reference(reference: str) -> str:
    """The original file name behind a Label Studio image reference (URL or path)."""
    parts = urlsplit(reference.strip())
    path = parts.path
    local = parse_qs(parts.query).get("d")
    if local:
        path = local[0]
    name = unquote(path).replace("\\", "/").rsplit("/", 1)[-1]
    if not local and _UPLOAD_PATH.search(unquote(parts.path)):
        match = _UPLOAD_PREFIX.match(name)
        if match:
            name = match.group(1)
    return name


def _read_full(tasks: list[Any]) -> LabelTable:
    builder = TableBuilder("label_studio")
    ignored_types: dict[str, int] = {}
    for position, task in enumerate(tasks, 1):
        subject = _subject(task, position)
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            builder.error(position, f"{subject} has no 'data' object")
            continue
        filename = _filename(task["data"], builder, position, subject)
        if filename is None:
            continue
        annotation = _latest(task.get("annotations", task.get("completions")))
        if annotation is None:
            builder.warn(position, f"{subject} ('{filename}') has no annotation; skipped")
            continue
        labels: list[str] = []
        for result in annotation.get("result") or []:
            if not isinstance(result, dict):
                continue
            if result.get("type") == "choices":
                labels.extend(_choices(result.get("value")))
            else:
                kind = str(result.get("type"))
                ignored_types[kind] = ignored_types.get(kind, 0) + 1
        builder.add_row(position, filename, labels, where=subject)
    for kind, count in ignored_types.items():
        builder.warn(0, f"{count} result(s) of type '{kind}' ignored: only 'choices' are read")
    return builder.build()


def _read_min(records: list[Any]) -> LabelTable:
    builder = TableBuilder("label_studio_min")
    latest: dict[object, tuple[int, dict[str, Any]]] = {}
    for position, record in enumerate(records, 1):
        if not isinstance(record, dict):
            builder.error(position, f"record {position} is not an object")
            continue
        key = record.get("id", f"record {position}")
        current = latest.get(key)
        if current is None or _recency(record) >= _recency(current[1]):
            latest[key] = (position, record)
    for position, record in sorted(latest.values(), key=lambda item: item[0]):
        subject = _subject(record, position)
        filename = _filename(record, builder, position, subject)
        if filename is None:
            continue
        builder.add_row(position, filename, _min_choices(record), where=subject)
    return builder.build()


def _min_choices(record: dict[str, Any]) -> list[str]:
    for key in ("choice", "choices"):
        if key in record:
            return _choices(record[key])
    for value in record.values():
        if isinstance(value, dict) and "choices" in value:
            return _choices(value)
    return []


def _choices(value: object) -> list[str]:
    """Choices given as 'a', ['a', 'b'] or {'choices': [...]} → list of names."""
    if isinstance(value, dict):
        value = value.get("choices")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _filename(
    fields: dict[str, Any], builder: TableBuilder, position: int, subject: str
) -> str | None:
    reference = fields.get("image")
    if not isinstance(reference, str) or not reference.strip():
        reference = next(
            (value for value in fields.values()
             if isinstance(value, str) and _looks_like_image(value)),
            None,
        )
    if reference is None:
        builder.error(position, f"{subject} has no image reference (expected data.image)")
        return None
    if reference.startswith("data:"):
        builder.error(position, f"{subject} embeds its image as a data: URL; it has no file name")
        return None
    return filename_from_reference(reference)


def _looks_like_image(value: str) -> bool:
    parts = urlsplit(value)
    return bool(_IMAGE_SUFFIX.search(parts.path) or "d" in parse_qs(parts.query))


def _latest(annotations: object) -> dict[str, Any] | None:
    """The most recent annotation that was not cancelled, if any."""
    if not isinstance(annotations, list):
        return None
    kept = [item for item in annotations if isinstance(item, dict)
            and not item.get("was_cancelled")]
    return max(kept, key=_recency, default=None)


def _recency(item: dict[str, Any]) -> tuple[str, str, str]:
    # ISO-8601 timestamps from one export share a format, so they order as text.
    identifier = item.get("annotation_id", item.get("id", 0))
    return (
        str(item.get("updated_at") or ""),
        str(item.get("created_at") or ""),
        f"{identifier:>20}" if isinstance(identifier, int) else str(identifier),
    )


def _subject(task: object, position: int) -> str:
    if isinstance(task, dict) and "id" in task:
        return f"task {task['id']}"
    return f"task #{position}"
