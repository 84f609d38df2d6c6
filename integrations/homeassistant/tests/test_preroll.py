"""The integration against a real `preroll serve` (see conftest.py): config flow, services,
sensors fed by the event stream, and the media source."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from homeassistant import config_entries
from homeassistant.components import media_source
from homeassistant.const import CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component

from custom_components.preroll.const import CONF_TOKEN, DOMAIN

CONNECTED = "binary_sensor.demo_connected"
LAST_CLIP = "sensor.demo_last_clip"


async def _set_up(hass: HomeAssistant, server) -> config_entries.ConfigEntry:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: server.url, CONF_TOKEN: server.token}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    await hass.async_block_till_done()
    entry = result["result"]
    assert entry.state is config_entries.ConfigEntryState.LOADED
    return entry


async def _until(hass: HomeAssistant, check, seconds: float = 30.0):
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_config_flow_checks_the_url_and_token(hass: HomeAssistant, preroll_server) -> None:
    flow = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    assert flow["type"] is FlowResultType.FORM
    wrong = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_URL: preroll_server.url, CONF_TOKEN: "not-the-token-at-all"}
    )
    assert wrong["errors"] == {"base": "invalid_auth"}
    nowhere = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_URL: "http://127.0.0.1:9", CONF_TOKEN: preroll_server.token}
    )
    assert nowhere["errors"] == {"base": "cannot_connect"}
    good = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_URL: preroll_server.url + "/", CONF_TOKEN: preroll_server.token}
    )
    assert good["type"] is FlowResultType.CREATE_ENTRY
    assert good["data"] == {CONF_URL: preroll_server.url, CONF_TOKEN: preroll_server.token}
    await hass.async_block_till_done()
    # The same server twice is refused.
    again = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    again = await hass.config_entries.flow.async_configure(
        again["flow_id"], {CONF_URL: preroll_server.url, CONF_TOKEN: preroll_server.token}
    )
    assert again["type"] is FlowResultType.ABORT and again["reason"] == "already_configured"


async def test_record_answers_the_clip_and_the_sensors_follow_the_events(hass: HomeAssistant, preroll_server) -> None:
    await _set_up(hass, preroll_server)
    await _until(hass, lambda: hass.states.get(CONNECTED) is not None)
    assert hass.states.get(CONNECTED).state == "on"
    before = hass.states.get(LAST_CLIP).state

    clip = await hass.services.async_call(
        DOMAIN, "record", {"camera": "demo", "duration": 1, "lookback": 1, "wait": True},
        blocking=True, return_response=True,
    )
    assert clip["state"] == "done", clip
    assert Path(clip["path"]).is_file()
    assert clip["duration"] > 1.5
    # The sensor moves with the clip.done event (the entities never poll).
    await _until(hass, lambda: hass.states.get(LAST_CLIP).attributes.get("id") == clip["id"])
    state = hass.states.get(LAST_CLIP)
    assert state.state != before
    assert state.attributes["path"] == clip["path"]

    # Without wait: answered at once, recording.
    quick = await hass.services.async_call(
        DOMAIN, "record", {"camera": "demo"}, blocking=True, return_response=True
    )
    assert quick["state"] == "recording"
    assert quick["requested_duration"] == 2.0  # the camera's clip_duration
    # An unknown camera is an error that says so.
    with pytest.raises(Exception, match="no camera named"):
        await hass.services.async_call(
            DOMAIN, "record", {"camera": "nosuch"}, blocking=True, return_response=True
        )


async def test_stop_and_extend(hass: HomeAssistant, preroll_server) -> None:
    await _set_up(hass, preroll_server)
    clip = await hass.services.async_call(
        DOMAIN, "record", {"camera": "demo", "duration": 60, "lookback": 0}, blocking=True, return_response=True
    )
    extended = await hass.services.async_call(
        DOMAIN, "extend_clip", {"clip_id": clip["id"], "seconds": 5}, blocking=True, return_response=True
    )
    assert extended["requested_duration"] == 65.0
    stopped = await hass.services.async_call(
        DOMAIN, "stop_clip", {"clip_id": clip["id"]}, blocking=True, return_response=True
    )
    assert stopped["id"] == clip["id"]
    hub = hass.config_entries.async_entries(DOMAIN)[0].runtime_data
    final = await hub.wait_final(clip["id"], 30)
    assert final["state"] == "done"
    assert final["duration"] < 30
    # Stopping it again says why not.
    with pytest.raises(Exception, match="not recording"):
        await hass.services.async_call(
            DOMAIN, "stop_clip", {"clip_id": clip["id"]}, blocking=True, return_response=True
        )


async def test_media_source_lists_and_plays_the_clips(hass: HomeAssistant, hass_client, preroll_server) -> None:
    assert await async_setup_component(hass, "media_source", {})
    entry = await _set_up(hass, preroll_server)
    clip = await hass.services.async_call(
        DOMAIN, "record", {"camera": "demo", "duration": 1, "lookback": 1, "wait": True},
        blocking=True, return_response=True,
    )
    root = await media_source.async_browse_media(hass, f"media-source://{DOMAIN}")
    assert [c.title for c in root.children] == ["demo"]
    camera = await media_source.async_browse_media(hass, root.children[0].media_content_id)
    ids = [c.media_content_id for c in camera.children]
    wanted = f"media-source://{DOMAIN}/{entry.entry_id}/{clip['id']}"
    assert wanted in ids
    play = await media_source.async_resolve_media(hass, wanted, None)
    assert play.mime_type == "video/mp4"
    client = await hass_client()
    whole = await client.get(play.url)
    assert whole.status == 200
    body = await whole.read()
    assert body == Path(clip["path"]).read_bytes()
    part = await client.get(play.url, headers={"Range": "bytes=0-99"})
    assert part.status == 206
    assert await part.read() == body[:100]
    # Home Assistant's own authentication is required.
    unauthenticated = await hass_client_no_auth_get(hass, play.url)
    assert unauthenticated == 401


async def hass_client_no_auth_get(hass: HomeAssistant, url: str) -> int:
    from aiohttp.test_utils import TestClient, TestServer

    client = TestClient(TestServer(hass.http.app))
    await client.start_server()
    try:
        resp = await client.get(url)
        return resp.status
    finally:
        await client.close()
