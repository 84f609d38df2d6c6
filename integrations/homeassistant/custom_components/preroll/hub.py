"""One preroll server: its cameras and newest clips, kept current from its event stream."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.dispatcher import async_dispatcher_send

from .api import PrerollClient
from .const import signal_update

_LOGGER = logging.getLogger(__name__)

FINAL = ("done", "failed")


class PrerollHub:
    """What the entities show and the services wait on."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry, client: PrerollClient) -> None:
        self.hass = hass
        self.entry = entry
        self.client = client
        self.cameras: dict[str, dict[str, Any]] = {}
        self.last_clip: dict[str, dict[str, Any]] = {}
        self.events_connected = False
        self._waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}

    async def async_start(self) -> None:
        """Reads the cameras and clips, then follows the events in the background."""
        for camera in await self.client.cameras():
            self.cameras[camera["name"]] = camera
        for clip in await self.client.clips():
            self._note_clip(clip)
        self.entry.async_create_background_task(
            self.hass,
            self.client.follow(self._on_event, self._on_connected),
            f"preroll events from {self.client.url}",
        )

    def _on_connected(self, connected: bool) -> None:
        self.events_connected = connected
        async_dispatcher_send(self.hass, signal_update(self.entry.entry_id))

    def _note_clip(self, clip: dict[str, Any]) -> None:
        camera = clip.get("camera")
        if camera and clip.get("state") == "done":
            newest = self.last_clip.get(camera)
            if newest is None or (clip.get("trigger_time") or "") >= (newest.get("trigger_time") or ""):
                self.last_clip[camera] = clip

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("kind", "")
        camera = event.get("camera")
        if kind.startswith("clip.") and "clip" in event:
            clip = event["clip"]
            self._note_clip(clip)
            if clip.get("state") in FINAL:
                for waiter in self._waiters.pop(clip.get("id"), []):
                    if not waiter.done():
                        waiter.set_result(clip)
        elif kind.startswith("camera.") and camera:
            view = self.cameras.setdefault(camera, {"name": camera})
            if kind == "camera.connected":
                view["connected"] = True
                view["last_error"] = None
            elif kind == "camera.disconnected":
                view["connected"] = False
                view["last_error"] = event.get("reason")
            if event.get("tracks"):
                view["tracks"] = event["tracks"]
        else:
            return
        async_dispatcher_send(self.hass, signal_update(self.entry.entry_id))

    async def wait_final(self, clip_id: str, timeout: float) -> dict[str, Any]:
        """The clip once it is done or failed: from its event, or from the API when the
        event stream is down."""
        waiter: asyncio.Future[dict[str, Any]] = self.hass.loop.create_future()
        self._waiters.setdefault(clip_id, []).append(waiter)
        deadline = self.hass.loop.time() + timeout
        try:
            while True:
                # Asked as well as awaited: the clip may have ended before the waiter was in.
                clip = await self.client.clip(clip_id)
                if clip.get("state") in FINAL:
                    return clip
                left = deadline - self.hass.loop.time()
                if left <= 0:
                    return clip
                try:
                    return await asyncio.wait_for(asyncio.shield(waiter), min(left, 5.0))
                except asyncio.TimeoutError:
                    continue
        finally:
            waiters = self._waiters.get(clip_id, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiters.pop(clip_id, None)
