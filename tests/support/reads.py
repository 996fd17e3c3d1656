"""Reading your own writes over HTTP, as a client does: wait for the command's position."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
from fastapi.testclient import TestClient

MODELS = "/api/v1/models"


def model_now(client: TestClient | httpx.Client, model_id: str, **params: Any) -> httpx.Response:
    """GET the model once the catalogue includes its latest event (min_position)."""
    history = client.get(f"{MODELS}/{model_id}/history")
    if history.status_code == 200:
        params.setdefault("min_position", history.json()["items"][-1]["position"])
    return client.get(f"{MODELS}/{model_id}", params=params)
