"""/api/v1/projects/{project_id}/exports: the project's labels as one-hot CSV or JSON."""

from __future__ import annotations

import re
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response

from app.db import SessionDep
from app.deps import ProjectDep
from app.services.label_exports import export_labels

router = APIRouter(prefix="/projects/{project_id}/exports", tags=["exports"])

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


@router.get("/labels", response_class=Response)
def download_labels(
    project: ProjectDep,
    session: SessionDep,
    format: Literal["csv", "json"] = "csv",
    include_unlabeled: bool = False,
) -> Response:
    """Download labels: `csv` (filename + one 0/1 column per tag) or `json` (one record per
    image with `filename`, `labels`, `split`). Labeled images only unless asked otherwise."""
    body = export_labels(
        session=session, project=project, format=format, include_unlabeled=include_unlabeled
    )
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", project.name).strip("-") or f"project-{project.id}"
    return Response(
        body,
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{stem}-labels.{format}"'},
    )
