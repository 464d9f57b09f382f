"""Workflows: versioned CRUD, graph checks, the stratified split and the estimates."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.models import Project, TrainingRun, utcnow
from app.schemas.workflows import WorkflowGraph
from app.services import workflows as workflow_service
from app.services.training_data import stratified_split
from tests.fixtures.training import TINY_ARCH, add_asset, tiny_graph


@pytest.fixture
def tags(make_tag):  # type: ignore[no-untyped-def]
    return [make_tag("cat"), make_tag("dog"), make_tag("bird")]


def _label(session: Session, project: Project, tags, pattern: list[tuple[int, ...]], **kw):  # type: ignore[no-untyped-def]
    return [add_asset(session, project, tags=[tags[i] for i in row], **kw) for row in pattern]


def test_create_defaults_to_every_active_tag_and_version_1(session, project, make_tag) -> None:
    cat, dog = make_tag("cat"), make_tag("dog")
    archived = make_tag("old")
    archived.archived = True
    session.commit()
    workflow = workflow_service.create(session=session, project=project, name="  First  ")
    assert workflow.version == 1
    assert workflow.name == "First"
    assert workflow.graph["dataset"]["tag_ids"] == [cat.id, dog.id]
    assert workflow.graph["model"]["arch"] == "hgnetv2_b0"


def test_each_changing_save_is_a_new_version(session, project, tags) -> None:
    workflow = workflow_service.create(session=session, project=project, name="w")
    graph = dict(workflow.graph)
    workflow_service.update(session=session, workflow=workflow, graph=graph)
    assert workflow.version == 1  # nothing changed
    graph["training"] = {**graph["training"], "batch_size": 8}
    workflow_service.update(session=session, workflow=workflow, graph=graph)
    assert workflow.version == 2
    assert workflow.graph["training"]["batch_size"] == 8
    workflow_service.update(session=session, workflow=workflow, name="renamed")
    assert (workflow.version, workflow.name) == (3, "renamed")


def test_invalid_graphs_name_the_field(session, project) -> None:
    with pytest.raises(InvalidInput, match=r"training\.batch_size"):
        workflow_service.create(
            session=session, project=project, name="w", graph={"training": {"batch_size": 0}}
        )
    with pytest.raises(InvalidInput, match=r"unsupported architecture 'vgg99'.*resnet18"):
        workflow_service.create(
            session=session, project=project, name="w", graph={"model": {"arch": "vgg99"}}
        )
    with pytest.raises(InvalidInput, match=r"dataset\.colour"):
        workflow_service.parse_graph({"dataset": {"colour": 1}})


def test_get_other_projects_workflow_is_not_found(session, project, user) -> None:
    from app.services import projects as project_service

    other = project_service.create(session=session, name="Other")
    workflow = workflow_service.create(session=session, project=other, name="w")
    with pytest.raises(NotFound):
        workflow_service.get(session=session, project=project, workflow_id=workflow.id)


def test_check_refuses_no_tags_and_no_labeled_images(session, project, tags) -> None:
    result = workflow_service.check(session=session, project=project, graph={})
    assert "tick at least one tag to train on" in result.errors
    graph = tiny_graph([t.id for t in tags])
    add_asset(session, project, tags=[tags[0]], labeled=False)
    result = workflow_service.check(session=session, project=project, graph=graph)
    assert any("no labeled images" in e for e in result.errors)
    assert result.labeled_images == 0


def test_check_refuses_a_tag_without_positives_and_a_too_large_batch(
    session, project, tags
) -> None:
    _label(session, project, tags, [(0,), (1,), (0, 1), (0,), (1,)])
    graph = tiny_graph([t.id for t in tags], batch_size=64)
    result = workflow_service.check(session=session, project=project, graph=graph)
    assert "tag 'bird' has no positive labeled images; untick it or label some" in result.errors
    assert any("batch size 64 is larger than the 4 training images" in e for e in result.errors)
    counts = {t.name: t.positives for t in result.tags}
    assert counts == {"cat": 3, "dog": 3, "bird": 0}


def test_check_counts_split_and_warns_about_rare_tags(session, project, tags) -> None:
    pattern = [(0,)] * 12 + [(1,)] * 6 + [(0, 1)] * 2 + [(2,)] * 2 + [()] * 8
    _label(session, project, tags, pattern)
    graph = tiny_graph([t.id for t in tags])
    graph["dataset"]["min_positives"] = 5
    result = workflow_service.check(session=session, project=project, graph=graph)
    assert result.errors == []
    assert result.labeled_images == 30
    assert (result.train_images, result.val_images) == (22, 8)
    assert any("tag 'bird' has only 2 positive image(s)" in w for w in result.warnings)
    by_name = {t.name: t for t in result.tags}
    assert by_name["cat"].train_positives + by_name["cat"].val_positives == 14
    assert by_name["cat"].val_positives in (3, 4)  # 25% of 14, stratified


def test_users_own_split_validates_on_val_images(session, project, tags) -> None:
    _label(session, project, tags, [(0,), (1,), (0,)], split="train")
    graph = tiny_graph([tags[0].id, tags[1].id], batch_size=2)
    graph["dataset"]["validation"] = "split"
    result = workflow_service.check(session=session, project=project, graph=graph)
    assert any("no labeled images are marked 'val'" in e for e in result.errors)
    _label(session, project, tags, [(0, 1)], split="val")
    _label(session, project, tags, [(0,)], split="test")
    result = workflow_service.check(session=session, project=project, graph=graph)
    assert result.errors == []
    assert (result.train_images, result.val_images) == (3, 1)


def test_only_chosen_splits_are_used(session, project, tags) -> None:
    _label(session, project, tags, [(0,), (1,), (0, 1), (0,)], split="auto")
    _label(session, project, tags, [(0,), (1,)], split="test")
    graph = tiny_graph([tags[0].id, tags[1].id], batch_size=2)
    assert workflow_service.check(session=session, project=project, graph=graph).labeled_images == 4
    graph["dataset"]["splits"] = ["auto", "test"]
    assert workflow_service.check(session=session, project=project, graph=graph).labeled_images == 6


def test_stratified_split_keeps_each_labels_share() -> None:
    rng = random.Random(1)
    labels = [[k for k in range(5) if rng.random() < (0.5, 0.3, 0.1, 0.05, 0.6)[k]]
              for _ in range(1000)]  # fmt: skip
    is_val = stratified_split(labels, 0.2, seed=3)
    assert sum(is_val) == 200
    for label in range(5):
        total = sum(label in row for row in labels)
        in_val = sum(label in row for row, v in zip(labels, is_val, strict=True) if v)
        assert abs(in_val - 0.2 * total) <= max(2, 0.05 * total), (label, in_val, total)
    assert stratified_split(labels, 0.2, seed=3) == is_val
    assert stratified_split(labels, 0.2, seed=4) != is_val


def test_stratified_split_of_a_tiny_set_has_two_train_and_one_val() -> None:
    is_val = stratified_split([[0], [0], [0]], 0.9, seed=0)
    assert sum(is_val) == 1
    assert sum(stratified_split([[0], [1], [0, 1], [2]] * 4, 0.25, seed=0)) == 4


def test_estimated_steps_and_duration_from_a_finished_run(session, project, tags) -> None:
    _label(session, project, tags, [(0,), (1,), (0, 1), (0,)] * 5)
    graph = tiny_graph([tags[0].id, tags[1].id], length_unit="epochs", length=3)
    result = workflow_service.check(session=session, project=project, graph=graph)
    assert result.steps_per_epoch == 15 // 4
    assert result.estimated_steps == 3 * (15 // 4)
    assert result.estimated_seconds is None
    graph_model = WorkflowGraph.model_validate(graph)
    config = workflow_service.build_train_config(graph_model, train_images=15)
    session.add(TrainingRun(
        project_id=project.id, status="succeeded", images_per_second=12.0,
        workflow_snapshot={"train_config": config.to_dict()}, finished_at=utcnow(),
        started_at=utcnow() - timedelta(minutes=1),
    ))  # fmt: skip
    session.commit()
    result = workflow_service.check(session=session, project=project, graph=graph)
    assert result.measured_images_per_second == 12.0
    assert result.estimated_seconds is not None
    assert result.estimated_seconds >= result.estimated_steps * 4 / 12.0  # type: ignore[operator]
    # Another input size of the same backbone is scaled by pixel count.
    graph["model"]["input_size"] = 64
    scaled = workflow_service.check(session=session, project=project, graph=graph)
    assert scaled.measured_images_per_second == pytest.approx(3.0)


def test_time_budget_and_steps_map_to_the_trainer_config(session, project, tags) -> None:
    graph = WorkflowGraph.model_validate(tiny_graph([tags[0].id], length_unit="minutes", length=2))
    config = workflow_service.build_train_config(graph, train_images=40)
    assert (config.time_budget_minutes, config.max_steps, config.epochs) == (2, None, None)
    graph = WorkflowGraph.model_validate(tiny_graph([tags[0].id], length=7, log_interval=None))
    config = workflow_service.build_train_config(graph, train_images=40)
    assert (config.max_steps, config.log_interval, config.pretrained) == (7, 1, False)
    assert config.arch == TINY_ARCH and config.input_size == 32
