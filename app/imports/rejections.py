"""Errors raised for files and archives that cannot be ingested, and size formatting for them.

Messages are written for the person who uploaded the file: they say what is wrong and, where it
helps, the limit that was crossed.
"""

from __future__ import annotations


class RejectedFile(Exception):
    """One uploaded file (or archive member) that is refused, with a reason a user can act on."""

    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason

    def __repr__(self) -> str:
        return f"RejectedFile({self.filename!r}, {self.reason!r})"


class ArchiveRejected(Exception):
    """A whole archive that is refused before (or while) anything is extracted from it."""

    def __init__(self, archive: str, reason: str) -> None:
        super().__init__(f"{archive}: {reason}")
        self.archive = archive
        self.reason = reason


def format_bytes(count: int) -> str:
    """Render a byte count as '512 bytes', '1.5 MB', '2 GB' (binary multiples, short names)."""
    if count < 1024:
        return f"{count} bytes"
    value = float(count)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            break
    text = f"{value:.1f}".removesuffix(".0")
    return f"{text} {unit}"


def format_pixel_counts(pixels: int, limit: int) -> tuple[str, str]:
    """Render an image's pixel count and the limit it exceeds so that they read differently.

    Megapixels with as few decimals as tell them apart ('900' vs '89', '89.6' vs '89.5');
    plain pixel counts below one megapixel.
    """
    if limit < 1_000_000:
        return f"{pixels:,} pixels", f"{limit:,} pixels"
    for decimals in range(0, 7):
        shown = f"{pixels / 1e6:.{decimals}f}", f"{limit / 1e6:.{decimals}f}"
        if shown[0] != shown[1]:
            break
    return f"{shown[0]} megapixels", f"{shown[1]} megapixels"
