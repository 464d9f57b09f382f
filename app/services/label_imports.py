"""Label imports with a preview: CSV, index.csv zips (images and labels), COCO, VOC, Label Studio.

The uploaded file is staged in blob storage under an import id. `preview_import` reads it, matches
its rows to the project's images (or, for an index.csv zip, to the archive's images) and says what
confirming would do; it writes nothing. `confirm_import` repeats every check on the staged file,
then writes everything in one transaction: a failure anywhere rolls it all back, including the
images an index.csv zip brought in.

What an import writes: for each matched image, the file decides the tags it names (the file's
label vocabulary): those present in the row are set (source "import"), those absent removed;
tags the file does not mention are left alone, except that a set tag pushes out the other tags of
its exclusivity group. Every matched image becomes `labeled`; a row's split, when given, is set.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from app.config import settings
from app.errors import InvalidInput
from app.imports.coco import CocoCategory
from app.imports.matching import match_rows
from app.imports.tables import LabelFileError, LabelTable, RowError
from app.models import Annotation, Asset, Project, Tag, User, utcnow
from app.services import label_import_files as files
from app.services.assets import ingest_zip
from app.services.ingest import Ingestor
from app.services.label_import_files import FORMATS, ArchiveLayout, StagedImport
from app.storage import BlobStore

# Preview lists are cut to this many entries (the counts are always complete).
PREVIEW_LIMIT = 500
CHUNK = 2_000
# Stands for "several images have this file name" in the name → asset id map.
AMBIGUOUS = -1

__all__ = ["FORMATS", "LabelImportPreview", "LabelImportResult", "confirm_import",
           "discard_import", "preview_import", "start_import"]


@dataclass(frozen=True, slots=True)
class MatchedRow:
    """A row that will be applied: to an asset (id), or to an archive member (index.csv zips)."""

    row_number: int
    filename: str
    labels: list[str]
    split: str | None
    asset_id: int | None = None
    member: str | None = None


@dataclass(slots=True)
class LabelImportPreview:
    """What confirming would do; `errors` (with row numbers) must be empty to confirm."""

    import_id: str
    format: str
    filename: str
    rows: int
    matched: list[MatchedRow]
    unmatched: list[str]
    new_tags: list[str]
    errors: list[RowError]
    warnings: list[RowError]
    label_names: list[str]
    categories: list[CocoCategory] = field(default_factory=list)
    selected_categories: list[str] | None = None
    unlisted_images: list[str] = field(default_factory=list)
    # Label in the file → tag name; the layout of an index.csv zip.
    label_map: dict[str, str] = field(default_factory=dict)
    archive: ArchiveLayout | None = None
    # Complete counts; the lists above may be cut to PREVIEW_LIMIT entries.
    matched_count: int = 0
    unmatched_count: int = 0
    unlisted_count: int = 0

    @property
    def can_confirm(self) -> bool:
        """True when there is something to apply and nothing is wrong."""
        return not self.errors and self.matched_count > 0


@dataclass(frozen=True, slots=True)
class LabelImportResult:
    """What an import wrote."""

    labeled: int
    annotations: int
    tags_created: list[str]
    images_created: int = 0
    images_duplicate: int = 0


def start_import(
    *,
    session: Session,
    storage: BlobStore,
    project: Project,
    format: str,
    filename: str,
    stream: BinaryIO,
    categories: list[str] | None = None,
) -> LabelImportPreview:
    """Stage an uploaded label file and preview it."""
    staged = files.stage(storage=storage, project=project, format=format, filename=filename,
                         stream=stream)
    try:
        return preview_import(session=session, storage=storage, project=project,
                              import_id=staged.import_id, categories=categories)
    except InvalidInput:
        files.discard(storage=storage, project=project, import_id=staged.import_id)
        raise


def preview_import(
    *,
    session: Session,
    storage: BlobStore,
    project: Project,
    import_id: str,
    categories: list[str] | None = None,
) -> LabelImportPreview:
    """Read a staged import and say what it would do, writing nothing."""
    staged = files.load(storage=storage, project=project, import_id=import_id)
    with files.open_data(storage=storage, project=project, staged=staged) as data:
        preview = _plan(session, project, staged, data, categories)
    preview.matched = preview.matched[:PREVIEW_LIMIT]
    preview.unmatched = preview.unmatched[:PREVIEW_LIMIT]
    preview.unlisted_images = preview.unlisted_images[:PREVIEW_LIMIT]
    preview.errors = preview.errors[:PREVIEW_LIMIT]
    return preview


def discard_import(*, storage: BlobStore, project: Project, import_id: str) -> None:
    """Forget a staged import without applying it."""
    files.load(storage=storage, project=project, import_id=import_id)
    files.discard(storage=storage, project=project, import_id=import_id)


def confirm_import(
    *,
    session: Session,
    storage: BlobStore,
    project: Project,
    import_id: str,
    categories: list[str] | None = None,
    author: User | None = None,
) -> LabelImportResult:
    """Check the staged import again and apply it, all or nothing, in one transaction."""
    staged = files.load(storage=storage, project=project, import_id=import_id)
    ingestor: Ingestor | None = None
    try:
        with files.open_data(storage=storage, project=project, staged=staged) as data:
            preview = _plan(session, project, staged, data, categories)
            if preview.errors:
                raise InvalidInput(
                    f"the import has {len(preview.errors)} row(s) with errors; first: "
                    f"{preview.errors[0]}",
                    details=[{"row": e.row_number, "message": e.message}
                             for e in preview.errors[:PREVIEW_LIMIT]],
                )
            if not preview.matched_count:
                raise InvalidInput("nothing to import: no row matches an image of the project")
            created = duplicates = 0
            matched = preview.matched
            if staged.format == "index_zip":
                ingestor = Ingestor(
                    session=session, storage=storage, project_id=project.id,
                    max_pixels=settings.max_image_pixels, thumb_size=settings.thumbnail_size,
                    author_id=author.id if author else None,
                )
                matched, created, duplicates = _ingest_members(ingestor, data, staged, preview)
            tags_created, annotations = _apply(session, project, matched, preview, author)
        session.commit()
    except BaseException:
        session.rollback()
        if ingestor is not None:
            ingestor.discard()
        raise
    files.discard(storage=storage, project=project, import_id=import_id)
    return LabelImportResult(
        labeled=len({row.asset_id for row in matched}),
        annotations=annotations,
        tags_created=tags_created,
        images_created=created,
        images_duplicate=duplicates,
    )


# -- planning ---------------------------------------------------------------------------------


def _plan(
    session: Session,
    project: Project,
    staged: StagedImport,
    data: BinaryIO,
    categories: list[str] | None,
) -> LabelImportPreview:
    try:
        source = files.read_table(staged, data, categories)
    except LabelFileError as exc:
        raise InvalidInput(f"{staged.filename}: {exc}") from exc
    table, archive = source.table, source.archive
    tags = list(session.scalars(select(Tag).where(Tag.project_id == project.id)))
    known: dict[str, int] | dict[str, str] = (
        {path: path for path in archive.paths} if archive is not None
        else _project_filenames(session, project)
    )
    result = match_rows(table, known, existing_tags=[tag.name for tag in tags])
    errors = list(table.errors) + list(result.conflicts)
    rows_by_name = {row.filename: row for row in table.rows}
    for name, candidates in result.ambiguous.items():
        errors.append(RowError(rows_by_name[name].row_number,
                               f"'{name}' could be any of {', '.join(candidates[:5])}"))
    if archive is not None:
        errors.extend(RowError(rows_by_name[name].row_number, f"'{name}' is not in the archive")
                      for name in result.unmatched)
    matched: list[MatchedRow] = []
    for row, target in result.matched:
        if target == AMBIGUOUS:
            errors.append(RowError(row.row_number,
                                   f"several images of the project are named '{row.filename}'"))
            continue
        labels = list(dict.fromkeys(result.label_map[label] for label in row.labels))
        matched.append(MatchedRow(
            row.row_number, row.filename, labels, row.split,
            asset_id=target if isinstance(target, int) else None,
            member=target if isinstance(target, str) else None,
        ))
    errors.extend(_label_errors(table, tags, matched))
    used = set(result.label_map.values())
    warnings = list(table.warnings) + [
        RowError(0, f"tag '{tag.name}' is archived; the import will restore it")
        for tag in tags if tag.archived and tag.name in used
    ]
    listed = {row.member for row in matched}
    unlisted = [p for p in archive.images if p not in listed] if archive else []
    return LabelImportPreview(
        import_id=staged.import_id, format=staged.format, filename=staged.filename,
        rows=len(table.rows) + len(table.errors), matched=matched,
        unmatched=[] if archive is not None else result.unmatched, new_tags=result.new_labels,
        errors=sorted(errors, key=lambda e: e.row_number), warnings=warnings,
        label_names=table.label_names, categories=source.categories,
        selected_categories=categories,
        unlisted_images=unlisted, label_map=result.label_map, archive=archive,
        matched_count=len(matched), unmatched_count=0 if archive else len(result.unmatched),
        unlisted_count=len(unlisted),
    )


def _project_filenames(session: Session, project: Project) -> dict[str, int]:
    """File name → asset id, AMBIGUOUS for names that several images share."""
    names: dict[str, int] = {}
    for name, asset_id in session.execute(
        select(Asset.original_filename, Asset.id).where(Asset.project_id == project.id)
    ):
        names[name] = AMBIGUOUS if name in names else asset_id
    return names


def _label_errors(table: LabelTable, tags: list[Tag], matched: list[MatchedRow]) -> list[RowError]:
    errors = [RowError(0, f"label '{name[:40]}' is longer than 100 characters")
              for name in table.label_names if len(" ".join(name.split())) > 100]
    group_of = {tag.name: tag.group for tag in tags if tag.group}
    for row in matched:
        seen: dict[str, str] = {}
        for label in row.labels:
            group = group_of.get(label)
            if group is None:
                continue
            if group in seen:
                errors.append(RowError(row.row_number, f"'{row.filename}': tags '{seen[group]}' "
                                       f"and '{label}' are both in group '{group}' and exclude "
                                       "each other"))
                break
            seen[group] = label
    return errors


# -- writing ----------------------------------------------------------------------------------


def _ingest_members(
    ingestor: Ingestor, data: BinaryIO, staged: StagedImport, preview: LabelImportPreview
) -> tuple[list[MatchedRow], int, int]:
    """Bring in the archive's images; any refused image fails the whole import."""
    archive = preview.archive
    assert archive is not None
    wanted = {row.member for row in preview.matched if row.member} | set(preview.unlisted_images)
    data.seek(0)
    with ingestor:
        ingest_zip(ingestor, data, archive_name=staged.filename,
                   include={archive.member(path) for path in wanted})
        results = ingestor.finish()
    rejected = [r for r in results if r.status == "rejected"]
    if rejected:
        raise InvalidInput(
            f"{len(rejected)} image(s) of the archive cannot be imported, so nothing was; "
            f"first: {rejected[0].filename}: {rejected[0].reason}",
            details=[{"filename": r.filename, "reason": r.reason} for r in rejected],
        )
    asset_by_path = {archive.relative(r.filename): r.asset_id for r in results}
    matched = [
        MatchedRow(row.row_number, row.filename, row.labels, row.split,
                   asset_id=asset_by_path[row.member or ""])
        for row in preview.matched
    ]
    created = sum(r.status == "created" for r in results)
    return matched, created, len(results) - created


