"""Reading the image files of a multipart request, with limits checked up front."""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from app.errors import InvalidInput, TooLarge
from app.inference.images import describe_bytes
from app.services.predictions import Upload

MULTIPART_OVERHEAD = 1 << 20


async def read_uploads(
    request: Request, *, max_files: int, max_file_bytes: int, what: str = "images"
) -> tuple[list[Upload], dict[str, str]]:
    """The request's files (any field name) and its text fields.

    A body larger than ``max_files`` files at ``max_file_bytes`` each is refused from its
    Content-Length before it is read; a single file over the limit is refused by name.
    """
    if "multipart/form-data" not in request.headers.get("content-type", ""):
        raise InvalidInput(f"send the {what} as multipart/form-data file fields named 'files'")
    declared = int(request.headers.get("content-length") or 0)
    cap = max_files * max_file_bytes + MULTIPART_OVERHEAD
    if declared > cap:
        raise TooLarge(f"the request is {describe_bytes(declared)}, at most {describe_bytes(cap)}")
    try:
        form = await request.form(max_files=max_files + 1, max_fields=100)
    except MultiPartException as error:
        if "Too many files" in error.message:
            raise TooLarge(f"too many {what}: at most {max_files} in one call") from error
        raise InvalidInput(f"the multipart body is malformed ({error.message})") from error
    uploads: list[Upload] = []
    fields: dict[str, str] = {}
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            label = value.filename or f"{name} #{len(uploads) + 1}"
            if value.size is not None and value.size > max_file_bytes:
                raise TooLarge(
                    f"'{label}' is {describe_bytes(value.size)}; the limit is "
                    f"{describe_bytes(max_file_bytes)}",
                    details={"file": label, "bytes": value.size},
                )
            uploads.append(Upload(label, await value.read()))
            await value.close()
        else:
            fields[name] = value
    if len(uploads) > max_files:
        raise TooLarge(f"too many {what}: {len(uploads)} in one call, at most {max_files}")
    return uploads, fields
