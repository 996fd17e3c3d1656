"""JSON as the read side writes and reads it: orjson (faster than the json module;
rebuilds write a lot of it, and the projections read back every row they change, so
decoding shows under load: docs/benchmarks.md), and the json module for what orjson
refuses: integers beyond 64 bits, which a model's configuration may hold."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson


def json_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def json_kept(value: Any) -> bytes:
    """JSON bytes to hold for long: orjson's result keeps its whole working buffer,
    many times a small answer's size (docs/benchmarks.md); a copy is only as large as
    its content."""
    return memoryview(json_bytes(value)).tobytes()


def json_text(value: Any) -> str:
    return json_bytes(value).decode()


# orjson reads an integer beyond 64 bits as a float, silently: any run of digits that
# long goes to the json module (so does a long fraction; slower, never wrong).
_LONG_DIGITS = re.compile(r"\d{19}")
_LONG_DIGIT_BYTES = re.compile(rb"\d{19}")


def json_value(text: str | bytes | memoryview) -> Any:
    if isinstance(text, str):
        return json.loads(text) if _LONG_DIGITS.search(text) else orjson.loads(text)
    if _LONG_DIGIT_BYTES.search(text):
        return json.loads(bytes(text))
    return orjson.loads(text)
