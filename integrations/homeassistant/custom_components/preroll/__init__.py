"""preroll: clips with pre-roll from always-on camera rings, in Home Assistant.

Each config entry is one preroll server (URL and API token). It gives:
- services `preroll.record` (camera.record's fields; returns the clip, and can wait until it
  is done), `preroll.stop_clip` and `preroll.extend_clip`;
- per camera a connectivity binary sensor and a last-clip sensor, fed by the server's event
  stream (`GET /api/events`), not by polling;
- a media source listing the clips, played through Home Assistant's own authentication.
"""

from __future__ import annotations

import logging
from typing import Any

import voluptuous as vol
from aiohttp import web

from homeassistant.components.http import HomeAssistantView
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_URL
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady, HomeAssistantError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .api import AuthError, PrerollClient, PrerollError
from .const import (
    ATTR_CAMERA,
    ATTR_CLIP_ID,
    ATTR_DURATION,
    ATTR_ENTRY,
    ATTR_FILENAME,
    ATTR_LOOKBACK,
    ATTR_SECONDS,
    ATTR_WAIT,
    CONF_TOKEN,
    DOMAIN,
    PLATFORMS,
)
from .hub import PrerollHub

_LOGGER = logging.getLogger(__name__)

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

RECORD_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CAMERA): cv.string,
        vol.Optional(ATTR_FILENAME): cv.string,
        vol.Optional(ATTR_DURATION): vol.All(vol.Coerce(float), vol.Range(min=0, min_included=False)),
        vol.Optional(ATTR_LOOKBACK): vol.All(vol.Coerce(float), vol.Range(min=0)),
        vol.Optional(ATTR_WAIT, default=False): cv.boolean,
        vol.Optional(ATTR_ENTRY): cv.string,
    }
)
CLIP_SCHEMA = vol.Schema({vol.Required(ATTR_CLIP_ID): cv.string, vol.Optional(ATTR_ENTRY): cv.string})
EXTEND_SCHEMA = CLIP_SCHEMA.extend(
    {vol.Required(ATTR_SECONDS): vol.All(vol.Coerce(float), vol.Range(min=0, min_included=False))}
)

type PrerollConfigEntry = ConfigEntry[PrerollHub]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Registers the services and the clip file view, once for every server."""

    async def record(call: ServiceCall) -> ServiceResponse:
        hub = _hub_for(hass, call.data.get(ATTR_ENTRY), call.data[ATTR_CAMERA])
        body: dict[str, Any] = {}
        for field in (ATTR_FILENAME, ATTR_DURATION, ATTR_LOOKBACK):
            if field in call.data:
                body[field] = call.data[field]
        body["request_id"] = call.context.id
        try:
            clip = await hub.client.record(call.data[ATTR_CAMERA], body)
            if call.data[ATTR_WAIT]:
                asked = float(clip.get("requested_duration") or 0) + float(clip.get("requested_lookback") or 0)
                clip = await hub.wait_final(clip["id"], asked + 120.0)
        except PrerollError as err:
            raise HomeAssistantError(f"preroll: {err}") from err
        return _response(clip)

    async def stop_clip(call: ServiceCall) -> ServiceResponse:
        hub = _hub_for(hass, call.data.get(ATTR_ENTRY), None)
        try:
            return _response(await hub.client.stop(call.data[ATTR_CLIP_ID]))
        except PrerollError as err:
            raise HomeAssistantError(f"preroll: {err}") from err

    async def extend_clip(call: ServiceCall) -> ServiceResponse:
        hub = _hub_for(hass, call.data.get(ATTR_ENTRY), None)
        try:
            return _response(await hub.client.extend(call.data[ATTR_CLIP_ID], call.data[ATTR_SECONDS]))
        except PrerollError as err:
            raise HomeAssistantError(f"preroll: {err}") from err

    hass.services.async_register(DOMAIN, "record", record, RECORD_SCHEMA, SupportsResponse.OPTIONAL)
    hass.services.async_register(DOMAIN, "stop_clip", stop_clip, CLIP_SCHEMA, SupportsResponse.OPTIONAL)
    hass.services.async_register(DOMAIN, "extend_clip", extend_clip, EXTEND_SCHEMA, SupportsResponse.OPTIONAL)
    hass.http.register_view(ClipFileView(hass))
    return True


def _response(clip: dict[str, Any]) -> dict[str, Any]:
    """The clip as a service answers it: everything the API says, id, path and state first."""
    return {"id": clip.get("id"), "path": clip.get("path"), "state": clip.get("state"), **clip}


def _hub_for(hass: HomeAssistant, entry_id: str | None, camera: str | None) -> PrerollHub:
    """The server named, or the one with this camera, or the only one."""
    entries = [e for e in hass.config_entries.async_loaded_entries(DOMAIN) if hasattr(e, "runtime_data")]
    if entry_id:
        entries = [e for e in entries if e.entry_id == entry_id]
    elif camera is not None:
        having = [e for e in entries if camera in e.runtime_data.cameras]
        entries = having or entries
    if not entries:
        raise HomeAssistantError("preroll: no such preroll server is set up")
    return entries[0].runtime_data


async def async_setup_entry(hass: HomeAssistant, entry: PrerollConfigEntry) -> bool:
    client = PrerollClient(async_get_clientsession(hass), entry.data[CONF_URL], entry.data[CONF_TOKEN])
    hub = PrerollHub(hass, entry, client)
    try:
        await hub.async_start()
    except AuthError as err:
        raise ConfigEntryAuthFailed(str(err)) from err
    except PrerollError as err:
        raise ConfigEntryNotReady(str(err)) from err
    entry.runtime_data = hub
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: PrerollConfigEntry) -> bool:
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


class ClipFileView(HomeAssistantView):
    """A clip's file, fetched from its server with the server's token, for a Home Assistant
    user (the media source hands out signed paths to it). Ranges pass through, so seeking
    works."""

    url = "/api/preroll/{entry_id}/clips/{clip_id}/file"
    name = "api:preroll:clip_file"
    requires_auth = True

    def __init__(self, hass: HomeAssistant) -> None:
        self.hass = hass

    async def get(self, request: web.Request, entry_id: str, clip_id: str) -> web.StreamResponse:
        entry = self.hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN or not hasattr(entry, "runtime_data"):
            raise web.HTTPNotFound
        upstream = await entry.runtime_data.client.open_file(clip_id, request.headers.get("Range"))
        try:
            if upstream.status not in (200, 206):
                raise web.HTTPNotFound if upstream.status in (404, 410) else web.HTTPBadGateway
            response = web.StreamResponse(status=upstream.status)
            for header in ("Content-Type", "Content-Length", "Content-Range", "Accept-Ranges"):
                if header in upstream.headers:
                    response.headers[header] = upstream.headers[header]
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(1 << 16):
                await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            upstream.release()
