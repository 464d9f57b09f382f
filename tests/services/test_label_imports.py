"""Label imports: preview writes nothing, confirm re-checks and applies all or nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.models import Annotation, Asset, Project, Tag, User
from app.services import assets as asset_service
from app.services import label_imports as service
from app.services.assets import as_upload
from app.services.label_imports import as_stream
from app.storage.local import LocalBlobStore
from tests.fixtures.images import corrupt_jpeg, jpeg, make_zip

MakeTag = Callable[..., Tag]


@pytest.fixture
def storage(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def _upload(session: Session, storage: LocalBlobStore, project: Project,
            names: list[str]) -> dict[str, int]:
    report = asset_service.ingest_uploads(
        session=session, storage=storage, project=project,
        uploads=[as_upload(name, jpeg(index)) for index, name in enumerate(names)],
    )
    return {r.filename: r.asset_id or 0 for r in report.results}


def _start(session: Session, storage: LocalBlobStore, project: Project, format: str,
           data: bytes, filename: str = "labels", **options: object) -> service.LabelImportPreview:
    return service.start_import(session=session, storage=storage, project=project, format=format,
                                filename=filename, stream=as_stream(data), **options)  # type: ignore[arg-type]


def _confirm(session: Session, storage: LocalBlobStore, project: Project, import_id: str,
             **options: object) -> service.LabelImportResult:
    return service.confirm_import(session=session, storage=storage, project=project,
                                  import_id=import_id, **options)  # type: ignore[arg-type]


def _tags_of(session: Session) -> dict[str, set[tuple[str, str]]]:
    rows = session.execute(
        select(Asset.original_filename, Tag.name, Annotation.source)
        .join(Annotation, Annotation.asset_id == Asset.id).join(Tag, Tag.id == Annotation.tag_id)
    )
    found: dict[str, set[tuple[str, str]]] = {}
    for filename, tag, source in rows:
        found.setdefault(filename, set()).add((tag, source))
    return found


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def _staged(storage: LocalBlobStore, project: Project) -> list[str]:
    return [i.key for i in storage.list(f"projects/{project.id}/label-imports/")]


def test_csv_preview_says_what_would_happen_and_writes_nothing(
    session: Session, storage: LocalBlobStore, project: Project, make_tag: MakeTag,
) -> None:
    make_tag("Cat")
    _upload(session, storage, project, ["a.jpg", "dir/b.jpg", "c.jpg"])
    csv = b"a.jpg,cat,dog\nb.jpg,dog\nzebra.jpg,cat\na.jpg,bird\n,cat\n"
    preview = _start(session, storage, project, "csv", csv, "labels.csv")
    assert [(m.row_number, m.filename, m.labels) for m in preview.matched] == [
        (1, "a.jpg", ["Cat", "dog"]), (2, "b.jpg", ["dog"]),
    ]
    assert preview.unmatched == ["zebra.jpg"]
    assert preview.new_tags == ["dog"]
    assert [str(e) for e in preview.errors] == [
        "row 4: duplicate file name 'a.jpg' (also in row 1); list each image once",
        "row 5: empty file name",
    ]
    assert not preview.can_confirm
    assert _count(session, Annotation) == 0
    assert [t.name for t in session.scalars(select(Tag))] == ["Cat"]
    with pytest.raises(InvalidInput, match="2 row\\(s\\) with errors; first: row 4") as error:
        _confirm(session, storage, project, preview.import_id)
    assert error.value.details[0] == {"row": 4, "message": error.value.details[0]["message"]}
    assert _count(session, Annotation) == 0


def test_csv_confirm_applies_labels_splits_and_new_tags(
    session: Session, storage: LocalBlobStore, project: Project, user: User, make_tag: MakeTag,
) -> None:
    make_tag("cat")
    ids = _upload(session, storage, project, ["a.jpg", "b.jpg", "c.jpg"])
    csv = b"filename,label,split\na.jpg,Cat,train\nb.jpg,dog;cat,val\nc.jpg,,\n"
    preview = _start(session, storage, project, "csv", csv)
    assert preview.can_confirm and preview.new_tags == ["dog"]
    result = _confirm(session, storage, project, preview.import_id, author=user)
    assert (result.labeled, result.annotations, result.tags_created) == (3, 3, ["dog"])
    assert _tags_of(session) == {
        "a.jpg": {("cat", "import")}, "b.jpg": {("dog", "import"), ("cat", "import")},
    }
    assets = {a.original_filename: a for a in session.scalars(select(Asset))}
    assert {name: (a.review_state, a.split) for name, a in assets.items()} == {
        "a.jpg": ("labeled", "train"), "b.jpg": ("labeled", "val"), "c.jpg": ("labeled", "auto"),
    }
    assert session.scalar(select(Annotation.author_id).limit(1)) == user.id
    assert ids["a.jpg"] == assets["a.jpg"].id
    assert _staged(storage, project) == []
    with pytest.raises(NotFound, match="applied, discarded or expired"):
        _confirm(session, storage, project, preview.import_id)


def test_the_file_decides_its_own_tags_only(
    session: Session, storage: LocalBlobStore, project: Project, make_tag: MakeTag,
) -> None:
    """Tags the file names are set or cleared; other tags stay, except exclusivity rivals."""
    cat, dog = make_tag("cat"), make_tag("dog")
    healthy, sick = make_tag("healthy", group="health"), make_tag("sick", group="health")
    ids = _upload(session, storage, project, ["a.jpg", "b.jpg"])
    for asset_id, tag in ((ids["a.jpg"], dog), (ids["a.jpg"], sick), (ids["b.jpg"], cat)):
        session.add(Annotation(asset_id=asset_id, tag_id=tag.id, source="human"))
    session.commit()
    csv = b"filename,cat,dog,healthy\na.jpg,1,0,1\nb.jpg,0,0,0\n"
    preview = _start(session, storage, project, "csv", csv)
    _confirm(session, storage, project, preview.import_id)
    assert _tags_of(session) == {"a.jpg": {("cat", "import"), ("healthy", "import")}}
    assert healthy.id and sick.id


def test_a_row_with_two_tags_of_one_group_is_an_error(
    session: Session, storage: LocalBlobStore, project: Project, make_tag: MakeTag,
) -> None:
    make_tag("healthy", group="health")
    make_tag("sick", group="health")
    _upload(session, storage, project, ["a.jpg"])
    preview = _start(session, storage, project, "csv", b"a.jpg,healthy,sick\n")
    assert [str(e) for e in preview.errors] == [
        "row 1: 'a.jpg': tags 'healthy' and 'sick' are both in group 'health' and exclude "
        "each other"
    ]


def test_confirm_checks_again(
    session: Session, storage: LocalBlobStore, project: Project
) -> None:
    _upload(session, storage, project, ["a.jpg"])
    preview = _start(session, storage, project, "csv", b"a.jpg,cat\n")
    assert preview.can_confirm
    # Another image with the same name arrives between preview and confirm.
    asset_service.ingest_uploads(session=session, storage=storage, project=project,
                                 uploads=[as_upload("a.jpg", jpeg(99))])
    with pytest.raises(InvalidInput, match=r"several images of the project are named 'a\.jpg'"):
        _confirm(session, storage, project, preview.import_id)
    assert _count(session, Annotation) == 0
    assert _count(session, Tag) == 0


def test_a_failure_mid_import_rolls_everything_back(
    session: Session, storage: LocalBlobStore, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    _upload(session, storage, project, ["a.jpg", "b.jpg"])
    preview = _start(session, storage, project, "csv", b"a.jpg,cat\nb.jpg,dog\n")

    def explode(tags: object) -> dict[int, list[int]]:
        raise RuntimeError("database went away")

    monkeypatch.setattr(service, "_group_rivals", explode)
    with pytest.raises(RuntimeError):
        _confirm(session, storage, project, preview.import_id)
    assert _count(session, Tag) == 0
    assert _count(session, Annotation) == 0
    assert set(session.scalars(select(Asset.review_state))) == {"unlabeled"}
    # The staged file survives a failed confirm, so it can be tried again.
    monkeypatch.undo()
    assert _confirm(session, storage, project, preview.import_id).annotations == 2


def test_index_zip_brings_images_and_labels_together(
    session: Session, storage: LocalBlobStore, project: Project
) -> None:
    _upload(session, storage, project, ["already.jpg"])
    index = b"path,cat,dog,split\nimgs/a.jpg,1,0,train\nimgs/b.jpg,1,1,\nsame.jpg,0,1,\n"
    archive = make_zip({
        "set/index.csv": index, "set/imgs/a.jpg": jpeg(50), "set/imgs/b.jpg": jpeg(51),
        "set/same.jpg": jpeg(0), "set/extra.jpg": jpeg(52), "set/README.txt": b"hello",
    })
    preview = _start(session, storage, project, "index_zip", archive, "set.zip")
    assert preview.errors == []
    assert [(m.member, m.labels) for m in preview.matched] == [
        ("imgs/a.jpg", ["cat"]), ("imgs/b.jpg", ["cat", "dog"]), ("same.jpg", ["dog"]),
    ]
    assert preview.unlisted_images == ["extra.jpg"]
    assert preview.new_tags == ["cat", "dog"]
    assert _count(session, Asset) == 1
    result = _confirm(session, storage, project, preview.import_id)
    assert (result.images_created, result.images_duplicate, result.labeled) == (3, 1, 3)
    assert _tags_of(session) == {
        "set/imgs/a.jpg": {("cat", "import")},
        "set/imgs/b.jpg": {("cat", "import"), ("dog", "import")},
        "already.jpg": {("dog", "import")},
    }
    states = dict(session.execute(select(Asset.original_filename, Asset.review_state)).all())
    assert states["set/extra.jpg"] == "unlabeled"


def test_index_zip_errors_and_a_bad_image_leave_nothing(
    session: Session, storage: LocalBlobStore, project: Project
) -> None:
    missing = make_zip({"index.csv": b"path,cat\na.jpg,1\nnope.jpg,1\nb.jpg,2\n",
                        "a.jpg": jpeg(60), "b.jpg": jpeg(61)})
    preview = _start(session, storage, project, "index_zip", missing, "x.zip")
    assert [str(e) for e in preview.errors] == [
        "row 3: 'nope.jpg' is not in the archive",
        "row 4: column 'cat' has '2' (expected 0 or 1)",
    ]
    bad = make_zip({"index.csv": b"path,cat\na.jpg,1\nbad.jpg,0\n", "a.jpg": jpeg(62),
                    "bad.jpg": corrupt_jpeg()})
    preview = _start(session, storage, project, "index_zip", bad, "bad.zip")
    assert preview.can_confirm
    with pytest.raises(InvalidInput, match=r"1 image\(s\) of the archive cannot be imported, so "
                                           r"nothing was; first: bad\.jpg: corrupt image"):
        _confirm(session, storage, project, preview.import_id)
    assert _count(session, Asset) == 0
    assert _count(session, Tag) == 0
    assert [k for k in (i.key for i in storage.list("")) if "/label-imports/" not in k] == []
    with pytest.raises(InvalidInput, match=r"the archive has no index\.csv"):
        _start(session, storage, project, "index_zip", make_zip({"a.jpg": jpeg(1)}), "n.zip")
    with pytest.raises(InvalidInput, match=r"n\.zip: not a zip archive"):
        _start(session, storage, project, "index_zip", b"nope", "n.zip")


def test_coco_with_chosen_categories(
    session: Session, storage: LocalBlobStore, project: Project
) -> None:
    _upload(session, storage, project, ["a.jpg", "b.jpg"])
    coco = json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1},
                        {"id": 2, "image_id": 1, "category_id": 2},
                        {"id": 3, "image_id": 2, "category_id": 2}],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"},
                       {"id": 3, "name": "car"}],
    }).encode()
    preview = _start(session, storage, project, "coco", coco, "instances.json")
    assert [(c.name, c.image_count) for c in preview.categories] == [
        ("person", 1), ("dog", 2), ("car", 0),
    ]
    assert preview.new_tags == ["person", "dog", "car"]
    chosen = service.preview_import(session=session, storage=storage, project=project,
                                    import_id=preview.import_id, categories=["dog"])
    assert chosen.new_tags == ["dog"]
    assert [(m.filename, m.labels) for m in chosen.matched] == [("a.jpg", ["dog"]),
                                                                 ("b.jpg", ["dog"])]
    with pytest.raises(InvalidInput, match="no categories named 'cow'"):
        service.preview_import(session=session, storage=storage, project=project,
                               import_id=preview.import_id, categories=["cow"])
    _confirm(session, storage, project, preview.import_id, categories=["dog"])
    assert [t.name for t in session.scalars(select(Tag))] == ["dog"]
    assert _tags_of(session) == {"a.jpg": {("dog", "import")}, "b.jpg": {("dog", "import")}}


def test_voc_and_label_studio(
    session: Session, storage: LocalBlobStore, project: Project
) -> None:
    _upload(session, storage, project, ["2007_000027.jpg", "b.jpg"])
    xml = (b"<annotation><filename>2007_000027.jpg</filename><object><name>person</name>"
           b"</object><object><name>dog</name></object></annotation>")
    voc = make_zip({"VOC2007/Annotations/2007_000027.xml": xml,
                    "VOC2007/JPEGImages/2007_000027.jpg": jpeg(0)})
    preview = _start(session, storage, project, "voc", voc, "voc.zip")
    assert [(m.filename, m.labels) for m in preview.matched] == [
        ("2007_000027.jpg", ["person", "dog"])
    ]
    _confirm(session, storage, project, preview.import_id)
    studio = json.dumps([{
        "id": 7, "data": {"image": "/data/upload/1/0a1b2c3d-b.jpg"},
        "annotations": [{"id": 1, "result": [{"type": "choices",
                                              "value": {"choices": ["Dog"]}}]}],
    }]).encode()
    preview = _start(session, storage, project, "label_studio", studio, "export.json")
    assert [(m.filename, m.labels) for m in preview.matched] == [("b.jpg", ["dog"])]
    assert preview.new_tags == []
    _confirm(session, storage, project, preview.import_id)
    assert _tags_of(session)["b.jpg"] == {("dog", "import")}


def test_unreadable_files_and_unknown_imports(
    session: Session, storage: LocalBlobStore, project: Project
) -> None:
    with pytest.raises(InvalidInput, match=r"bad\.json: invalid JSON at line 1"):
        _start(session, storage, project, "coco", b"{nope", "bad.json")
    with pytest.raises(InvalidInput, match="unknown label format 'xls'"):
        _start(session, storage, project, "xls", b"", "a.xls")
    assert _staged(storage, project) == []
    with pytest.raises(NotFound):
        service.preview_import(session=session, storage=storage, project=project,
                               import_id="../../etc")
    preview = _start(session, storage, project, "csv", b"a.jpg,cat\n")
    assert not preview.can_confirm and preview.unmatched == ["a.jpg"]
    service.discard_import(storage=storage, project=project, import_id=preview.import_id)
    assert _staged(storage, project) == []
