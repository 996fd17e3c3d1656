"""A key scoped to some projects may not import a Hub model into another one: the import
is refused with the same 403 as creating a model there, before the Hub is asked. The real
huggingface_hub SDK against the local stand-in Hub, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.e2e.problems import assert_problem
from tests.support.auth import api_client
from tests.support.fake_hub import FakeHub
from tests.support.ledgers import make_ledger

IMPORT = "/api/v1/models/import/huggingface"
MODELS = "/api/v1/models"
KEYS = "/api/v1/admin/keys"
REPO = "acme/sentiment-bert"


def test_an_import_into_a_project_outside_the_keys_scope_is_refused_before_the_hub_is_asked(
    store_url: str,
) -> None:
    with FakeHub() as hub:
        # Given a Hub that is down, and an editor whose key is scoped to project alpha
        hub.add_model(REPO, pipeline_tag="text-classification", library_name="transformers")
        hub.fail_next_requests(1_000, status=503)
        ledger = make_ledger(store_url, hf_endpoint=hub.url)
        try:
            with api_client(ledger) as admin:
                scoped = {"name": "alpha-editor", "role": "editor", "projects": ["alpha"]}
                key = admin.post(KEYS, json=scoped).json()["key"]
            with api_client(ledger, key) as editor:
                # When the editor imports a Hub model into project beta (or, naming no
                # project, into the imports' default one)
                into_beta = editor.post(IMPORT, json={"repo_id": REPO, "project": "beta"})
                into_default = editor.post(IMPORT, json={"repo_id": REPO})
                # Then both are refused as creating a model in beta is, naming the project
                refused = assert_problem(into_beta, 403, "project")
                assert_problem(into_default, 403, "project")
                created = editor.post(
                    MODELS, json={"name": "m", "project": "beta", "task": "t", "framework": "f"}
                )
                assert refused["title"] == assert_problem(created, 403, "project")["title"]
                # and the Hub received no request
                assert hub.requests == []
                # while an import into alpha does ask the Hub (which is down: 503)
                into_alpha = editor.post(IMPORT, json={"repo_id": REPO, "project": "alpha"})
                assert_problem(into_alpha, 503)
                assert hub.requests != []
        finally:
            ledger.close()
