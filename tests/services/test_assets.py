"""Ingest of uploads: stored bytes, thumbnails, dedupe, batch tags, per-file rejections."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import settings
from app.errors import InvalidInput
from app.models import Annotation, Asset, Project, Tag, User
from app.services import assets as asset_service
from app.services.assets import Upload, as_upload
from app.storage.local import LocalBlobStore
from tests.fixtures.images import bomb_png, corrupt_jpeg, image_bytes, jpeg, make_zip

MakeTag = Callable[..., Tag]


@pytest.fixture
def storage(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def _keys(storage: LocalBlobStore) -> list[str]:
    return [info.key for info in storage.list("")]


def _ingest(
    session: Session, storage: LocalBlobStore, project: Project, *uploads: Upload, **options: object
) -> list[asset_service.FileResult]:
    report = asset_service.ingest_uploads(
        session=session,
        storage=storage,
        project=project,
        uploads=list(uploads),
        **options,  # type: ignore[arg-type]
    )
    return report.results


def _asset_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Asset)) or 0


def test_an_image_is_stored_with_its_facts_and_a_thumbnail(
    session: Session, storage: LocalBlobStore, project: Project
) -> None:
    data = image_bytes((1, 2, 3), (640, 480), "PNG")
    [result] = _ingest(session, storage, project, as_upload("field/cat.png", data))
    assert result.status == "created"
    asset = session.get(Asset, result.asset_id)
    assert asset is not None
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    assert (asset.original_filename, asset.width, asset.height, asset.mime, asset.bytes) == (
        "field/cat.png",
        640,
        480,
        "image/png",
        len(data),
    )
    assert asset.sha256 == sha
    assert asset.storage_key == f"projects/{project.id}/assets/{sha}.png"
    assert asset.thumb_key == f"projects/{project.id}/thumbs/{sha}.jpg"
    assert asset.review_state == "unlabeled"
    assert storage.read_bytes(asset.storage_key) == data
    thumb = Image.open(io.BytesIO(storage.read_bytes(asset.thumb_key)))
    # 640×480 halves to 320×240: thumbnails shrink by whole factors only.
    assert thumb.format == "JPEG" and thumb.size == (320, 240)
    assert settings.thumbnail_size <= max(thumb.size) < 2 * settings.thumbnail_size


def test_exif_orientation_swaps_the_recorded_size(
    session: Session, storage: LocalBlobStore, project: Project
) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90°: stored 80×40, shown 40×80
    data = image_bytes((9, 9, 9), (80, 40), exif=exif.tobytes())
    [result] = _ingest(session, storage, project, as_upload("r.jpg", data))
    asset = session.get(Asset, result.asset_id)
    assert asset is not None and (asset.width, asset.height) == (40, 80)
    thumb = Image.open(io.BytesIO(storage.read_bytes(asset.thumb_key or "")))
    assert thumb.size == (40, 80)


@pytest.mark.parametrize("image_format", ["PNG", "WEBP", "BMP", "TIFF", "GIF"])
def test_other_formats_are_accepted(
    session: Session, storage: LocalBlobStore, project: Project, image_format: str
) -> None:
    [result] = _ingest(
        session,
        storage,
        project,
        as_upload(f"x.{image_format.lower()}", image_bytes(format_color(), (30, 20), image_format)),
    )
    assert result.status == "created", result.reason


def format_color() -> tuple[int, int, int]:
    return (120, 40, 200)


def test_duplicates_are_reported_with_the_existing_asset(
    session: Session, storage: LocalBlobStore, project: Project
) -> None:
    [first] = _ingest(session, storage, project, as_upload("a.jpg", jpeg(1)))
    results = _ingest(
        session,
        storage,
        project,
        as_upload("again.jpg", jpeg(1)),
        as_upload("b.jpg", jpeg(2)),
        as_upload("b2.jpg", jpeg(2)),
    )
    assert [(r.filename, r.status) for r in results] == [
        ("again.jpg", "duplicate"),
        ("b.jpg", "created"),
        ("b2.jpg", "duplicate"),
    ]
    assert results[0].asset_id == first.asset_id
    assert results[2].asset_id == results[1].asset_id
    assert _asset_count(session) == 2
    assert len(_keys(storage)) == 4


def test_bad_files_are_rejected_and_leave_nothing_while_good_ones_go_in(
    session: Session, storage: LocalBlobStore, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "max_upload_bytes", 100_000)
    results = _ingest(
        session,
        storage,
        project,
        as_upload("corrupt.jpg", corrupt_jpeg()),
        as_upload("notes.txt", b"just some text"),
        as_upload("bomb.png", bomb_png()),
        as_upload("big.jpg", b"\xff\xd8" + b"0" * 100_001),
        Upload("huge.jpg", rejection="file is larger than the upload limit of 97.7 KB"),
        as_upload("good.jpg", jpeg(3)),
        as_upload("corrupt-again.jpg", corrupt_jpeg()),
    )
    by_name = {r.filename: r for r in results}
    assert by_name["good.jpg"].status == "created"
    assert by_name["corrupt.jpg"].reason is not None
    assert by_name["corrupt.jpg"].reason.startswith("corrupt image")
    assert by_name["corrupt-again.jpg"].reason == by_name["corrupt.jpg"].reason
    assert by_name["notes.txt"].reason == "not an image (unrecognised format)"
    assert "144 megapixels, over the limit" in (by_name["bomb.png"].reason or "")
    assert "larger than the upload limit" in (by_name["big.jpg"].reason or "")
    assert by_name["huge.jpg"].status == "rejected"
    assert [r.status for r in results].count("rejected") == 6
    good = session.get(Asset, by_name["good.jpg"].asset_id)
    assert good is not None
    assert _asset_count(session) == 1
    assert sorted(_keys(storage)) == sorted([good.storage_key, good.thumb_key or ""])


def test_a_zip_goes_in_member_by_member(
    session: Session, storage: LocalBlobStore, project: Project
) -> None:
    archive = make_zip(
        {
            "set/a.jpg": jpeg(10),
            "set/b.png": image_bytes((5, 5, 5), (20, 20), "PNG"),
            "../evil.jpg": jpeg(11),
            "/abs.jpg": jpeg(12),
            "set/bad.jpg": corrupt_jpeg(),
            "__MACOSX/._a.jpg": b"junk",
            "inner.zip": make_zip({"x.jpg": jpeg(13)}),
        }
    )
    results = _ingest(session, storage, project, as_upload("photos.zip", archive))
    outcome = {r.filename: (r.status, r.reason, r.archive) for r in results}
    assert outcome["set/a.jpg"] == ("created", None, "photos.zip")
    assert outcome["set/b.png"][0] == "created"
    assert outcome["../evil.jpg"] == ("rejected", "path escapes the archive", "photos.zip")
    assert outcome["/abs.jpg"][1] == "path escapes the archive"
    assert outcome["set/bad.jpg"][0] == "rejected"
    assert "archive inside an archive" in (outcome["inner.zip"][1] or "")
    assert "__MACOSX/._a.jpg" not in outcome
    names = set(session.scalars(select(Asset.original_filename)))
    assert names == {"set/a.jpg", "set/b.png"}
    assert len(_keys(storage)) == 4


def test_a_zip_over_the_uncompressed_limit_leaves_nothing(
    session: Session, storage: LocalBlobStore, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "max_zip_uncompressed_bytes", 50_000)
    archive = make_zip({"a.jpg": jpeg(20), "zeros.bin": b"\0" * 60_000})
    results = _ingest(
        session, storage, project, as_upload("big.zip", archive), as_upload("ok.jpg", jpeg(21))
    )
    assert results[0].filename == "big.zip"
    assert results[0].status == "rejected"
    assert "uncompressed size" in (results[0].reason or "")
    assert results[1].status == "created"
    assert _asset_count(session) == 1
    assert len(_keys(storage)) == 2


def test_a_zip_that_inflates_past_its_headers_is_rolled_back(
    session: Session, storage: LocalBlobStore, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Members read before the lie is found are taken out again: the archive leaves nothing."""
    archive = make_zip({"a.jpg": jpeg(30), "b.jpg": jpeg(31), "c.jpg": jpeg(32)})
    monkeypatch.setattr(settings, "max_zip_uncompressed_bytes", len(jpeg(30)) + 10)
    from app.imports import archives

    # Skip the up-front check of declared sizes, as if the headers had understated them.
    monkeypatch.setattr(archives, "_check_total", lambda name, members, limit: None)
    results = _ingest(session, storage, project, as_upload("liar.zip", archive))
    assert [(r.filename, r.status) for r in results] == [("liar.zip", "rejected")]
    assert "headers understate" in (results[0].reason or "")
    assert _asset_count(session) == 0
    assert _keys(storage) == []


