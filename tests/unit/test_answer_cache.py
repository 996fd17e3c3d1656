"""The answer cache: bounded in bytes, least recently used answers go first, 0 keeps
nothing; and a projection's seen position never moves back and goes stale."""

from __future__ import annotations

import tracemalloc

from pytest import MonkeyPatch

from queries.answers import ENTRY_OVERHEAD, Answer, AnswerCache
from queries.positions import FRESH_SECONDS, Positions
from read_model.encoding import json_bytes


def answer(size: int) -> Answer:
    return Answer(b"x" * size, position=1)


def test_the_least_recently_used_answer_goes_when_the_bytes_are_spent() -> None:
    # Given room for two answers of 100 bytes
    cache = AnswerCache(max_bytes=2 * (100 + len("a") + ENTRY_OVERHEAD), models_share=0)
    cache.put("a", answer(100))
    cache.put("b", answer(100))
    assert cache.get("a") == answer(100)  # "a" is now the most recent
    # When a third is kept
    cache.put("c", answer(100))
    # Then the least recently used one went, and the bytes stay within the bound
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (answer(100), None, answer(100))
    assert (cache.hits, cache.misses) == (3, 1)
    assert cache.size_bytes <= cache.max_bytes


def test_a_burst_of_other_answers_leaves_the_models_answers_kept() -> None:
    # Given a cache holding a model's answer
    cache = AnswerCache(max_bytes=100_000)
    cache.put(("model", 1, "m", 3), answer(100))
    # When far more search answers than fit are kept
    for n in range(1000):
        cache.put(("catalogue", 1, 7, ("search", str(n).encode())), answer(100))
    # Then the model's answer is still there, and the bytes stay within the bound
    assert cache.get(("model", 1, "m", 3)) == answer(100)
    assert cache.get(("catalogue", 1, 7, ("search", b"999"))) == answer(100)
    assert cache.size_bytes <= cache.max_bytes


def test_an_answer_bigger_than_the_cache_is_not_kept() -> None:
    cache = AnswerCache(max_bytes=1000, models_share=0)
    cache.put("small", answer(10))
    cache.put("big", answer(2000))
    assert cache.get("big") is None and cache.get("small") == answer(10)


def test_size_zero_keeps_nothing() -> None:
    cache = AnswerCache(max_bytes=0)
    cache.put("a", answer(1))
    assert cache.get("a") is None and len(cache) == 0


def test_a_seen_position_never_moves_back_and_goes_stale(monkeypatch: MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("queries.positions.time.monotonic", lambda: clock[0])
    positions = Positions()
    # Given the catalogue seen at position 9, then (by a slower reader) at 7
    positions.reached("catalogue", 1, 9)
    positions.reached("catalogue", 1, 7)
    # Then it stands at 9; a rebuilt generation replaces it whatever its position
    seen = positions.seen("catalogue")
    assert seen is not None and (seen.generation, seen.position) == (1, 9)
    positions.reached("catalogue", 2, 8)
    seen = positions.seen("catalogue")
    assert seen is not None and (seen.generation, seen.position) == (2, 8)
    # And once FRESH_SECONDS have passed, it is not taken as current any more
    clock[0] += FRESH_SECONDS + 0.001
    assert positions.seen("catalogue") is None


def test_the_bytes_held_stay_near_the_bound_whatever_the_encoder_kept() -> None:
    # Given a cache of 1 MiB, and answers as the readers encode them (orjson's result
    # can hold its whole working buffer, many times the answer's size)
    cache = AnswerCache(max_bytes=2**20)
    body = {"name": "m" * 40, "description": "d" * 400, "tags": ["t"] * 20, "version": 3}
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        # When far more answers are kept than fit
        for n in range(20_000):
            cache.put(("model", 1, n, 3), Answer(json_bytes({**body, "id": n}), position=n))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # Then the memory they take stays within twice the bound (nodes and keys included)
    assert cache.size_bytes <= cache.max_bytes
    assert held < 2 * cache.max_bytes, held
