"""Security headers on every response, error or not.

A pure ASGI middleware (Starlette's ``BaseHTTPMiddleware`` costs a task per
request). The interactive docs (api.docs) load their scripts, styles and icon from
this origin: their pages may use this origin and nothing else.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
# JSON answers never run scripts or load anything, nor belong in a frame.
API_CONTENT_POLICY = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
DOCS_PAGES = frozenset({"/docs", "/redoc"})


def docs_content_policy(*, styles: str = "", workers: str = "", fonts: str = "") -> str:
    """This origin only; a page may name the inline ``styles`` (hashes, a nonce), ``workers`` and
    ``fonts`` (sources) its own scripts and styles need."""
    extra = f"style-src 'self' {styles}; " if styles else ""
    extra += f"worker-src {workers}; " if workers else ""
    extra += f"font-src {fonts}; " if fonts else ""
    return (
        f"default-src 'self'; {extra}img-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


DOCS_CONTENT_POLICY = (b"content-security-policy", docs_content_policy().encode())
# The web UI (ui/): its scripts, styles and images from this origin only, nothing inline;
# its forms post to itself.
UI_PREFIX = "/ui"
UI_CONTENT_POLICY = (
    b"content-security-policy",
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    b"frame-ancestors 'none'",
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(SECURITY_HEADERS)
        path: str = scope["path"]
        if path in DOCS_PAGES:
            extra.append(DOCS_CONTENT_POLICY)
        elif path == UI_PREFIX or path.startswith(UI_PREFIX + "/"):
            # A form's post must say its origin (with no-referrer, browsers send "null")
            extra = [h for h in extra if h[0] != b"referrer-policy"]
            extra += [UI_CONTENT_POLICY, (b"referrer-policy", b"same-origin")]
        else:
            extra.append(API_CONTENT_POLICY)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers += [(name, value) for name, value in extra if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
