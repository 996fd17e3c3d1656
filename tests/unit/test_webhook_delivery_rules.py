"""The deliverer's rules that need no I/O: which addresses a delivery may reach, when a
failed one is tried again, and which ids a receiver de-duplicates on."""

from __future__ import annotations

import ipaddress

import pytest

from adapters.webhook_http import refused_address, retry_after
from processes.webhooks.payloads import event_message_id, new_message_id
from processes.webhooks.schedule import DEFAULT_SCHEDULE, next_wait, parse_schedule


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "100.64.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "fec0::1",
        "2002:7f00:1::",
    ],
)
def test_loopback_private_link_local_and_multicast_addresses_are_refused(address: str) -> None:
    assert refused_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert not refused_address(ipaddress.ip_address(address))


def test_the_default_schedule_is_the_specifications() -> None:
    assert DEFAULT_SCHEDULE == (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    assert parse_schedule("0, 5,300") == (0.0, 5.0, 300.0)
    for bad in ("", "a,b", "0,-1"):
        with pytest.raises(ValueError):
            parse_schedule(bad)


def test_a_retry_waits_its_step_with_up_to_a_tenth_more_and_none_past_the_end() -> None:
    waits = [next_wait(DEFAULT_SCHEDULE, 1, None) for _ in range(200)]
    assert all(w is not None and 5 <= w <= 5.5 for w in waits)
    assert len(set(waits)) > 1  # jittered
    assert next_wait(DEFAULT_SCHEDULE, len(DEFAULT_SCHEDULE), None) is None


def test_a_retry_after_longer_than_the_step_is_waited_out_up_to_a_day() -> None:
    assert next_wait((0, 1, 1), 1, 30.0) == 30.0
    assert next_wait((0, 1, 1), 1, 10**9) == 86_400.0
    wait = next_wait((0, 60), 1, 2.0)
    assert wait is not None and wait >= 60


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    assert retry_after("120") == 120.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: at once
    assert retry_after("soon") is None and retry_after(None) is None
    assert retry_after("\u00b2") is None  # a digit to str.isdigit, to no HTTP server


def test_an_events_message_id_is_stable_per_subscription_and_a_replays_is_new() -> None:
    assert event_message_id("w1", 7) == event_message_id("w1", 7)
    assert event_message_id("w1", 7) != event_message_id("w2", 7)
    assert event_message_id("w1", 7) != event_message_id("w1", 8)
    assert new_message_id() != new_message_id()
    assert event_message_id("w1", 7).startswith("msg_")
