"""Projection positions over Redis pub/sub: workers announce each commit, API processes
wake their read-your-writes waits on it instead of polling the read database.

A lost message costs only latency: API processes still read the positions from
the database, only less often while the subscription is alive.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis
from redis.exceptions import RedisError

from adapters import redis_pause
from adapters.redis_pause import RedisPause

log = logging.getLogger("modelledger.positions")

CHANNEL = "modelledger:positions"

OnPosition = Callable[[str, int, int], None]


class PositionPublisher:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._pause = RedisPause("positions are not announced: API processes poll", log)

    def __call__(self, projection: str, generation: int, position: int) -> None:
        if self._pause.paused:
            return
        try:
            self.client.publish(CHANNEL, f"{projection} {generation} {position}")
        except RedisError as error:
            self._pause.failed(error)


class PositionSubscriber:
    """A daemon thread that hands every announced position to ``on_position``."""

    def __init__(self, client: redis.Redis, on_position: OnPosition) -> None:
        self.client = client
        self.on_position = on_position
        self.connected = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="positions", daemon=True)

    def start(self) -> PositionSubscriber:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except (RedisError, OSError) as error:
                log.warning("positions: subscription lost (%s); polling until it is back", error)
            self.connected.clear()
            self._stopping.wait(redis_pause.PAUSE_SECONDS)

    def _listen(self) -> None:
        with self.client.pubsub() as pubsub:  # type: ignore[no-untyped-call]
            pubsub.subscribe(CHANNEL)
            while not self._stopping.is_set():
                message = pubsub.get_message(timeout=0.5)
                if message is None:
                    continue
                if message["type"] == "subscribe":  # Redis confirmed: from now on, none missed
                    self.connected.set()
                elif message["type"] == "message":
                    self._deliver(message["data"])

    def _deliver(self, data: bytes) -> None:
        try:
            projection, generation, position = data.decode().split()
            self.on_position(projection, int(generation), int(position))
        except ValueError:
            log.warning("positions: ignored a malformed message %r", data[:100])
