"""/api/v1/projects/{project_id}/assets: upload, read, re-split, delete, and the image bytes.

The filtered listing (`GET .../assets`) belongs to the annotator's router.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request, status
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.api.upload_stream import ParsedForm, parse_upload
from app.config import settings
from app.db import SessionDep
from app.deps import CurrentUser, ProjectDep, StorageDep
from app.errors import InvalidInput
from app.models import Asset, Project
from app.schemas.assets import AssetRead, AssetUpdate, FileResultRead, UploadRead
from app.services import assets as asset_service
from app.services.assets import IngestReport, Upload, is_zip

router = APIRouter(prefix="/projects/{project_id}/assets", tags=["assets"])

# Multipart framing around the largest single file we accept.
REQUEST_OVERHEAD = 1024 * 1024
CACHE_CONTROL = "private, max-age=86400"


def upload_limit(filename: str, content_type: str) -> int:
    """The size limit of one uploaded file: archives may be larger than images."""
    if is_zip(filename, b"") or content_type in ("application/zip", "application/x-zip-compressed"):
        return settings.max_zip_bytes
    return settings.max_upload_bytes


def parse_tag_ids(form: ParsedForm) -> list[int]:
    """Tag ids from repeated `tag_ids` fields, or one comma-separated field."""
    ids: list[int] = []
    for value in form.fields.get("tag_ids", []):
        for piece in value.split(","):
            if piece.strip():
                try:
                    ids.append(int(piece))
                except ValueError:
                    raise InvalidInput(f"tag_ids: '{piece.strip()}' is not a tag id") from None
    return ids


def asset_urls(project_id: int, asset_id: int) -> tuple[str, str]:
    """(file URL, thumbnail URL) of an asset."""
    base = f"/api/v1/projects/{project_id}/assets/{asset_id}"
    return f"{base}/file", f"{base}/thumb"


def upload_read(project: Project, report: IngestReport) -> UploadRead:
    """The response body of an upload."""
    results = []
    for result in report.results:
        thumb = asset_urls(project.id, result.asset_id)[1] if result.asset_id else None
        results.append(FileResultRead(
            filename=result.filename, archive=result.archive, status=result.status,
            asset_id=result.asset_id, reason=result.reason, thumb_url=thumb,
        ))
    return UploadRead(
        created=report.count("created"),
        duplicates=report.count("duplicate"),
        rejected=report.count("rejected"),
        results=results,
    )


UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "required": ["files"],
            "properties": {
                "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                          "description": "Images and .zip archives; a file name may be a "
                                         "relative path (folder uploads)"},
                "tag_ids": {"type": "array", "items": {"type": "integer"},
                            "description": "Tags to put on every new image of the upload"},
            },
        }}},
    }
}


@router.post("", response_model=UploadRead, openapi_extra=UPLOAD_BODY)
async def upload_assets(
    request: Request,
    project: ProjectDep,
    user: CurrentUser,
    session: SessionDep,
    storage: StorageDep,
) -> UploadRead:
    """Upload images and zips (multipart field `files`, repeated; optional `tag_ids`).

    Each file gets a result: created, duplicate (with the existing asset id) or rejected (with
    the reason). Files over the size limit are cut off while they arrive.
    """
    form = await parse_upload(
        request,
        file_limit=upload_limit,
        max_request_bytes=settings.max_zip_bytes + REQUEST_OVERHEAD,
    )
    try:
        if not form.files:
            raise InvalidInput("no files in the upload: send them in the 'files' field")
        uploads = [
            Upload(part.filename, part.stream, part.rejection) for part in form.files
        ]
        report = await run_in_threadpool(
            lambda: asset_service.ingest_uploads(
                session=session, storage=storage, project=project, uploads=uploads,
                tag_ids=parse_tag_ids(form), author=user,
            )
        )
    finally:
        form.close()
    return upload_read(project, report)


def _asset_read(session: SessionDep, asset: Asset) -> AssetRead:
    file_url, thumb_url = asset_urls(asset.project_id, asset.id)
    return AssetRead(
        id=asset.id, project_id=asset.project_id, original_filename=asset.original_filename,
        sha256=asset.sha256, width=asset.width, height=asset.height, mime=asset.mime,
        bytes=asset.bytes, split=asset.split, review_state=asset.review_state,
        source_id=asset.source_id,
        tag_ids=asset_service.get_tag_ids(session=session, asset=asset),
        file_url=file_url, thumb_url=thumb_url,
        created_at=asset.created_at, updated_at=asset.updated_at,
    )


@router.get("/{asset_id}", response_model=AssetRead)
def get_asset(project: ProjectDep, asset_id: int, session: SessionDep) -> AssetRead:
    """One image with its tags."""
    asset = asset_service.get(session=session, project=project, asset_id=asset_id)
    return _asset_read(session, asset)


@router.patch("/{asset_id}", response_model=AssetRead)
def update_asset(
    project: ProjectDep, asset_id: int, body: AssetUpdate, session: SessionDep
) -> AssetRead:
    """Put an image in a split."""
    asset = asset_service.get(session=session, project=project, asset_id=asset_id)
    asset_service.update(session=session, asset=asset, split=body.split)
    return _asset_read(session, asset)


@router.delete("/{asset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_asset(
    project: ProjectDep, asset_id: int, session: SessionDep, storage: StorageDep
) -> None:
    """Delete an image, its tags and its files."""
    asset = asset_service.get(session=session, project=project, asset_id=asset_id)
    asset_service.delete(session=session, storage=storage, asset=asset)


def _stream(
    request: Request, asset: Asset, storage: StorageDep, *, thumbnail: bool
) -> Response:
    # The URL names the asset, whose bytes can change (a synced object was updated), so
    # caches revalidate with the content hash instead of keeping the bytes forever.
    etag = f'"{"t-" if thumbnail else ""}{asset.sha256}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    stream = asset_service.open_file(storage=storage, asset=asset, thumbnail=thumbnail)
    if not thumbnail:
        name = asset.original_filename.rsplit("/", 1)[-1]
        headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(name)}"
    return StreamingResponse(
        asset_service.iter_chunks(stream),
        media_type="image/jpeg" if thumbnail else asset.mime,
        headers=headers,
    )


@router.get("/{asset_id}/file")
def get_asset_file(
    request: Request, project: ProjectDep, asset_id: int, session: SessionDep,
    storage: StorageDep,
) -> Response:
    """The original bytes of an image, as uploaded."""
    asset = asset_service.get(session=session, project=project, asset_id=asset_id)
    return _stream(request, asset, storage, thumbnail=False)


@router.get("/{asset_id}/thumb")
def get_asset_thumb(
    request: Request, project: ProjectDep, asset_id: int, session: SessionDep,
    storage: StorageDep,
) -> Response:
    """The JPEG thumbnail of an image."""
    asset = asset_service.get(session=session, project=project, asset_id=asset_id)
    return _stream(request, asset, storage, thumbnail=True)
