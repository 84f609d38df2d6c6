"""A client for preroll's HTTP API and its event stream."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

_LOGGER = logging.getLogger(__name__)

FIRST_RETRY = 1.0
LONGEST_RETRY = 30.0


class PrerollError(Exception):
    """The server answered with an error (its message), or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthError(PrerollError):
    """The server refused the token."""


class PrerollClient:
    """preroll's API at `url`, with `token`."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        try:
            async with self.session.request(
                method,
                f"{self.url}{path}",
                headers=self._headers,
                json=body,
                timeout=aiohttp.ClientTimeout(total=30),
            ) as resp:
                text = await resp.text()
                if resp.status == 401:
                    raise AuthError("the server refused the token", 401)
                if resp.status >= 400:
                    try:
                        message = json.loads(text)["error"]
                    except (ValueError, KeyError, TypeError):
                        message = text or resp.reason
                    raise PrerollError(message, resp.status)
                return json.loads(text) if text else None
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            raise PrerollError(f"cannot reach {self.url}: {err}") from err

    async def cameras(self) -> list[dict[str, Any]]:
        return await self._request("GET", "/api/cameras")

    async def clips(self) -> list[dict[str, Any]]:
        return await self._request("GET", "/api/clips")

    async def clip(self, clip_id: str) -> dict[str, Any]:
        return await self._request("GET", f"/api/clips/{clip_id}")

    async def record(self, camera: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._request("POST", f"/api/cameras/{camera}/clips", body)

    async def stop(self, clip_id: str) -> dict[str, Any]:
        return await self._request("POST", f"/api/clips/{clip_id}/stop")

    async def extend(self, clip_id: str, seconds: float) -> dict[str, Any]:
        return await self._request("POST", f"/api/clips/{clip_id}/extend", {"seconds": seconds})

    async def open_file(self, clip_id: str, range_header: str | None) -> aiohttp.ClientResponse:
        """The clip's file as the server answers it (the caller reads and releases it)."""
        headers = dict(self._headers)
        if range_header:
            headers["Range"] = range_header
        return await self.session.get(
            f"{self.url}/api/clips/{clip_id}/file",
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=None, sock_read=60),
        )

    async def events(self, after: int | None) -> AsyncIterator[dict[str, Any]]:
        """Events from `GET /api/events` after id `after`, until the stream ends."""
        headers = dict(self._headers)
        headers["Accept"] = "text/event-stream"
        params = {"after": str(after)} if after is not None else {}
        async with self.session.get(
            f"{self.url}/api/events",
            headers=headers,
            params=params,
            # Heartbeats come every 15 s: a minute of silence is a dead stream.
            timeout=aiohttp.ClientTimeout(total=None, sock_read=60),
        ) as resp:
            if resp.status == 401:
                raise AuthError("the server refused the token", 401)
            if resp.status != 200:
                raise PrerollError(f"GET /api/events answered {resp.status}", resp.status)
            data: list[str] = []
            async for raw in resp.content:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif line == "" and data:
                    try:
                        yield json.loads("\n".join(data))
                    except ValueError:
                        _LOGGER.warning("an event that is not JSON: %s", data)
                    data = []

    async def follow(
        self,
        handle: Callable[[dict[str, Any]], None],
        connected: Callable[[bool], None] | None = None,
    ) -> None:
        """Reads the event stream for ever, reconnecting with backoff and resuming after
        the last event seen (so none is missed while it reconnects)."""
        last: int | None = 0
        delay = FIRST_RETRY
        while True:
            try:
                async for event in self.events(last):
                    if connected is not None and delay:
                        delay = 0.0
                        connected(True)
                    last = event.get("id", last)
                    handle(event)
                reason = "the stream ended"
            except AuthError:
                _LOGGER.error("preroll at %s refused the token; events stopped", self.url)
                return
            except (aiohttp.ClientError, asyncio.TimeoutError, PrerollError) as err:
                reason = str(err)
            if connected is not None:
                connected(False)
            delay = min(max(delay * 2, FIRST_RETRY), LONGEST_RETRY)
            _LOGGER.debug("preroll events from %s: %s; again in %.0f s", self.url, reason, delay)
            await asyncio.sleep(delay)
