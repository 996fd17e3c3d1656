"""JSON as the read side writes it: orjson (several times faster than the json
module; rebuilds write a lot of it), and the json module for what orjson refuses:
integers beyond 64 bits, which a model's configuration may hold."""

from __future__ import annotations

import json
from typing import Any

import orjson


def json_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def json_text(value: Any) -> str:
    return json_bytes(value).decode()
