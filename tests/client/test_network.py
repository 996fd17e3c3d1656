"""What networks and servers do to a client, and what it makes of it: a command whose
answer was lost is sent again and carried out once; a 503 or 429 is waited out as the
server says; reads reflect the client's own writes on whichever API process answers; a
live feed goes on from where it was after the server restarts."""

from __future__ import annotations

import threading
import time
from itertools import islice
from pathlib import Path

import httpx
import pytest

from api.services import MAX_STREAMS_PER_KEY
from modelledger_client import ModelLedger, RateLimited, RetryPolicy, Unavailable
from modelledger_client.models import Event
from tests.support.http_proxy import proxying
from tests.support.ledgers import fresh_postgres_database
from tests.support.processes import ApiProcess, serving

pytestmark = pytest.mark.slow
QUICK = RetryPolicy(attempts=6, first_wait=0.05, longest_wait=0.5)


def test_a_command_whose_answer_was_lost_is_carried_out_once(sqlite_server: ApiProcess) -> None:
    with proxying(sqlite_server.port) as proxy, ModelLedger(proxy.url, sqlite_server.key,
                                                            retry=QUICK) as ledger:  # fmt: skip
        # Given the answers to a registration and a training run are lost on the way back
        proxy.lose_the_answer_to("POST /api/v1/models ")
        made = ledger.register_model("lost-answer", project="net", task="t", framework="f")
        proxy.lose_the_answer_to(f"POST /api/v1/models/{made.id}/train")
        run = ledger.start_training(made.id, dataset="d")
        # Then each was sent twice, and carried out once
        assert proxy.forwarded.count("POST /api/v1/models HTTP/1.1") == 2
        types = [e.type for e in ledger.history(made.id)]
        assert types == ["ModelCreated", "TrainingStarted"]
        assert [r.run_id for r in ledger.training_runs(made.id)] == [run.run_id]
        assert len(list(ledger.search_models(name="lost-answer", project="net"))) == 1


def test_a_revocation_or_a_removal_whose_answer_was_lost_answers_as_the_first_did(
    sqlite_server: ApiProcess,
) -> None:
    with proxying(sqlite_server.port) as proxy, ModelLedger(proxy.url, sqlite_server.key,
                                                            retry=QUICK) as ledger:  # fmt: skip
        key = ledger.issue_key("revoked-once", role="viewer")
        ledger.define_metric("lost/loss", "minimize")
        # When the answers to the revocation and to the removal are lost
        proxy.lose_the_answer_to("DELETE /api/v1/admin/keys/")
        revoked = ledger.revoke_key(key.id)
        proxy.lose_the_answer_to("DELETE /api/v1/metric-definitions/")
        removed = ledger.remove_metric_definition("lost/loss")
        # Then each retry got the first answer (not "already revoked", not "no definition")
        assert revoked.revoked and removed.source == "default"
        assert proxy.forwarded.count(f"DELETE /api/v1/admin/keys/{key.id} HTTP/1.1") == 2
        types = [e.type for e in ledger.events(0, types=["KeyRevoked", "MetricDefinitionRemoved"])]
        assert types == ["KeyRevoked", "MetricDefinitionRemoved"]


def test_a_key_is_never_issued_twice_so_a_lost_answer_is_an_error(
    sqlite_server: ApiProcess,
) -> None:
    with proxying(sqlite_server.port) as proxy, ModelLedger(proxy.url, sqlite_server.key,
                                                            retry=QUICK) as ledger:  # fmt: skip
        proxy.lose_the_answer_to("POST /api/v1/admin/keys")
        with pytest.raises(Unavailable, match="not retried"):
            ledger.issue_key("once-only", role="viewer")
        assert proxy.forwarded.count("POST /api/v1/admin/keys HTTP/1.1") == 1
        issued = [e.data["name"] for e in ledger.events(0, types=["KeyIssued"])]
        assert issued.count("once-only") == 1  # (the log has it: it was issued once)


def test_a_gateways_503_is_waited_out_and_given_up_on_after_the_retries(
    sqlite_server: ApiProcess,
) -> None:
    with proxying(sqlite_server.port) as proxy, ModelLedger(proxy.url, sqlite_server.key,
                                                            retry=QUICK) as ledger:  # fmt: skip
        proxy.refuse("POST /api/v1/models ", times=3)
        made = ledger.register_model("after-503", project="net", task="t", framework="f")
        assert ledger.get_model(made.id).name == "after-503"
        proxy.refuse("GET /api/v1/models/statistics", times=QUICK.attempts)
        with pytest.raises(Unavailable):
            ledger.statistics()


