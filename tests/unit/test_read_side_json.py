"""JSON as the read side reads it back: fast, and exact for integers beyond 64 bits."""

from __future__ import annotations

import tracemalloc

from read_model.encoding import json_bytes, json_kept, json_value


def test_what_is_written_is_read_back_the_same_including_huge_integers() -> None:
    # Given values orjson handles and values only the json module keeps exact
    values = [
        {"accuracy": 0.93, "tags": ["a", "b"], "n": 7, "nested": {"x": None}},
        {"big": 2**70 + 1, "negative": -(2**70 + 3), "edge": 2**63},
        {"fraction": 0.12345678901234567891},
    ]
    for value in values:
        written = json_bytes(value)
        # When read back as text, as bytes or as a driver's buffer
        for form in (written.decode(), written, memoryview(written)):
            # Then it is the same value
            assert json_value(form) == value


def test_an_answer_kept_in_memory_takes_about_the_size_of_its_content() -> None:
    # Given 100 answers of about 800 bytes, kept (as a process holds model answers)
    tracemalloc.start()
    try:
        kept = [json_kept({"description": "x" * 800, "n": i}) for i in range(100)]
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then they take about 100 * 800 bytes, not orjson's 8 KB working buffer each
    assert len(kept) == 100 and held < 100 * 2_000
