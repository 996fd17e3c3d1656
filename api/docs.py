"""The interactive API docs, Swagger UI at ``/docs`` and ReDoc at ``/redoc``, with their
scripts, styles and icon served from this package (``api/static``): they work in a
browser that cannot reach a CDN, under a content policy that allows this origin only.

The pages hold no inline script (the policy would block it) and use relative URLs, so
they also work behind a proxy that serves the API under a path prefix.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from api.headers import docs_content_policy

STATIC = Path(__file__).parent / "static"
STATIC_PATH = "/docs/static"
# swagger-ui-dist 5.36.0 and redoc 2.5.4 from npm: api/static/README.md.
# ReDoc's script adds two <style> elements of fixed content (an empty one, which
# styled-components then fills through the CSSOM, which no policy governs, and its
# scrollbar's rules): their hashes. Its search runs in a worker made from a blob: URL,
# which only a script this origin served can mint.
REDOC_POLICY = docs_content_policy(
    styles="'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=' "
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",
    workers="'self' blob:",
)

SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>ModelLedger API</title>
  <link rel="icon" type="image/png" href="docs/static/swagger-ui/favicon-32x32.png">
  <link rel="stylesheet" href="docs/static/swagger-ui/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/static/swagger-ui/swagger-ui-bundle.js"></script>
  <script src="docs/static/swagger-init.js"></script>
</body>
</html>
"""

REDOC_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>ModelLedger API reference</title>
  <link rel="icon" type="image/png" href="docs/static/swagger-ui/favicon-32x32.png">
  <link rel="stylesheet" href="docs/static/redoc.css">
</head>
<body>
  <redoc spec-url="openapi.json"></redoc>
  <script src="docs/static/redoc/redoc.standalone.js"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
async def swagger_ui() -> HTMLResponse:
    return HTMLResponse(SWAGGER_PAGE)


@router.get("/redoc", response_class=HTMLResponse)
async def redoc() -> HTMLResponse:
    return HTMLResponse(REDOC_PAGE, headers={"Content-Security-Policy": REDOC_POLICY})


def install(app: FastAPI) -> None:
    """The app is made with ``docs_url=None, redoc_url=None``: these replace FastAPI's."""
    app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC), name="docs-static")