def _apply(
    session: Session,
    project: Project,
    matched: Sequence[MatchedRow],
    preview: LabelImportPreview,
    author: User | None,
) -> tuple[list[str], int]:
    from app.services import tags as tag_service

    for name in preview.new_tags:
        tag_service.create(session=session, project=project, name=name, commit=False)
    tags = {tag.name: tag for tag in session.scalars(
        select(Tag).where(Tag.project_id == project.id))}
    # The file decides every tag of its vocabulary, including labels no row uses.
    vocabulary = {tags[name].id for name in preview.label_map.values()}
    for tag in tags.values():
        if tag.archived and tag.id in vocabulary:
            tag.archived = False
    rivals = _group_rivals(tags)
    asset_ids = [row.asset_id for row in matched if row.asset_id is not None]
    for chunk in _chunks(asset_ids):
        session.execute(delete(Annotation).where(
            Annotation.asset_id.in_(chunk), Annotation.tag_id.in_(vocabulary)))
    pushed_out: dict[int, set[int]] = defaultdict(set)
    pairs: list[tuple[int, int]] = []
    for row in matched:
        assert row.asset_id is not None
        for name in dict.fromkeys(row.labels):
            tag = tags[name]
            pairs.append((row.asset_id, tag.id))
            for rival in rivals.get(tag.id, ()):
                pushed_out[rival].add(row.asset_id)
    for tag_id, owners in pushed_out.items():
        for chunk in _chunks(sorted(owners)):
            session.execute(delete(Annotation).where(
                Annotation.tag_id == tag_id, Annotation.asset_id.in_(chunk)))
    now = utcnow()
    author_id = author.id if author else None
    for start in range(0, len(pairs), CHUNK):
        session.execute(insert(Annotation), [
            {"asset_id": asset_id, "tag_id": tag_id, "source": "import",
             "author_id": author_id, "created_at": now}
            for asset_id, tag_id in pairs[start : start + CHUNK]
        ])
    for chunk in _chunks(asset_ids):
        session.execute(update(Asset).where(Asset.id.in_(chunk)).values(
            review_state="labeled", updated_at=now))
    by_split: dict[str, list[int]] = defaultdict(list)
    for row in matched:
        if row.split and row.asset_id is not None:
            by_split[row.split].append(row.asset_id)
    for split, ids in by_split.items():
        for chunk in _chunks(ids):
            session.execute(update(Asset).where(Asset.id.in_(chunk)).values(split=split))
    return list(preview.new_tags), len(pairs)


def _group_rivals(tags: dict[str, Tag]) -> dict[int, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for tag in tags.values():
        if tag.group:
            groups[tag.group].append(tag.id)
    return {tag_id: [other for other in members if other != tag_id]
            for members in groups.values() for tag_id in members}


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


def as_stream(data: bytes) -> BinaryIO:
    """Wrap bytes for `start_import` (tests, scripts)."""
    return io.BytesIO(data)
