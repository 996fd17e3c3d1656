"""The answer cache: least recently used entries go first; size 0 keeps nothing."""

from __future__ import annotations

from queries.cache import AnswerCache


def test_the_least_recently_used_answer_is_evicted() -> None:
    cache = AnswerCache(size=2)
    cache.put("a", b"1")
    cache.put("b", b"2")
    assert cache.get("a") == b"1"  # "a" is now the most recent
    cache.put("c", b"3")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"1", None, b"3")
    assert (cache.hits, cache.misses) == (3, 1)


def test_size_zero_keeps_nothing() -> None:
    cache = AnswerCache(size=0)
    cache.put("a", b"1")
    assert cache.get("a") is None
