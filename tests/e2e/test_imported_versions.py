"""A version imported from MLflow keeps MLflow's number beside ModelLedger's: whoever
looks at it (REST, GraphQL, the web UI), from the catalogue or from the log, sees both."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient

from commands.handlers import handle_sync
from commands.messages import ImportVersion
from commands.registry import CommandContext
from modelledger.bootstrap import Ledger
from tests.e2e.problems import MODELS
from tests.e2e.test_registry_basics import registered
from tests.e2e.test_ui_sessions import signed_in
from tests.support.auth import TEST_ADMIN_KEY
from tests.support.graphql import data_of

VERSIONS = """
query($id: ID!, $at: Int!, $version: Int!) {
  model(id: $id, minPosition: $at) {
    versions { number sourceVersion }
    trainedVersion(number: 2) { number sourceVersion trainingRun { backend } }
  }
  models(project: "crm", first: 10, minPosition: $at) {
    nodes { versions { number sourceVersion } }
  }
  past: model(id: $id, atVersion: $version) { versions { number sourceVersion } }
}
"""


def get(client: TestClient, path: str, **params: Any) -> Any:
    answer = client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def numbers(versions: list[dict[str, Any]], key: str = "source_version") -> list[Any]:
    return [(v["number"], v[key]) for v in versions]


def test_a_version_imported_from_mlflow_shows_mlflows_number_wherever_it_is_shown(
    client: TestClient, ledger: Ledger
) -> None:
    # Given a model with a version trained here, then MLflow's version 7 imported as its 2nd
    trained = registered(client, "churn", "crm", accuracy=0.8)
    model_id = trained["id"]
    imported = handle_sync(
        ledger.registry,
        ImportVersion(
            model_id=UUID(model_id),
            source="mlflow",
            dataset="d",
            metrics={"accuracy": 0.9},
            source_version=7,
        ),
        CommandContext(actor="importer"),
    )
    at = imported.position
    assert imported.details["model_version"] == 2
    both = [(1, None), (2, 7)]

    # When REST is asked: the model now (the log at once, and the catalogue once it has
    # the import), its versions, the one version, and the model from the log as it was
    url = f"{MODELS}/{model_id}"
    # Then each shows MLflow's number beside ModelLedger's, and none for the version trained here
    assert numbers(get(client, url)["versions"]) == both
    assert numbers(get(client, url, min_position=at)["versions"]) == both
    assert numbers(get(client, f"{url}/versions")["items"]) == both
    assert get(client, f"{url}/versions/2")["source_version"] == 7
    assert get(client, f"{url}/versions/1")["source_version"] is None
    assert numbers(get(client, url, at_version=imported.version)["versions"]) == both

    # And GraphQL says the same: one model, a page's models (the DataLoaders), a past version
    found = data_of(client, VERSIONS, id=model_id, at=at, version=imported.version)
    assert numbers(found["model"]["versions"], "sourceVersion") == both
    assert found["model"]["trainedVersion"] == {
        "number": 2,
        "sourceVersion": 7,
        "trainingRun": {"backend": "mlflow"},
    }
    [page_model] = found["models"]["nodes"]
    assert numbers(page_model["versions"], "sourceVersion") == both
    assert numbers(found["past"]["versions"], "sourceVersion") == both

    # And the model's page in the web UI names MLflow's number beside its own
    page = signed_in(client, TEST_ADMIN_KEY).get(f"/ui/models/{model_id}").text
    versions = page[page.index('<h2 id="versions">') :]
    assert "(MLflow 7)" in versions and versions.count("(MLflow") == 1
