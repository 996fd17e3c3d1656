"""GraphiQL at ``GET /graphql``: a browser that opens the GraphQL endpoint gets an IDE to
write, run and explore queries, served (like /docs) from this package, never a CDN.

Its scripts and styles are the npm packages' own, in ``api/static/graphiql`` (versions and
hashes in api/static/README.md), reached through api.docs' ``/docs/static`` mount. The page
opens without a key, as /docs does: it holds no data; the user gives the key in GraphiQL's
Headers tab, which every query and subscription then carries. It must be installed
before api.graphql.router, whose route at the same path would otherwise answer the GET.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from api.errors import METHOD_NOT_ALLOWED, problem
from api.headers import docs_content_policy

# graphiql 4.1.2 with react and react-dom 18.3.1 (UMD builds), from npm: 4 is the last
# GraphiQL with a single-file browser bundle; 5 is ES modules with Monaco's workers.
# Its stylesheet carries its fonts as data: URLs; its dialogs add a <style> whose rules
# depend on the scrollbar's width, allowed by a nonce made for each page (graphiql-init.js
# hands it to the bundle). Queries go to this origin ('self', which also covers ws: and
# wss: to it in browsers of CSP level 3) and nothing else.


def graphiql_policy(style_nonce: str) -> str:
    return docs_content_policy(styles=f"'nonce-{style_nonce}'", fonts="'self' data:")


PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>ModelLedger GraphQL</title>
  <link rel="icon" type="image/png" href="docs/static/swagger-ui/favicon-32x32.png">
  <link rel="stylesheet" href="docs/static/graphiql/graphiql.min.css">
  <link rel="stylesheet" href="docs/static/graphiql-page.css">
</head>
<body>
  <div id="graphiql">
    <noscript>GraphiQL needs JavaScript. Without it, POST a query to this address with
      the header <code>Authorization: Bearer &lt;your key&gt;</code>.</noscript>
  </div>
  <script src="docs/static/graphiql/react.production.min.js"></script>
  <script src="docs/static/graphiql/react-dom.production.min.js"></script>
  <script src="docs/static/graphiql/graphiql.min.js"></script>
  <script src="docs/static/graphiql-init.js" data-style-nonce="{nonce}"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@router.get("/graphql", response_class=HTMLResponse)
async def graphiql(request: Request) -> Response:
    if "text/html" not in request.headers.get("accept", ""):
        # Not a browser: queries are POSTed (GET queries are off), so say so, not HTML.
        detail = "send GraphQL queries with POST (GET /graphql is GraphiQL, for browsers)"
        return problem(METHOD_NOT_ALLOWED, detail, headers={"Allow": "POST"})
    # Its own policy: api.headers.SecurityHeaders gives /graphql's JSON answers the API's.
    nonce = secrets.token_urlsafe(16)
    policy = graphiql_policy(nonce)
    return HTMLResponse(PAGE.format(nonce=nonce), headers={"Content-Security-Policy": policy})


def install(app: FastAPI) -> None:
    app.include_router(router)