def test_not_a_zip_is_rejected(session: Session, storage: LocalBlobStore, project: Project) -> None:
    [result] = _ingest(session, storage, project, as_upload("x.zip", b"not a zip at all"))
    assert (result.status, result.reason) == ("rejected", "not a zip archive")


def test_batch_tags_mark_new_images_labeled(
    session: Session,
    storage: LocalBlobStore,
    project: Project,
    user: User,
    make_tag: MakeTag,
) -> None:
    weed: Tag = make_tag("weed")
    wet: Tag = make_tag("wet")
    [old] = _ingest(session, storage, project, as_upload("old.jpg", jpeg(40)))
    results = _ingest(
        session,
        storage,
        project,
        as_upload("old-again.jpg", jpeg(40)),
        as_upload("new.jpg", jpeg(41)),
        tag_ids=[weed.id, wet.id],
        author=user,
    )
    new = session.get(Asset, results[1].asset_id)
    assert new is not None and new.review_state == "labeled"
    rows = session.execute(
        select(Annotation.asset_id, Annotation.tag_id, Annotation.source, Annotation.author_id)
    ).all()
    assert sorted(rows) == sorted(
        [(new.id, weed.id, "human", user.id), (new.id, wet.id, "human", user.id)]
    )
    old_asset = session.get(Asset, old.asset_id)
    assert old_asset is not None and old_asset.review_state == "unlabeled"


