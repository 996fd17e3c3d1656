"""The answer cache: least recently used entries go first; size 0 keeps nothing."""

from __future__ import annotations

from pytest import MonkeyPatch

from queries.cache import FRESH_SECONDS, AnswerCache


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


def test_a_seen_position_never_moves_back_and_goes_stale(monkeypatch: MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("queries.cache.time.monotonic", lambda: clock[0])
    cache = AnswerCache(size=4)
    # Given the catalogue seen at position 9, then (by a slower reader) at 7
    cache.note("catalogue", 1, 9)
    cache.note("catalogue", 1, 7)
    # Then it stands at 9; a rebuilt generation replaces it whatever its position
    seen = cache.seen("catalogue")
    assert seen is not None and (seen.generation, seen.position) == (1, 9)
    cache.note("catalogue", 2, 8)
    seen = cache.seen("catalogue")
    assert seen is not None and (seen.generation, seen.position) == (2, 8)
    # And once FRESH_SECONDS have passed, it is not taken as current any more
    clock[0] += FRESH_SECONDS + 0.001
    assert cache.seen("catalogue") is None
