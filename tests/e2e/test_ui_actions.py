"""An editor changes the registry from the web UI: the API's commands, rules and
messages, each form carrying the session's token; the page shows the change at once."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.e2e.test_access import issue
from tests.e2e.test_ui_sessions import ORIGIN, form_token_of, signed_in
from tests.support.auth import TEST_ADMIN_KEY


class Editor:
    """A signed-in browser that posts the page's forms."""

    def __init__(self, admin: TestClient, key: str) -> None:
        self.user = signed_in(admin, key)
        self.token = form_token_of(self.user.get("/ui/models").text)

    def post(self, path: str, **fields: str) -> tuple[int, str]:
        answer = self.user.post(path, data={"form_token": self.token, **fields})
        return answer.status_code, answer.text


def test_an_editor_registers_trains_deploys_and_rolls_back_from_the_pages(
    admin: TestClient,
) -> None:
    editor = Editor(admin, issue(admin, "ed", "editor"))
    # When a model is registered from the catalogue's form
    status, page = editor.post(
        "/ui/models", name="churn", project="p", task="classification", framework="xgboost"
    )
    # Then its page opens at once
    assert status == 200 and "<h1>churn</h1>" in page
    model_id = re.search(r"/ui/models/([0-9a-f-]{36})/train", page).group(1)  # type: ignore[union-attr]
    base = f"/ui/models/{model_id}"
    # When a run is started and completed with metrics, twice
    for accuracy in ("0.81", "0.86"):
        status, page = editor.post(f"{base}/train", dataset="s3://churn")
        run_id = re.search(rf"{base}/runs/([^/]+)/complete", page).group(1)  # type: ignore[union-attr]
        status, page = editor.post(f"{base}/runs/{run_id}/complete", metrics=f"accuracy={accuracy}")
        assert status == 200, page
    assert "accuracy 0.86" in page
    # When version 1, then version 2, is deployed to staging
    editor.post(f"{base}/deploy", environment="staging", model_version="1")
    status, page = editor.post(f"{base}/deploy", environment="staging")
    assert status == 200 and "staging: version 2" in page
    # Then rolling back needs a confirmation, and then serves version 1 again
    status, page = editor.post(f"{base}/rollback", environment="staging")
    assert status == 422 and "confirm" in page
    status, page = editor.post(f"{base}/rollback", environment="staging", confirm="true")
    assert status == 200 and "staging: version 1" in page
    timeline = page[
        page.index("<h2>Deployments</h2>") : page.index('<h2 id="versions">Versions</h2>')
    ]
    assert timeline.count("<tr><td>staging</td>") == 3  # deployed, deployed, rolled back
    # and the API reads the same model
    assert (
        admin.get(f"/api/v1/models/{model_id}").json()["deployments"]["staging"]["model_version"]
        == 1
    )


def test_the_registrys_rules_refuse_with_the_apis_words(admin: TestClient) -> None:
    editor = Editor(admin, TEST_ADMIN_KEY)
    _, page = editor.post("/ui/models", name="m", project="p", task="t", framework="f")
    model_id = re.search(r"/ui/models/([0-9a-f-]{36})/train", page).group(1)  # type: ignore[union-attr]
    # deploying a model never trained
    status, page = editor.post(f"/ui/models/{model_id}/deploy", environment="prod")
    assert status == 409 and 'role="alert"' in page
    # a metric that is no number
    status, page = editor.post(f"/ui/models/{model_id}/train", dataset="d")
    run_id = re.search(r"/runs/([^/]+)/complete", page).group(1)  # type: ignore[union-attr]
    status, page = editor.post(f"/ui/models/{model_id}/runs/{run_id}/complete", metrics="acc=high")
    assert status == 422 and "is not a number" in page
    # a duplicate name: the catalogue again, with the form as it was sent
    status, page = editor.post(
        "/ui/models", name="m", project="p", task="t", framework="f", tags="a, b", description="d2"
    )
    assert status == 409 and "Not registered:" in page and "already has a model named" in page
    for field, value in (("name", "m"), ("project", "p"), ("tags", "a, b"), ("description", "d2")):
        assert f'id="new-{field}" name="{field}" ' in page and f'value="{value}"' in page


