"""/api/v1/projects/{project_id}/label-imports: upload a label file, preview, confirm, discard."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from starlette.concurrency import run_in_threadpool

from app.api.assets import REQUEST_OVERHEAD, upload_limit
from app.api.upload_stream import parse_upload
from app.config import settings
from app.db import SessionDep
from app.deps import CurrentUser, ProjectDep, StorageDep
from app.errors import InvalidInput, TooLarge
from app.schemas.label_imports import (
    CocoCategoryRead,
    LabelImportOptions,
    LabelImportPreviewRead,
    LabelImportResultRead,
    MatchedRowRead,
    RowErrorRead,
)
from app.services import label_imports as label_import_service
from app.services.label_imports import FORMATS, LabelImportPreview

router = APIRouter(prefix="/projects/{project_id}/label-imports", tags=["label imports"])


def preview_read(preview: LabelImportPreview) -> LabelImportPreviewRead:
    """The response body of a preview."""
    return LabelImportPreviewRead(
        import_id=preview.import_id,
        format=preview.format,
        filename=preview.filename,
        rows=preview.rows,
        matched_count=preview.matched_count,
        matched=[MatchedRowRead(row=m.row_number, filename=m.filename, asset_id=m.asset_id,
                                labels=m.labels, split=m.split) for m in preview.matched],
        unmatched_count=preview.unmatched_count,
        unmatched=preview.unmatched,
        new_tags=preview.new_tags,
        label_names=preview.label_names,
        errors=[RowErrorRead(row=e.row_number, message=e.message) for e in preview.errors],
        warnings=[RowErrorRead(row=w.row_number, message=w.message) for w in preview.warnings],
        categories=[CocoCategoryRead(id=c.id, name=c.name, image_count=c.image_count)
                    for c in preview.categories],
        selected_categories=preview.selected_categories,
        unlisted_images_count=preview.unlisted_count,
        unlisted_images=preview.unlisted_images,
        can_confirm=preview.can_confirm,
    )


IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "required": ["file", "format"],
            "properties": {
                "file": {"type": "string", "format": "binary"},
                "format": {"type": "string", "enum": list(FORMATS)},
                "categories": {"type": "array", "items": {"type": "string"},
                               "description": "COCO: the categories that become tags"},
            },
        }}},
    }
}


@router.post("", response_model=LabelImportPreviewRead, status_code=status.HTTP_201_CREATED,
             openapi_extra=IMPORT_BODY)
async def start_label_import(
    request: Request, project: ProjectDep, session: SessionDep, storage: StorageDep
) -> LabelImportPreviewRead:
    """Upload a label file (multipart: `file`, `format`, optional `categories`) and preview it.

    Formats: csv, index_zip (a zip with index.csv and the images), coco, voc (a zip),
    label_studio. Nothing is written to the project until the import is confirmed.
    """
    form = await parse_upload(
        request, file_limit=upload_limit,
        max_request_bytes=settings.max_zip_bytes + REQUEST_OVERHEAD,
    )
    try:
        format = (form.fields.get("format") or [""])[0].strip()
        if format not in FORMATS:
            raise InvalidInput(f"format: choose one of {', '.join(FORMATS)}")
        if len(form.files) != 1:
            raise InvalidInput("send exactly one label file in the 'file' field")
        part = form.files[0]
        if part.rejection is not None or part.stream is None:
            raise TooLarge(f"{part.filename}: {part.rejection}")
        categories = [c for c in form.fields.get("categories", []) if c.strip()] or None
        stream = part.stream
        preview = await run_in_threadpool(
            lambda: label_import_service.start_import(
                session=session, storage=storage, project=project, format=format,
                filename=part.filename, stream=stream, categories=categories,
            )
        )
    finally:
        form.close()
    return preview_read(preview)


@router.post("/{import_id}/preview", response_model=LabelImportPreviewRead)
def preview_label_import(
    project: ProjectDep, import_id: str, body: LabelImportOptions, session: SessionDep,
    storage: StorageDep,
) -> LabelImportPreviewRead:
    """Preview a staged import again, e.g. with another choice of COCO categories."""
    preview = label_import_service.preview_import(
        session=session, storage=storage, project=project, import_id=import_id,
        categories=body.categories,
    )
    return preview_read(preview)


@router.post("/{import_id}/confirm", response_model=LabelImportResultRead)
def confirm_label_import(
    project: ProjectDep, import_id: str, body: LabelImportOptions, session: SessionDep,
    storage: StorageDep, user: CurrentUser,
) -> LabelImportResultRead:
    """Check the import again and apply it in one transaction (all or nothing)."""
    result = label_import_service.confirm_import(
        session=session, storage=storage, project=project, import_id=import_id,
        categories=body.categories, author=user,
    )
    return LabelImportResultRead(
        labeled=result.labeled, annotations=result.annotations,
        tags_created=result.tags_created, images_created=result.images_created,
        images_duplicate=result.images_duplicate,
    )


@router.delete("/{import_id}", status_code=status.HTTP_204_NO_CONTENT)
def discard_label_import(project: ProjectDep, import_id: str, storage: StorageDep) -> None:
    """Drop a staged import without applying it."""
    label_import_service.discard_import(storage=storage, project=project, import_id=import_id)