def test_batch_tags_are_checked_before_anything_is_stored(
    session: Session,
    storage: LocalBlobStore,
    project: Project,
    make_tag: MakeTag,
) -> None:
    healthy = make_tag("healthy", group="health")
    sick = make_tag("sick", group="health")
    with pytest.raises(InvalidInput, match="exclude each other"):
        _ingest(
            session, storage, project, as_upload("a.jpg", jpeg(50)), tag_ids=[healthy.id, sick.id]
        )
    with pytest.raises(InvalidInput, match="tag 9999 is not in project"):
        _ingest(session, storage, project, as_upload("a.jpg", jpeg(50)), tag_ids=[9999])
    assert _asset_count(session) == 0
    assert _keys(storage) == []


def test_a_storage_failure_rolls_back_the_whole_batch(
    session: Session, storage: LocalBlobStore, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_put = storage.put
    calls = {"n": 0}

    def failing_put(key, stream, content_type=None, **options):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full")
        return real_put(key, stream, content_type, **options)

    monkeypatch.setattr(storage, "put", failing_put)
    with pytest.raises(OSError, match="disk full"):
        _ingest(session, storage, project, *[as_upload(f"{i}.jpg", jpeg(60 + i)) for i in range(4)])
    assert _asset_count(session) == 0
    assert _keys(storage) == []


def test_a_batch_reaches_the_disk_with_one_sync_before_the_commit(
    session: Session, storage: LocalBlobStore, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_sync, real_commit = storage.sync, session.commit
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync"))
    monkeypatch.setattr(storage, "sync", lambda: (events.append("sync"), real_sync())[1])
    monkeypatch.setattr(session, "commit", lambda: (events.append("commit"), real_commit())[1])

    uploads = [as_upload(f"{i}.jpg", jpeg(i)) for i in range(3)]
    results = _ingest(session, storage, project, *uploads)

    assert [r.status for r in results] == ["created"] * 3
    assert len(_keys(storage)) == 6
    assert events == ["sync", "commit"]


def test_many_files_keep_their_order(
    session: Session, storage: LocalBlobStore, project: Project
) -> None:
    uploads = [as_upload(f"{i:03}.jpg", jpeg(i % 70)) for i in range(100)]
    results = _ingest(session, storage, project, *uploads)
    assert [r.filename for r in results] == [f"{i:03}.jpg" for i in range(100)]
    assert sum(r.status == "created" for r in results) == 70
    assert sum(r.status == "duplicate" for r in results) == 30
    assert _asset_count(session) == 70


def test_get_update_and_delete(
    session: Session,
    storage: LocalBlobStore,
    project: Project,
    make_tag: MakeTag,
) -> None:
    tag = make_tag("weed")
    [result] = _ingest(session, storage, project, as_upload("a.jpg", jpeg(80)), tag_ids=[tag.id])
    asset = asset_service.get(session=session, project=project, asset_id=result.asset_id or 0)
    assert asset_service.get_tag_ids(session=session, asset=asset) == [tag.id]
    asset_service.update(session=session, asset=asset, split="val")
    assert asset.split == "val"
    with pytest.raises(InvalidInput, match="unknown split 'dev'"):
        asset_service.update(session=session, asset=asset, split="dev")
    asset_service.delete(session=session, storage=storage, asset=asset)
    assert _asset_count(session) == 0
    assert session.scalar(select(func.count()).select_from(Annotation)) == 0
    assert _keys(storage) == []
