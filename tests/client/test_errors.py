"""Each refusal the server can send arrives as the exception its problem type names, all
``ModelLedgerError``s carrying the problem document."""

from __future__ import annotations

import uuid

import pytest

from modelledger_client import (
    Conflict,
    Forbidden,
    InvalidRequest,
    ModelLedger,
    ModelLedgerError,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    RetryPolicy,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from tests.support.processes import ApiProcess, free_port

pytestmark = pytest.mark.slow


def test_every_refusal_is_its_own_exception(sqlite_server: ApiProcess) -> None:
    with ModelLedger(sqlite_server.base_url, sqlite_server.key) as ledger:
        made = ledger.register_model("refused", project="errors", task="t", framework="f")
        with pytest.raises(NotFound) as not_found:
            ledger.get_model(str(uuid.uuid4()))
        with pytest.raises(Conflict):
            ledger.register_model("refused", project="errors", task="t", framework="f")
        with pytest.raises(Conflict):
            ledger.deploy(made.id, environment="prod")  # never trained
        with pytest.raises(PreconditionFailed):
            ledger.update_model(made.id, if_match=99, description="late")
        with pytest.raises(InvalidRequest) as invalid:
            ledger.register_model("", project="errors", task="t", framework="f")
        assert "body.name" in invalid.value.fields
        with pytest.raises(PayloadTooLarge):
            ledger.update_model(made.id, description="x" * 2_000_000)
        with pytest.raises(UnsupportedMediaType):
            ledger.session.send(
                "POST", "/api/v1/models", content=b"name=x", headers={"Content-Type": "text/plain"}
            )
        viewer = ledger.issue_key("errors-viewer", role="viewer")
    with ModelLedger(sqlite_server.base_url, viewer.key) as reader, pytest.raises(Forbidden):
        reader.register_model("not-mine", project="errors", task="t", framework="f")
    with ModelLedger(sqlite_server.base_url, "mlk_wrong") as stranger, pytest.raises(Unauthorized):
        stranger.get_model(made.id)
    # Every one carries the problem document, typed
    assert not_found.value.status == 404 and not_found.value.type.endswith(":not-found")
    assert isinstance(not_found.value, ModelLedgerError) and not_found.value.problem["detail"]


def test_a_server_that_cannot_be_reached_is_unavailable_after_the_retries() -> None:
    quick = RetryPolicy(attempts=3, first_wait=0.01, longest_wait=0.02)
    nowhere = ModelLedger(f"http://127.0.0.1:{free_port()}", "mlk_x", retry=quick)
    with nowhere, pytest.raises(Unavailable, match="could not be reached"):
        nowhere.statistics()
