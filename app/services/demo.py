"""The demo project: mosaics of scikit-learn's handwritten digits, tagged with the digits shown.

Each image is a 2×2 grid canvas with 1–4 of its cells holding a digit (colour, position and
background noise drawn at random), so the 10 tags are independent and an image carries 1–4 of
them. Images go through the upload pipeline (`app.services.ingest.Ingestor`: hashing, thumbnails,
blob keys `projects/<id>/assets/<sha256>.png`), then get their tags and are marked labeled. A
newcomer can train a model on it on a laptop CPU in a few minutes.

The project's description says how creation is going (creating, failed, ready) so the projects
page can show progress while the `demo.create_project` task runs.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
from PIL import Image
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from app.config import settings
from app.errors import InvalidInput
from app.models import Annotation, Asset, Project, User, utcnow
from app.services import jobs
from app.services import projects as project_service
from app.services import tags as tag_service
from app.services.ingest import Candidate, Ingestor
from app.storage import BlobStore

DEMO_NAME = "Handwritten digits (demo)"
DEMO_DESCRIPTION = (
    "Mosaics of 1–4 handwritten digits (scikit-learn's digits data set), each tagged with the "
    "digits it shows. Labeled and ready to train."
)
CREATING = "Creating the demo project…"
FAILED_PREFIX = "Creating the demo project failed: "
DEMO_TASK = "demo.create_project"
QUICK_START = "Digits quick start"
MAX_IMAGES = 20_000
CANVAS = 64
CELL = CANVAS // 2
DIGIT = 22  # pixels a digit is scaled to inside its cell
BATCH = 200
DIGIT_COLORS = ((255, 255, 255), (255, 214, 102), (125, 211, 252), (134, 239, 172),
                (249, 168, 212))  # fmt: skip


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return np.asarray(data.images, dtype=np.float32), np.asarray(data.target, dtype=np.int64)


def render_mosaic(
    rng: np.random.Generator, images: np.ndarray, targets: np.ndarray
) -> tuple[bytes, list[int]]:
    """One random mosaic as PNG bytes, and the sorted distinct digits it shows."""
    canvas = rng.integers(0, 48, size=(CANVAS, CANVAS, 3)).astype(np.float32)
    count = int(rng.integers(1, 5))
    shown = set()
    for cell in rng.choice(4, size=count, replace=False):
        index = int(rng.integers(len(images)))
        shown.add(int(targets[index]))
        glyph = Image.fromarray((images[index] * (255 / 16)).astype(np.uint8)).resize(
            (DIGIT, DIGIT), Image.Resampling.BILINEAR
        )
        alpha = np.asarray(glyph, dtype=np.float32)[..., None] / 255.0
        color = np.asarray(DIGIT_COLORS[int(rng.integers(len(DIGIT_COLORS)))], dtype=np.float32)
        top = (cell // 2) * CELL + int(rng.integers(0, CELL - DIGIT + 1))
        left = (cell % 2) * CELL + int(rng.integers(0, CELL - DIGIT + 1))
        region = canvas[top : top + DIGIT, left : left + DIGIT]
        canvas[top : top + DIGIT, left : left + DIGIT] = region * (1 - alpha) + color * alpha
    buffer = io.BytesIO()
    Image.fromarray(canvas.clip(0, 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue(), sorted(shown)


def _check_count(images: int) -> None:
    if not 1 <= images <= MAX_IMAGES:
        raise InvalidInput(f"a demo project has 1 to {MAX_IMAGES} images, not {images}")


def create_demo_project(images: int = 2000, seed: int = 0, progress: bool = True) -> Project:
    """Create and fill the demo project from the shell (`polytag demo`), with a progress bar."""
    from app.db import new_session
    from app.deps import get_blob_store

    _check_count(images)
    with new_session() as session:
        project = project_service.create(session=session, name=DEMO_NAME, description=CREATING)
        try:
            fill_demo_project(
                session=session, storage=get_blob_store(), project=project, images=images,
                seed=seed, progress=progress,
            )  # fmt: skip
        except BaseException as exc:
            mark_failed(session=session, project_id=project.id, error=exc)
            raise
        return project


def queue_demo_project(
    *, session: Session, user: User | None, images: int = 2000, seed: int = 0
) -> Project:
    """Create the (empty) demo project now and queue the task that fills it."""
    _check_count(images)
    project = project_service.create(
        session=session, name=DEMO_NAME, description=CREATING, created_by=user
    )
    jobs.enqueue(DEMO_TASK, project.id, images, seed)
    return project


def fill_demo_project(
    *,
    session: Session,
    storage: BlobStore,
    project: Project,
    images: int,
    seed: int = 0,
    progress: bool = False,
) -> Project:
    """Add the 10 digit tags and `images` labeled mosaics; commits every batch of images."""
    from tqdm import tqdm

    existing = {tag.name: tag.id for tag in tag_service.get_all(session=session, project=project)}
    tag_ids = [
        existing.get(str(d))
        or tag_service.create(
            session=session, project=project, name=str(d), hotkey=str(d), commit=False
        ).id
        for d in range(10)
    ]
    session.commit()
    # A redelivered job carries on after the images an earlier attempt committed.
    done = int(
        session.scalar(select(func.count(Asset.id)).where(Asset.project_id == project.id)) or 0
    )
    digit_images, targets = _digits()
    rng = np.random.default_rng([seed, done])
    with tqdm(total=images, initial=min(done, images), unit="image", desc="demo images",
              disable=not progress) as bar:  # fmt: skip
        for batch in _batches(done, images):
            mosaics = [render_mosaic(rng, digit_images, targets) for _ in batch]
            _ingest_batch(session, storage, project, batch, mosaics, tag_ids)
            bar.update(len(batch))
    _add_quick_start_workflow(session, project)
    project.description = DEMO_DESCRIPTION
    session.commit()
    return project


def _add_quick_start_workflow(session: Session, project: Project) -> None:
    # The mosaics are 64px: trained at that size a small backbone learns them in minutes on a
    # laptop CPU, where the registry default (320px) would take an hour. Without pretrained
    # weights a higher learning rate helps: 5 epochs reached mAP 0.55 at 4e-3 but 0.38 at 1e-3.
    from app.services import workflows as workflow_service

    if workflow_service.get_all(session=session, project=project):
        return
    graph = workflow_service.default_graph(session=session, project=project)
    graph.model.input_size = CANVAS
    graph.training.length = 5
    graph.training.lr = 4e-3
    graph.training.warmup_steps = 20
    workflow_service.create(session=session, project=project, name=QUICK_START, graph=graph)


def _batches(first: int, total: int) -> Iterator[range]:
    for start in range(first, total, BATCH):
        yield range(start, min(total, start + BATCH))


def _ingest_batch(
    session: Session,
    storage: BlobStore,
    project: Project,
    numbers: range,
    mosaics: list[tuple[bytes, list[int]]],
    tag_ids: list[int],
) -> None:
    digits_of = {}
    ingestor = Ingestor(
        session=session, storage=storage, project_id=project.id,
        max_pixels=settings.max_image_pixels, thumb_size=settings.thumbnail_size,
    )  # fmt: skip
    try:
        with ingestor:
            for number, (png, digits) in zip(numbers, mosaics, strict=True):
                filename = f"digits_{number:05d}.png"
                digits_of[filename] = digits
                ingestor.add(Candidate(filename, png))
            results = ingestor.finish()
        created = {r.asset_id: digits_of[r.filename] for r in results if r.status == "created"}
        now = utcnow()
        rows = [
            {"asset_id": asset_id, "tag_id": tag_ids[d], "source": "import", "created_at": now}
            for asset_id, digits in created.items()
            if asset_id is not None
            for d in digits
        ]
        if rows:
            session.execute(insert(Annotation), rows)
            session.execute(
                update(Asset)
                .where(Asset.id.in_([a for a in created if a is not None]))
                .values(review_state="labeled", updated_at=now)
                .execution_options(synchronize_session=False)
            )
        project.description = f"{CREATING} ({numbers.stop} images so far)"
        session.commit()
    except BaseException:
        session.rollback()
        ingestor.discard()
        raise


def mark_failed(*, session: Session, project_id: int, error: BaseException) -> None:
    """Say on the project that creating the demo failed (its images so far are kept)."""
    session.rollback()
    project = session.get(Project, project_id)
    if project is not None:
        project.description = f"{FAILED_PREFIX}{error}"[:2000]
        session.commit()


def demo_progress(*, session: Session, project: Project) -> dict[str, object]:
    """How far creating the demo project got: state (creating, failed, ready) and images."""
    images = session.scalar(select(func.count(Asset.id)).where(Asset.project_id == project.id))
    state = "ready"
    if project.description.startswith(CREATING):
        state = "creating"
    elif project.description.startswith(FAILED_PREFIX):
        state = "failed"
    return {
        "project_id": project.id,
        "state": state,
        "images": int(images or 0),
        "message": project.description,
    }
