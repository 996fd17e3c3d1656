"""Webhook deliveries over HTTP (httpx2), never to an address they must not reach.

The check is made on the address actually connected to, in the connection pool's
network backend: the host is resolved once, every address it resolves to is checked,
and the connection goes to a checked address. A name that resolves to a public address
when checked and a private one when connected (DNS rebinding) cannot pass, since there
is no second lookup. TLS still verifies the certificate against the URL's host name.
No proxy from the environment is used (a proxy would make the connection instead).
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import socket
import time
from collections.abc import Iterable
from typing import Any

import anyio
import httpcore2
import httpx2

from commands.ports import EndpointAnswer

USER_AGENT = "ModelLedger-Webhooks/1"
EXCERPT_BYTES = 1024


class TargetRefused(httpcore2.ConnectError):
    """The target resolves to an address deliveries must not reach."""


def refused_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, private, link-local, site-local, multicast, reserved or unspecified
    (also an IPv4 address carried inside IPv6: mapped, 6to4, Teredo)."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
        if address.is_site_local or any(v4 and refused_address(v4) for v4 in carried):
            return True
        if address.ipv4_mapped is not None:
            return False  # (checked as the IPv4 address it is)
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


class GuardedBackend(httpcore2.AsyncNetworkBackend):
    """Resolves, checks, then connects to the checked address."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        addresses = await self._resolved(host, port)
        if not self.allow_private:
            for address in addresses:
                if refused_address(address):
                    raise TargetRefused(
                        f"{host} resolves to {address}, an address webhooks may not reach "
                        "(MODELLEDGER_WEBHOOKS_ALLOW_PRIVATE_TARGETS allows it)"
                    )
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore2.ConnectError as error:  # the next address, as a browser would
                failure = error
        raise failure or httpcore2.ConnectError(f"{host} resolves to no address")

    async def _resolved(
        self, host: str, port: int
    ) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        try:
            found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            raise httpcore2.ConnectError(f"{host} cannot be resolved: {error}") from error
        addresses = []
        for *_, sockaddr in found:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            if address not in addresses:
                addresses.append(address)
        return addresses

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx2.AsyncHTTPTransport):
    def __init__(self, allow_private: bool, max_connections: int) -> None:
        super().__init__(trust_env=False)
        # httpx2's transport takes no network backend: its pool is made again with one.
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            network_backend=GuardedBackend(allow_private),
        )


class HttpEndpoints:
    """The one ``Endpoints``: a connection pool per subscription, so that one slow
    endpoint cannot take the connections of others (and a pool stays small: httpcore
    looks through all of a pool's connections for each request)."""

    def __init__(
        self, timeout_seconds: float, allow_private: bool, connections_per_subscription: int = 8
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.allow_private = allow_private
        self.connections = connections_per_subscription
        self.clients: dict[str, httpx2.AsyncClient] = {}

    def _client(self, subscription: str) -> httpx2.AsyncClient:
        if subscription not in self.clients:
            self.clients[subscription] = httpx2.AsyncClient(
                transport=GuardedTransport(self.allow_private, self.connections),
                timeout=self.timeout_seconds,
                follow_redirects=False,
                headers={"user-agent": USER_AGENT, "content-type": "application/json"},
            )
        return self.clients[subscription]

    async def post(
        self, subscription: str, url: str, headers: dict[str, str], body: bytes
    ) -> EndpointAnswer:
        started = time.perf_counter()

        def took() -> float:
            return round((time.perf_counter() - started) * 1000, 3)

        client = self._client(subscription)
        try:  # (httpx's timeout is per read: a trickling answer would outlast it)
            async with (
                asyncio.timeout(self.timeout_seconds),
                client.stream("POST", url, content=body, headers=headers) as answer,
            ):
                excerpt = await _first_bytes(answer)
                return EndpointAnswer(
                    answer.status_code,
                    took(),
                    excerpt,
                    None if answer.is_success else f"answered {answer.status_code}",
                    retry_after(answer.headers.get("retry-after")),
                )
        except (httpx2.TimeoutException, TimeoutError):
            return EndpointAnswer(None, took(), error=f"no answer within {self.timeout_seconds} s")
        except (httpx2.TransportError, httpx2.InvalidURL, OSError) as error:
            return EndpointAnswer(None, took(), error=str(error) or type(error).__name__)

    async def forget(self, subscription: str) -> None:
        if (client := self.clients.pop(subscription, None)) is not None:
            await client.aclose()

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()
        self.clients.clear()


async def _first_bytes(answer: httpx2.Response) -> str:
    """The first EXCERPT_BYTES of the answer (the rest is not read: an endpoint that
    answers with gigabytes costs no memory)."""
    kept = b""
    async for chunk in answer.aiter_raw():
        kept += chunk
        if len(kept) >= EXCERPT_BYTES:
            break
    return kept[:EXCERPT_BYTES].decode("utf-8", "replace")


def retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, moment.timestamp() - time.time())
