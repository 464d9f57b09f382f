"""Local-disk specifics: atomic writes, no escape from the root, tidy directories."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from app.storage.base import InvalidKey
from app.storage.local import STAGING_DIR, LocalBlobStore


def test_files_land_under_root_with_md5_etag(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")

    info = store.put("projects/1/assets/a.jpg", b"jpeg bytes")

    path = tmp_path / "blobs" / "projects" / "1" / "assets" / "a.jpg"
    assert path.read_bytes() == b"jpeg bytes"
    assert info.etag == hashlib.md5(b"jpeg bytes").hexdigest()
    assert path.stat().st_mode & 0o644 == 0o644


def test_staging_area_is_invisible_and_reserved(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("a.txt", b"a")
    (tmp_path / STAGING_DIR / "upload-leftover").write_bytes(b"crashed upload")

    assert [o.key for o in store.list("")] == ["a.txt"]
    assert list((tmp_path / STAGING_DIR).iterdir()) == [tmp_path / STAGING_DIR / "upload-leftover"]
    with pytest.raises(InvalidKey, match="reserved"):
        store.put(f"{STAGING_DIR}/x", b"x")


def test_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)

    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        store.put("a.bin", io.BufferedReader(Broken()))

    assert not (tmp_path / "a.bin").exists()
    assert list((tmp_path / STAGING_DIR).iterdir()) == []


def test_symlink_out_of_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "link")
    store = LocalBlobStore(root)

    with pytest.raises(InvalidKey, match="outside the storage root"):
        store.read_bytes("link/secret.txt")
    with pytest.raises(InvalidKey):
        store.put("link/new.txt", b"x")
    assert not (outside / "new.txt").exists()


def test_delete_prunes_empty_directories(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("runs/1/ckpt/best.pt", b"x")
    store.put("runs/2/keep.txt", b"y")

    store.delete("runs/1/ckpt/best.pt")

    assert not (tmp_path / "runs" / "1").exists()
    assert (tmp_path / "runs" / "2" / "keep.txt").exists()
    assert tmp_path.exists()


def test_etag_follows_content_changed_behind_our_back(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("a.txt", b"one")
    path = tmp_path / "a.txt"
    path.write_bytes(b"three")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

    [info] = store.list("")

    assert info.etag == hashlib.md5(b"three").hexdigest()
    assert info.size == 5


def _count_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        calls.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    return calls


def test_put_is_durable_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fsyncs = _count_fsyncs(monkeypatch)
    store = LocalBlobStore(tmp_path)

    store.put("a.txt", b"a")

    assert len(fsyncs) == 1


def test_batch_writes_skip_fsync_and_sync_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs = _count_fsyncs(monkeypatch)
    store = LocalBlobStore(tmp_path)

    infos = [store.put(f"batch/{i}.bin", bytes([i]) * 10, durable=False) for i in range(5)]
    store.sync()

    assert fsyncs == []
    assert [(tmp_path / "batch" / f"{i}.bin").read_bytes() for i in range(5)] == [
        bytes([i]) * 10 for i in range(5)
    ]
    # Readers cannot tell how it was written: same mode, etag and listing.
    assert (tmp_path / "batch" / "0.bin").stat().st_mode & 0o777 == 0o644
    assert [info.etag for info in infos] == [o.etag for o in store.list("batch/")]


def test_put_recreates_directories_that_delete_pruned(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("projects/1/thumbs/a.jpg", b"a")
    store.delete("projects/1/thumbs/a.jpg")
    assert not (tmp_path / "projects").exists()

    store.put("projects/1/thumbs/b.jpg", b"b")

    assert (tmp_path / "projects" / "1" / "thumbs" / "b.jpg").read_bytes() == b"b"


def test_put_recreates_a_removed_staging_area(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("a.txt", b"a")
    (tmp_path / STAGING_DIR).rmdir()

    info = store.put("b.txt", b"b")

    assert info.size == 1 and (tmp_path / "b.txt").read_bytes() == b"b"
    assert list((tmp_path / STAGING_DIR).iterdir()) == []


def test_key_under_an_existing_file_is_refused_and_leaves_no_temp_file(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("a.txt", b"a")

    with pytest.raises(OSError):
        store.put("a.txt/b.txt", b"b")

    assert (tmp_path / "a.txt").read_bytes() == b"a"
    assert list((tmp_path / STAGING_DIR).iterdir()) == []


def test_symlinked_file_leading_out_of_root_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_bytes(b"secret")
    root = tmp_path / "root"
    (root / "projects").mkdir(parents=True)
    os.symlink(tmp_path / "secret.txt", root / "projects" / "leak.txt")
    store = LocalBlobStore(root)

    with pytest.raises(InvalidKey, match="outside the storage root"):
        store.read_bytes("projects/leak.txt")


def test_symlink_that_stays_inside_root_is_followed(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("real/a.txt", b"a")
    os.symlink(tmp_path / "real", tmp_path / "alias")

    assert store.read_bytes("alias/a.txt") == b"a"
