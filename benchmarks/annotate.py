"""Annotator latency at scale: single toggle, 500-image bulk apply, one grid page and the
overview stats, through the service layer, next to the bare SQL statements they boil down to,
measured in the same run on the same data. Prints JSON.

    .venv/bin/python benchmarks/annotate.py                      # a throwaway SQLite file
    .venv/bin/python benchmarks/annotate.py --database-url postgresql+psycopg://...

On PostgreSQL the schema is migrated to head and the benchmark's project is deleted afterwards
(use an empty scratch database all the same).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, text
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine
from app.migrate import upgrade
from app.models import Annotation, Asset, Project, Tag
from app.services import annotations as annotation_service
from app.services import asset_search
from app.services import stats as stats_service
from app.services.asset_search import AssetFilter

GRID_PAGE = 120
BULK_SIZE = 500
BATCH = 5_000


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 3), "p95_ms": round(p95 * 1000, 3)}


def _measure(repeat: int, cases: list[Callable[[int], None]], warmup: int = 3) -> list[list[float]]:
    """Time each case `repeat` times, interleaved, so that a busy machine slows the service
    call and its baseline alike and their ratio stays meaningful."""
    for i in range(warmup):
        for case in cases:
            case(-1 - i)
    samples: list[list[float]] = [[] for _ in cases]
    for i in range(repeat):
        for case, timings in zip(cases, samples, strict=True):
            start = time.perf_counter()
            case(i)
            timings.append(time.perf_counter() - start)
    return samples


def _populate(factory: sessionmaker[Session], assets: int, tags: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    with factory() as session:
        project = Project(name=f"benchmark {now.isoformat()}", description="benchmarks/annotate.py")
        session.add(project)
        session.flush()
        tag_rows = [
            Tag(
                project_id=project.id, name=f"tag{i:02d}", name_key=f"tag{i:02d}",
                # Four tags form one exclusivity group, so bulk adds take the group path too.
                group="stage" if i < 4 else None, position=i,
            )
            for i in range(tags)
        ]  # fmt: skip
        session.add_all(tag_rows)
        session.commit()
        project_id, tag_ids = project.id, [tag.id for tag in tag_rows]
    splits = ("auto", "train", "val", "test")
    with factory() as session:
        for start in range(0, assets, BATCH):
            rows = [
                {
                    "project_id": project_id,
                    "storage_key": f"projects/{project_id}/assets/{n:064x}.jpg",
                    "thumb_key": f"projects/{project_id}/thumbs/{n:064x}.jpg",
                    "original_filename": f"field_{n:06d}.jpg",
                    "sha256": f"{n:064x}", "width": 640, "height": 480, "mime": "image/jpeg",
                    "bytes": 50_000, "split": splits[n % 4],
                    "review_state": "labeled" if rng.random() < 0.5 else "unlabeled",
                    "created_at": now, "updated_at": now,
                }
                for n in range(start, min(start + BATCH, assets))
            ]  # fmt: skip
            session.execute(insert(Asset), rows)
        session.commit()
        asset_ids = list(
            session.scalars(
                text("SELECT id FROM asset WHERE project_id = :p ORDER BY id"), {"p": project_id}
            )
        )
        pairs = []
        for asset_id in asset_ids:
            for tag_id in rng.sample(tag_ids[4:], rng.choice((0, 1, 1, 2, 2, 3))):
                pairs.append({"asset_id": asset_id, "tag_id": tag_id, "source": "import",
                              "created_at": now})  # fmt: skip
            if rng.random() < 0.3:
                pairs.append({"asset_id": asset_id, "tag_id": rng.choice(tag_ids[:4]),
                              "source": "import", "created_at": now})  # fmt: skip
        for start in range(0, len(pairs), BATCH):
            session.execute(insert(Annotation), pairs[start : start + BATCH])
        session.commit()
    return {"project_id": project_id, "tag_ids": tag_ids, "asset_ids": asset_ids,
            "annotations": len(pairs)}  # fmt: skip


def _bare_sql() -> dict[str, str]:
    """The statements each use case needs at minimum, as plain SQL text."""
    conflict = "ON CONFLICT (asset_id, tag_id) DO NOTHING"
    return {
        "insert_one": "INSERT INTO annotation (asset_id, tag_id, source, created_at) "
        f"VALUES (:a, :t, 'human', CURRENT_TIMESTAMP) {conflict}",
        "delete_one": "DELETE FROM annotation WHERE asset_id = :a AND tag_id = :t",
        "label_one": "UPDATE asset SET review_state = 'labeled' WHERE id = :a "
        "AND review_state <> 'labeled'",
        "grid_page": "SELECT id, original_filename, width, height, split, review_state, "
        "thumb_key FROM asset WHERE project_id = :p AND id > :after ORDER BY id LIMIT :n",
        "grid_page_filtered": "SELECT id, original_filename, width, height, split, "
        "review_state, thumb_key FROM asset WHERE project_id = :p AND id > :after "
        "AND review_state = 'unlabeled' AND EXISTS (SELECT 1 FROM annotation "
        "WHERE annotation.asset_id = asset.id AND annotation.tag_id = :t) ORDER BY id LIMIT :n",
        "grid_tags": "SELECT asset_id, tag_id FROM annotation WHERE asset_id >= :lo "
        "AND asset_id <= :hi",
        "stats_splits": "SELECT split, review_state, count(*) FROM asset WHERE project_id = :p "
        "GROUP BY split, review_state",
        "stats_tags": "SELECT annotation.tag_id, asset.split, asset.review_state, count(*) "
        "FROM annotation JOIN asset ON asset.id = annotation.asset_id "
        "WHERE asset.project_id = :p GROUP BY annotation.tag_id, asset.split, asset.review_state",
        "stats_cooccurrence": "SELECT a.tag_id, b.tag_id, count(*) FROM annotation a "
        "JOIN annotation b ON b.asset_id = a.asset_id AND b.tag_id >= a.tag_id "
        "JOIN asset ON asset.id = a.asset_id WHERE asset.project_id = :p "
        "AND asset.review_state = 'labeled' GROUP BY a.tag_id, b.tag_id",
    }


def run(database_url: str, assets: int, tags: int, repeat: int, seed: int) -> dict[str, Any]:
    """Populate, measure every use case and its bare-SQL baseline, clean up."""
    upgrade(database_url)
    engine = make_engine(database_url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    started = time.perf_counter()
    data = _populate(factory, assets, tags, seed)
    populate_s = time.perf_counter() - started
    if engine.dialect.name == "postgresql":
        # Autovacuum would soon do this after a bulk load; without it the planner guesses.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE asset, annotation, tag"))
    project_id, tag_ids, asset_ids = data["project_id"], data["tag_ids"], data["asset_ids"]
    free_tag = tag_ids[-1]
    rng = random.Random(seed + 1)
    sql = {name: text(statement) for name, statement in _bare_sql().items()}
    results: dict[str, Any] = {}

    def request(body: Callable[[Session, Project], object]) -> None:
        # One session per request and the project loaded by id, as the API's dependencies do.
        with factory() as session:
            project = session.get(Project, project_id)
            assert project is not None
            body(session, project)

    toggled: dict[int, bool] = {}

    def toggle(_i: int) -> None:
        asset_id = rng.choice(asset_ids)
        present = not toggled.get(asset_id, False)
        toggled[asset_id] = present
        request(lambda s, p: annotation_service.set_tag(
            session=s, project=p, asset_id=asset_id, tag_id=free_tag, present=present,
            author=None,
        ))  # fmt: skip

    def toggle_bare(_i: int) -> None:
        asset_id = rng.choice(asset_ids)
        with engine.connect() as connection:
            connection.execute(sql["insert_one"], {"a": asset_id, "t": free_tag})
            connection.execute(sql["label_one"], {"a": asset_id})
            connection.commit()

    def bulk(i: int) -> None:
        start = rng.randrange(0, len(asset_ids) - BULK_SIZE)
        chosen = asset_ids[start : start + BULK_SIZE]
        tag_id = tag_ids[i % 4]  # a grouped tag: rivals are removed first
        request(lambda s, p: annotation_service.change(
            session=s, project=p, author=None, asset_ids=chosen, add_tag_ids=[tag_id],
        ))  # fmt: skip

    def bulk_bare(i: int) -> None:
        start = rng.randrange(0, len(asset_ids) - BULK_SIZE)
        chosen = asset_ids[start : start + BULK_SIZE]
        ids = ", ".join(str(a) for a in chosen)
        tag_id = tag_ids[i % 4]
        rivals = ", ".join(str(t) for t in tag_ids[:4] if t != tag_id)
        with engine.connect() as connection:
            connection.execute(
                text(f"DELETE FROM annotation WHERE asset_id IN ({ids}) AND tag_id IN ({rivals})")
            )
            connection.execute(
                text("INSERT INTO annotation (asset_id, tag_id, source, created_at) "
                     f"SELECT id, {tag_id}, 'human', CURRENT_TIMESTAMP FROM asset "
                     f"WHERE id IN ({ids}) ON CONFLICT (asset_id, tag_id) DO NOTHING")
            )  # fmt: skip
            connection.commit()

    def grid(_i: int) -> None:
        after = rng.choice(asset_ids)
        request(lambda s, p: asset_search.search(
            session=s, project=p, asset_filter=AssetFilter(), after=after, limit=GRID_PAGE,
            with_total=False,
        ))  # fmt: skip

    def grid_filtered(_i: int) -> None:
        after = rng.choice(asset_ids[: len(asset_ids) // 2])
        request(lambda s, p: asset_search.search(
            session=s, project=p, limit=GRID_PAGE, after=after, with_total=False,
            asset_filter=AssetFilter(review_state="unlabeled", has_tag_ids=(tag_ids[5],)),
        ))  # fmt: skip

    def grid_bare(_i: int) -> None:
        after = rng.choice(asset_ids)
        with engine.connect() as connection:
            rows = connection.execute(sql["grid_page"], {"p": project_id, "after": after,
                                                         "n": GRID_PAGE}).all()  # fmt: skip
            if rows:
                connection.execute(sql["grid_tags"], {"lo": rows[0].id, "hi": rows[-1].id}).all()

    def grid_filtered_bare(_i: int) -> None:
        after = rng.choice(asset_ids[: len(asset_ids) // 2])
        with engine.connect() as connection:
            values = {"p": project_id, "after": after, "n": GRID_PAGE, "t": tag_ids[5]}
            rows = connection.execute(sql["grid_page_filtered"], values).all()
            if rows:
                connection.execute(
                    text("SELECT asset_id, tag_id FROM annotation WHERE asset_id IN "
                         f"({', '.join(str(row.id) for row in rows)})")
                ).all()  # fmt: skip

    def counts(_i: int) -> None:
        # What the annotator asks on a new filter: the filter's total and each option's count.
        def body(session: Session, project: Project) -> None:
            unlabeled = AssetFilter(review_state="unlabeled")
            asset_search.search(session=session, project=project, asset_filter=unlabeled, limit=1)
            asset_search.count(session=session, project=project)

        request(body)

    def stats(_i: int) -> None:
        request(lambda s, p: stats_service.compute(session=s, project=p))

    def stats_bare(_i: int) -> None:
        with engine.connect() as connection:
            for name in ("stats_splits", "stats_tags", "stats_cooccurrence"):
                connection.execute(sql[name], {"p": project_id}).all()

    cases: dict[str, tuple[Callable[[int], None], Callable[[int], None] | None, int]] = {
        "toggle": (toggle, toggle_bare, repeat),
        "bulk_500": (bulk, bulk_bare, max(10, repeat // 10)),
        "grid_page": (grid, grid_bare, max(20, repeat // 4)),
        "grid_page_filtered": (grid_filtered, grid_filtered_bare, max(20, repeat // 4)),
        "filter_total_and_counts": (counts, None, max(5, repeat // 20)),
        "stats": (stats, stats_bare, max(5, repeat // 20)),
    }
    for name, (service_case, bare_case, times) in cases.items():
        measured = [service_case] if bare_case is None else [service_case, bare_case]
        samples = _measure(times, measured)
        entry: dict[str, Any] = {"runs": times, **_percentiles(samples[0])}
        if bare_case is not None:
            baseline = _percentiles(samples[1])
            entry["baseline_p50_ms"] = baseline["p50_ms"]
            entry["baseline_p95_ms"] = baseline["p95_ms"]
            entry["ratio_p50"] = round(entry["p50_ms"] / max(baseline["p50_ms"], 1e-6), 2)
        results[name] = entry
    if engine.dialect.name == "sqlite":
        # With SQLite's NullPool the last connection to close checkpoints the WAL, which
        # dominates a toggle above. In a running server another connection (a concurrent
        # request, the worker) is usually open; measure that case too.
        with engine.connect() as idle:
            idle.execute(text("SELECT 1"))
            samples = _measure(repeat, [toggle, toggle_bare])
            entry = {"runs": repeat, **_percentiles(samples[0])}
            baseline = _percentiles(samples[1])
            entry["baseline_p50_ms"] = baseline["p50_ms"]
            entry["baseline_p95_ms"] = baseline["p95_ms"]
            entry["ratio_p50"] = round(entry["p50_ms"] / max(baseline["p50_ms"], 1e-6), 2)
            results["toggle_other_connection_open"] = entry

    with factory() as session:
        project = session.get(Project, project_id)
        session.delete(project)
        session.commit()
    engine.dispose()
    return {
        "benchmark": "annotate",
        "database": engine.dialect.name,
        "assets": assets,
        "tags": tags,
        "annotations": data["annotations"],
        "populate_s": round(populate_s, 1),
        "results": results,
        "aim": {
            "toggle_p50_ms_below": 15,
            "met": results["toggle"]["p50_ms"] < 15,
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
    }


def main() -> None:
    """Parse arguments, run, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--tags", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=200, help="toggles measured")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.tags < 6:
        parser.error("--tags must be at least 6 (four of them form an exclusivity group)")
    url = args.database_url
    if not url:
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='polytag-bench-')) / 'bench.db'}"
    print(json.dumps(run(url, args.assets, args.tags, args.repeat, args.seed), indent=2))


if __name__ == "__main__":
    main()
