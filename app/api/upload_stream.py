"""Streaming multipart parsing with per-file size limits.

Starlette's form parser spools every file whole before the route sees it. Here each file part is
counted as it arrives: once a part passes its limit the rest of it is dropped (the part becomes a
rejection with a reason), so an oversized file costs bandwidth but neither memory nor disk, and
the other files of the request still go in. The request as a whole is capped too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from app.errors import InvalidInput, TooLarge
from app.imports.rejections import format_bytes

# Parts stay in memory up to this size, then spill to a temporary file.
SPOOL_BYTES = 8 * 1024 * 1024
MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 10_000


@dataclass(slots=True)
class FilePart:
    """A received file: its stream (rewound), size, and why it was refused, if it was."""

    field_name: str
    filename: str
    content_type: str
    stream: BinaryIO | None
    size: int = 0
    rejection: str | None = None


@dataclass(slots=True)
class ParsedForm:
    """Text fields (repeatable) and file parts of a multipart request."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[FilePart] = field(default_factory=list)

    def close(self) -> None:
        """Release temporary files."""
        for part in self.files:
            if part.stream is not None:
                part.stream.close()


@dataclass(slots=True)
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    content_type: str = ""
    data: bytearray = field(default_factory=bytearray)
    file: FilePart | None = None
    limit: int = 0


class _Collector:
    """python-multipart callbacks that build a ParsedForm; file writes are queued for a thread."""

    def __init__(self, file_limit: Callable[[str, str], int]) -> None:
        self.form = ParsedForm()
        self.file_limit = file_limit
        self.part = _Part()
        self.header_name = b""
        self.header_value = b""
        self.pending: list[tuple[BinaryIO, bytes]] = []
        self.rejected: list[FilePart] = []
        self.parts = 0

    def on_part_begin(self) -> None:
        self.part = _Part()
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise InvalidInput(f"too many parts in one request (the limit is {MAX_PARTS:,})")

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers[self.header_name.lower()] = self.header_value
        self.header_name, self.header_value = b"", b""

    def on_headers_finished(self) -> None:
        _disposition, options = parse_options_header(
            self.part.headers.get(b"content-disposition", b"")
        )
        self.part.name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in options:
            return
        # Folder uploads send the relative path as the file name; keep it, '/'-separated.
        filename = options[b"filename"].decode("utf-8", "replace").replace("\\", "/").strip("/")
        self.part.filename = filename or "unnamed"
        self.part.content_type = self.part.headers.get(b"content-type", b"").decode("latin-1")
        self.part.limit = self.file_limit(self.part.filename, self.part.content_type)
        stream = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        self.part.file = FilePart(self.part.name, self.part.filename, self.part.content_type,
                                  stream)  # type: ignore[arg-type]
        self.form.files.append(self.part.file)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        file = self.part.file
        if file is None:
            if len(self.part.data) + len(chunk) > MAX_FIELD_BYTES:
                raise InvalidInput(f"form field '{self.part.name}' is too long")
            self.part.data.extend(chunk)
            return
        file.size += len(chunk)
        if file.rejection is not None:
            return
        if file.size > self.part.limit:
            file.rejection = (
                f"file is larger than the upload limit of {format_bytes(self.part.limit)}"
            )
            self.rejected.append(file)
            return
        assert file.stream is not None
        self.pending.append((file.stream, bytes(chunk)))

    def on_part_end(self) -> None:
        if self.part.file is None:
            value = self.part.data.decode("utf-8", "replace")
            self.form.fields.setdefault(self.part.name, []).append(value)


def _write_pending(pending: list[tuple[BinaryIO, bytes]], rejected: list[FilePart]) -> None:
    for stream, chunk in pending:
        if not stream.closed:
            stream.write(chunk)
    for part in rejected:
        if part.stream is not None:
            part.stream.close()
            part.stream = None


async def parse_upload(
    request: Request, *, file_limit: Callable[[str, str], int], max_request_bytes: int
) -> ParsedForm:
    """Parse a multipart request, capping each file at `file_limit(filename, content_type)`."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise InvalidInput("send the files as multipart/form-data")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_request_bytes:
        raise TooLarge(_request_too_large(max_request_bytes))
    collector = _Collector(file_limit)
    parser = MultipartParser(params[b"boundary"], {
        "on_part_begin": collector.on_part_begin,
        "on_header_field": collector.on_header_field,
        "on_header_value": collector.on_header_value,
        "on_header_end": collector.on_header_end,
        "on_headers_finished": collector.on_headers_finished,
        "on_part_data": collector.on_part_data,
        "on_part_end": collector.on_part_end,
    })
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_request_bytes:
                raise TooLarge(_request_too_large(max_request_bytes))
            try:
                parser.write(chunk)
            except FormParserError as exc:
                raise InvalidInput(f"malformed multipart body: {exc}") from exc
            if collector.pending or collector.rejected:
                pending, collector.pending = collector.pending, []
                rejected, collector.rejected = collector.rejected, []
                # Spilled parts write to disk: keep that off the event loop.
                await run_in_threadpool(_write_pending, pending, rejected)
        parser.finalize()
    except BaseException:
        collector.form.close()
        raise
    for part in collector.form.files:
        if part.stream is not None:
            part.stream.seek(0)
    return collector.form


def _request_too_large(limit: int) -> str:
    return (
        f"the request is larger than {format_bytes(limit)}; send the files in smaller batches"
    )
