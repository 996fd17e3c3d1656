"""Headers a client may send: at most 8 KiB in one (name and value), 64 KiB in all and
100 of them; past any limit the answer is a 431 problem naming what broke it, from the
app (TestClient) and from the real server (uvicorn), before any key is checked."""

from __future__ import annotations

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from tests.e2e.problems import MODELS, assert_problem
from tests.support.processes import ApiProcess

KIB = 1024
MAX_HEADER_BYTES = 8 * KIB  # as the README states them
MAX_HEADERS = 100


def test_one_header_over_8_kib_is_a_431_naming_it(memory_client: TestClient) -> None:
    name = "X-Correlation-ID"
    # Given a header of exactly 8 KiB, name and value
    at_limit = {name: "c" * (MAX_HEADER_BYTES - len(name))}
    # When it is sent, and then one byte more
    fine = memory_client.get(MODELS, headers=at_limit)
    over = memory_client.get(MODELS, headers={name: at_limit[name] + "c"})
    # Then the first is answered, the second is a 431 naming the header
    assert fine.status_code == 200, fine.text
    problem = assert_problem(over, 431, name.lower())
    assert problem["type"] == "urn:modelledger:problem:headers-too-large"


def test_headers_over_64_kib_in_all_are_a_431(memory_client: TestClient) -> None:
    # Given ten headers of 7 KiB each: none too large, 70 KiB together
    headers = {f"X-Note-{i}": "n" * (7 * KIB) for i in range(10)}
    # When they are sent
    response = memory_client.get(MODELS, headers=headers)
    # Then it is a 431 naming the headers as a whole
    assert_problem(response, 431, "headers")


def test_more_than_100_headers_are_a_431(memory_client: TestClient) -> None:
    # Given the headers the client always sends (host, user-agent, authorization...)
    sent = len(memory_client.build_request("GET", MODELS).headers)
    extra = [(f"X-Extra-{i}", "1") for i in range(MAX_HEADERS - sent)]
    # When exactly 100 are sent, and then 101
    fine = memory_client.get(MODELS, headers=extra)
    over = memory_client.get(MODELS, headers=[*extra, ("X-One-More", "1")])
    # Then the first is answered, the second is a 431 naming the headers
    assert fine.status_code == 200, fine.text
    assert_problem(over, 431, "headers")


def test_the_limits_come_before_the_key_and_hold_on_every_path(memory_client: TestClient) -> None:
    anonymous = TestClient(memory_client.app)
    huge = {"X-Big": "b" * (MAX_HEADER_BYTES + 1)}
    for path in ("/health", "/docs", "/openapi.json", MODELS, "/nowhere"):
        assert_problem(anonymous.get(path, headers=huge), 431, "x-big")


@pytest.mark.slow
def test_the_real_server_refuses_a_4_mb_header_and_20000_headers(served: ApiProcess) -> None:
    # Given the server a user runs (uvicorn alone limits neither)
    with httpx.Client(base_url=served.base_url, timeout=30.0) as http:
        # When a 4 MB X-Correlation-ID is sent, and then 20,000 headers
        huge = http.get("/health", headers={"X-Correlation-ID": "x" * 4_000_000})
        many = http.get("/health", headers=[(f"X-H{i}", "1") for i in range(20_000)])
        # Then each is a 431 problem, and the server goes on answering
        assert_problem(huge, 431, "x-correlation-id")
        assert_problem(many, 431, "headers")
        assert http.get("/health").status_code == 200
