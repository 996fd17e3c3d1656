"""Given a trained model, when its version is described or tagged, then VersionUpdated
(or this refusal). In-memory store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commands.messages import ArchiveModel, UpdateVersion
from modelledger.bootstrap import Ledger
from queries.models import get_model
from tests.support.ledgers import make_ledger
from tests.support.story import Story
from write_model.errors import ModelArchived, VersionNotFound


@pytest.fixture
def story() -> Iterator[Story]:
    ledger: Ledger = make_ledger("memory://")
    yield Story(ledger.registry)
    ledger.close()


def test_describing_a_version_records_only_what_changes(story: Story) -> None:
    story.a_model().a_trained_version(accuracy=0.9)
    story.when(UpdateVersion(model_id=story.id, model_version=1, description="EU", tags=[]))
    assert story.then_events() == [
        ("VersionUpdated", {"model_version": 1, "changes": {"description": "EU"}})
    ]
    story.when(UpdateVersion(model_id=story.id, model_version=1, description="EU", tags=["eu"]))
    assert story.then_events() == [
        ("VersionUpdated", {"model_version": 1, "changes": {"tags": ["eu"]}})
    ]
    # and the model folds to a version that says so, its metrics as they were
    version = get_model(story.event_log, story.id)[0].versions[0]
    assert (version.description, version.tags, version.metrics) == ("EU", ["eu"], {"accuracy": 0.9})


def test_a_change_that_changes_nothing_records_nothing(story: Story) -> None:
    story.a_model().a_trained_version()
    story.when(UpdateVersion(model_id=story.id, model_version=1, description="", tags=[]))
    assert story.then_events() == []


def test_a_version_never_trained_and_an_archived_model_are_refused(story: Story) -> None:
    story.a_model().a_trained_version()
    missing = story.then_rejected(
        UpdateVersion(model_id=story.id, model_version=2, description="x"), VersionNotFound
    )
    assert missing.field == "number"
    story.given(ArchiveModel(model_id=story.id, reason="gone"))
    story.then_rejected(
        UpdateVersion(model_id=story.id, model_version=1, description="x"), ModelArchived
    )
