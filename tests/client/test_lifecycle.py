"""A model's whole life through the client, as a training script and a CI job would
live it: each read right after a command shows it (the client sends its position)."""

from __future__ import annotations

import asyncio
from itertools import islice

import pytest

from modelledger_client import AsyncModelLedger, ModelLedger
from tests.support.processes import ApiProcess

pytestmark = pytest.mark.slow


def test_a_model_registered_trained_deployed_and_archived(server: ApiProcess) -> None:
    with ModelLedger(server.base_url, server.key) as ledger:
        # Given a registered model
        made = ledger.register_model(
            "churn", project="crm", task="classification", framework="xgboost", tags=["tabular"]
        )
        # When it is trained twice
        for accuracy in (0.81, 0.86):
            run = ledger.start_training(made.id, dataset="s3://churn", hyperparameters={"depth": 6})
            done = ledger.complete_training(
                made.id, run.run_id, metrics={"accuracy": accuracy}, artifact_uri="s3://m/1"
            )
        # Then every read shows it at once: the model, its versions, its runs, the catalogue
        model = ledger.get_model(made.id)
        assert model.latest_version == 2 and model.best_metrics["accuracy"].value == 0.86
        assert [v.metrics for v in ledger.versions(made.id)] == [{"accuracy": 0.81},
                                                                 {"accuracy": 0.86}]  # fmt: skip
        assert [r.state for r in ledger.training_runs(made.id)] == ["completed", "completed"]
        assert ledger.find_model("crm", "churn").id == made.id
        assert [m.name for m in ledger.search_models("churn", project="crm")] == ["churn"]
        assert ledger.statistics(project="crm").total_models == 1
        board = ledger.top_performing("accuracy", project="crm")
        assert [(e.name, e.value) for e in board] == [("churn", 0.86)]
        # When a version is described, deployed, another deployed and rolled back
        ledger.update_version(made.id, 1, description="the baseline", tags=["v1"])
        assert ledger.get_version(made.id, 1).description == "the baseline"
        ledger.deploy(made.id, environment="production", model_version=1)
        ledger.deploy(made.id, environment="production")
        ledger.rollback(made.id, environment="production")
        assert ledger.get_model(made.id).deployments["production"].model_version == 1
        stretches = ledger.deployments(made.id).history
        assert [(s.model_version, s.action) for s in stretches] == [
            (1, "deployed"), (2, "deployed"), (1, "rolled_back")
        ]  # fmt: skip
        # and its metadata changed only on the version read, then archived
        changed = ledger.update_model(made.id, if_match=model.version + 4, description="v2")
        assert changed.version == model.version + 5
        ledger.undeploy(made.id, environment="production")
        ledger.archive_model(made.id, reason="replaced")
        # Then its history tells it all, in order, and the feed has it
        types = [e.type for e in ledger.history(made.id)]
        assert types[0] == "ModelCreated" and types[-1] == "ModelArchived"
        assert types.count("ModelTrained") == 2 and "ModelRolledBack" in types
        feed = list(ledger.events(0, model_id=made.id))
        assert [e.type for e in feed] == types and feed[-1].position == ledger.position
        assert done.model_version == 2


def test_the_async_client_does_the_same_with_the_same_methods(sqlite_server: ApiProcess) -> None:
    async def story() -> None:
        async with AsyncModelLedger(sqlite_server.base_url, sqlite_server.key) as ledger:
            made = await ledger.register_model(
                "fraud", project="pay", task="classification", framework="torch"
            )
            run = await ledger.start_training(made.id, dataset="d")
            await ledger.complete_training(made.id, run.run_id, metrics={"auc": 0.9})
            await ledger.deploy(made.id, environment="staging")
            model = await ledger.get_model(made.id)
            assert model.deployments["staging"].model_version == 1
            found = [m.id async for m in ledger.search_models(project="pay")]
            assert found == [made.id]
            history = [e.type async for e in ledger.history(made.id)]
            assert history[-1] == "ModelDeployed"
            assert (await ledger.statistics(project="pay")).by_status == {"deployed": 1}

    asyncio.run(story())


def test_a_search_pages_by_itself(sqlite_server: ApiProcess) -> None:
    with ModelLedger(sqlite_server.base_url, sqlite_server.key) as ledger:
        for n in range(7):
            ledger.register_model(f"pager-{n}", project="paging", task="t", framework="f")
        found = ledger.search_models(project="paging", sort="name", page_size=3)
        assert [m.name for m in found] == [f"pager-{n}" for n in range(7)]
        assert len(list(islice(ledger.search_models(project="paging", page_size=2), 3))) == 3