def test_a_malformed_address_gets_a_page_saying_so_not_the_apis_json(admin: TestClient) -> None:
    editor = Editor(admin, TEST_ADMIN_KEY)
    # A model id that is not one, a form field that is no number, a page that is not there
    for answer in (
        editor.user.get("/ui/models/not-a-uuid"),
        editor.user.post("/ui/models/not-a-uuid/edit", data={"form_token": editor.token}),
        editor.user.get("/ui/models/" + "0" * 32 + "?versions=zero"),
    ):
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("text/html")
        assert "<h1>Not accepted</h1>" in answer.text and 'role="alert"' in answer.text
    assert "model_id" in editor.user.get("/ui/models/not-a-uuid").text
    assert "versions" in editor.user.get("/ui/models/" + "0" * 32 + "?versions=0").text
    missing = editor.user.get("/ui/nowhere")
    assert missing.status_code == 404 and "<h1>Not found</h1>" in missing.text
    # while the API still answers in problem+json
    api = admin.get("/api/v1/models/not-a-uuid")
    assert api.status_code == 422 and api.headers["content-type"] == "application/problem+json"


def test_an_edit_made_on_an_old_page_is_refused_and_shows_the_model_now(
    admin: TestClient,
) -> None:
    editor = Editor(admin, TEST_ADMIN_KEY)
    _, page = editor.post("/ui/models", name="m", project="p", task="t", framework="f")
    model_id = re.search(r"/ui/models/([0-9a-f-]{36})/train", page).group(1)  # type: ignore[union-attr]
    # Given someone else changed the description after this page was shown (version 1)
    admin.patch(f"/api/v1/models/{model_id}", json={"description": "theirs"})
    # When this page's edit is sent, made on version 1
    status, page = editor.post(
        f"/ui/models/{model_id}/edit", version="1", description="mine", tags=""
    )
    # Then it is refused, the page saying so and showing their change to edit again
    assert status == 412 and "changed while you edited it" in page
    assert ">theirs</textarea>" in page and 'name="version" value="2"' in page
    status, page = editor.post(f"/ui/models/{model_id}/edit", version="2", description="mine")
    assert status == 200 and ">mine</textarea>" in page


def test_a_viewer_sees_no_action_and_a_forged_post_is_refused(admin: TestClient) -> None:
    Editor(admin, TEST_ADMIN_KEY).post("/ui/models", name="m", project="p", task="t", framework="f")
    viewer = Editor(admin, issue(admin, "v", "viewer"))
    catalogue = viewer.user.get("/ui/models").text
    assert "Register a model" not in catalogue
    model_id = admin.get("/api/v1/models/by-name", params={"project": "p", "name": "m"}).json()[
        "id"
    ]
    assert "Change it" not in viewer.user.get(f"/ui/models/{model_id}").text
    status, page = viewer.post(f"/ui/models/{model_id}/train", dataset="d")
    assert status == 403 and "may not change" in page
    status, _ = viewer.post("/ui/models", name="x", project="p", task="t", framework="f")
    assert status == 403


def test_a_post_without_the_sessions_token_changes_nothing(admin: TestClient) -> None:
    editor = Editor(admin, TEST_ADMIN_KEY)
    answer = editor.user.post(
        "/ui/models",
        data={"name": "sneaky", "project": "p", "task": "t", "framework": "f"},
        headers={"origin": ORIGIN},
    )
    assert answer.status_code == 403
    missing = admin.get("/api/v1/models/by-name", params={"project": "p", "name": "sneaky"})
    assert missing.status_code == 404


def test_a_form_that_stays_on_its_page_is_answered_with_a_line_for_its_status(
    admin: TestClient,
) -> None:
    editor = Editor(admin, TEST_ADMIN_KEY)
    _, page = editor.post("/ui/models", name="m", project="p", task="t", framework="f")
    model_id = re.search(r"/ui/models/([0-9a-f-]{36})/train", page).group(1)  # type: ignore[union-attr]
    htmx = {"HX-Request": "true"}

    def sent(action: str, **fields: str) -> str:
        answer = editor.user.post(
            f"/ui/models/{model_id}/{action}",
            data={"form_token": editor.token, **fields},
            headers=htmx,
        )
        assert answer.status_code == 200 and "<" not in answer.text, answer.text
        return answer.text

    # A deploy the registry refuses, in the API's words; a number no version has
    assert sent("deploy", environment="prod").startswith("Refused: ")
    assert "model_version" in sent("deploy", environment="prod", model_version="1e30")
    # a post without the token
    answer = editor.user.post(f"/ui/models/{model_id}/deploy", data={"environment": "x"},
                              headers=htmx)  # fmt: skip
    assert answer.text.startswith("Refused: the form's token")
    # and one that is done
    run = admin.post(f"/api/v1/models/{model_id}/train", json={"dataset": "d"}).json()["run_id"]
    admin.post(f"/api/v1/models/{model_id}/training-runs/{run}/complete", json={"metrics": {}})
    assert sent("deploy", environment="staging") == "Done: deployed to staging."
    assert sent("rollback", environment="staging", confirm="true").startswith("Refused: ")
    assert sent("undeploy", environment="staging", confirm="true") == (
        "Done: staging no longer served."
    )
