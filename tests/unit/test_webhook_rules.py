"""A webhook subscription's rules: what it accepts, what changes record, and which
secrets sign while one is rotated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from write_model.errors import InvalidValue, WebhookDeleted
from write_model.values import EventMetadata
from write_model.webhook import Webhook

META = EventMetadata("admin", "c", "c")


def subscribed(**fields: object) -> Webhook:
    given = {"url": "https://hooks.example/ml", "event_types": None, "projects": ["crm"],
             "description": "", **fields}  # fmt: skip
    return Webhook.subscribe(sealed_secret="sealed-1", meta=META, **given)


@pytest.mark.parametrize(
    "url", ["ftp://hooks.example/", "/relative", "https://", "https://a.example/\n", "x" * 2001]
)
def test_a_url_that_is_no_absolute_http_url_is_refused(url: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        subscribed(url=url)
    assert refused.value.field == "url"


def test_a_change_records_only_what_differs_and_nothing_after_deletion() -> None:
    hook = subscribed()
    assert not hook.update({"projects": ["crm"]}, META)  # the same: no event
    assert hook.update({"projects": ["fraud", "crm", "crm"], "description": "to CI"}, META)
    assert [type(e).__name__ for e in hook.collect_events()] == ["WebhookCreated", "WebhookUpdated"]
    assert hook.projects == ["crm", "fraud"]
    assert hook.disable("an admin paused it", META) and not hook.disable("again", META)
    assert hook.enable(META) and not hook.enable(META)
    hook.delete(META)
    with pytest.raises(WebhookDeleted):
        hook.update({"description": "late"}, META)
    with pytest.raises(InvalidValue):
        subscribed().update({"secret": "mine"}, META)  # not a field one changes so


def test_after_a_rotation_both_secrets_sign_until_the_overlap_ends() -> None:
    hook, now = subscribed(), datetime.now(UTC)
    hook.rotate_secret("sealed-2", now + timedelta(hours=24), META)
    assert hook.secrets_at(now) == ["sealed-2", "sealed-1"]
    assert hook.secrets_at(now + timedelta(hours=25)) == ["sealed-2"]
