"""JSON as the read side reads it back: fast, and exact for integers beyond 64 bits."""

from __future__ import annotations

from read_model.encoding import json_bytes, json_value


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