def test_429_is_waited_out_as_retry_after_says(tmp_path: Path) -> None:
    # Given a server allowing one request a second per key, none saved up
    limited = {"MODELLEDGER_RATE_LIMIT": "1", "MODELLEDGER_RATE_LIMIT_BURST": "1"}
    with serving(tmp_path, **limited) as api, ModelLedger(api.base_url, api.key) as ledger:
        began = time.monotonic()
        made = ledger.register_model("patient", project="net", task="t", framework="f")
        for _ in range(2):
            assert ledger.get_model(made.id).name == "patient"
        # Then every call succeeded, the later ones after waiting about a second each
        assert time.monotonic() - began >= 1.5
        hasty = ModelLedger(api.base_url, api.key, retry=RetryPolicy(attempts=1))
        ledger.statistics()  # (spends the token)
        with hasty, pytest.raises(RateLimited) as refused:
            hasty.statistics()
        assert refused.value.retry_after is not None and refused.value.retry_after > 0


def test_reads_reflect_the_clients_writes_on_whichever_process_answers(
    postgres_server: str, tmp_path: Path
) -> None:
    # Given two API processes on one store, behind a proxy that alternates between them
    database = {"MODELLEDGER_DATABASE_URL": fresh_postgres_database(postgres_server)}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    with (
        serving(tmp_path / "a", **database) as first,
        serving(tmp_path / "b", **database) as second,
        proxying(first.port, second.port) as balancer,
        ModelLedger(balancer.url, first.key) as ledger,
    ):
        for n in range(5):
            # When a command goes to one process, each read right after goes to the other
            made = ledger.register_model(f"rr-{n}", project="ryw", task="t", framework="f")
            assert ledger.get_model(made.id).name == f"rr-{n}"
            found = [m.name for m in ledger.search_models(project="ryw")]
            assert f"rr-{n}" in found and len(found) == n + 1
            assert ledger.statistics(project="ryw").total_models == n + 1
        # (no position was passed by the caller: the client kept it)
        assert ledger.position > 0
        assert balancer.sent_to[first.port] >= 10 and balancer.sent_to[second.port] >= 10


def test_following_the_log_goes_on_after_the_server_restarts(tmp_path: Path) -> None:
    with serving(tmp_path) as api:
        env, port, key = api.env, api.port, api.key
        with ModelLedger(api.base_url, key, retry=QUICK) as ledger:
            ledger.register_model("before", project="live", task="t", framework="f")
        seen: list[Event] = []
        follower = ModelLedger(api.base_url, key, retry=RetryPolicy(attempts=30, longest_wait=0.5))

        def follow() -> None:
            for event in follower.follow_events(0):
                seen.append(event)
                if len(seen) == 2:
                    return

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        _wait_for(lambda: len(seen) == 1)
    # When the server stops, and starts again on the same store and port
    again = ApiProcess(["serve"], env, tmp_path, "serve-again", port, key).start()
    try:
        again.wait_healthy()
        with ModelLedger(again.base_url, key, retry=QUICK) as ledger:
            ledger.register_model("after", project="live", task="t", framework="f")
        # Then the follower has the event after the restart, and none twice
        thread.join(timeout=30)
        assert [e.data["name"] for e in seen] == ["before", "after"]
    finally:
        again.stop()
        follower.close()


def _wait_for(condition: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


def test_a_follower_waits_for_a_stream_of_its_key_to_be_free(sqlite_server: ApiProcess) -> None:
    # Given every stream a key may hold is taken
    url = f"{sqlite_server.base_url}/api/v1/events/stream"
    headers = {"Authorization": f"Bearer {sqlite_server.key}"}
    with httpx.Client(timeout=httpx.Timeout(10.0, read=None)) as raw:
        held = [raw.stream("GET", url, headers=headers) for _ in range(MAX_STREAMS_PER_KEY)]
        for stream in held:
            assert stream.__enter__().status_code == 200
        seen: list[Event] = []
        follower = ModelLedger(sqlite_server.base_url, sqlite_server.key, retry=QUICK)
        with ModelLedger(sqlite_server.base_url, sqlite_server.key) as ledger:
            made = ledger.register_model("waited", project="slots", task="t", framework="f")
            after = made.position - 1 if made.position else 0

        def follow() -> None:
            seen.extend(islice(follower.follow_events(after, model_id=made.id), 1))

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        time.sleep(1.0)  # (refused meanwhile: 429, Retry-After)
        assert seen == [] and thread.is_alive()
        # When one is given back, the follower gets its stream and the event
        held.pop().__exit__(None, None, None)
        thread.join(timeout=20)
        assert [e.type for e in seen] == ["ModelCreated"]
        for stream in held:
            stream.__exit__(None, None, None)
        follower.close()
