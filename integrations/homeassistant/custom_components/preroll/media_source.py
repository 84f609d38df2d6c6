"""The clips of every preroll server in Home Assistant's Media panel: server → camera →
clips (newest first), each played from `/api/preroll/...` (see `ClipFileView`), which Home
Assistant signs for the user who asked."""

from __future__ import annotations

from homeassistant.components.media_player import MediaClass, MediaType
from homeassistant.components.media_source import (
    BrowseMediaSource,
    MediaSource,
    MediaSourceItem,
    PlayMedia,
    Unresolvable,
)
from homeassistant.core import HomeAssistant

from .api import PrerollError
from .const import DOMAIN


async def async_get_media_source(hass: HomeAssistant) -> MediaSource:
    return PrerollMediaSource(hass)


class PrerollMediaSource(MediaSource):
    name = "preroll"

    def __init__(self, hass: HomeAssistant) -> None:
        super().__init__(DOMAIN)
        self.hass = hass

    def _entries(self):
        return [e for e in self.hass.config_entries.async_loaded_entries(DOMAIN) if hasattr(e, "runtime_data")]

    async def async_resolve_media(self, item: MediaSourceItem) -> PlayMedia:
        entry_id, _, clip_id = (item.identifier or "").partition("/")
        if not clip_id or not any(e.entry_id == entry_id for e in self._entries()):
            raise Unresolvable(f"no preroll clip {item.identifier!r}")
        return PlayMedia(f"/api/preroll/{entry_id}/clips/{clip_id}/file", "video/mp4")

    async def async_browse_media(self, item: MediaSourceItem) -> BrowseMediaSource:
        parts = [p for p in (item.identifier or "").split("/") if p]
        entries = self._entries()
        if not parts:
            return self._folder("", "preroll", [
                self._folder(f"{e.entry_id}/{camera}", camera, None)
                for e in entries
                for camera in sorted(e.runtime_data.cameras)
            ])
        entry = next((e for e in entries if e.entry_id == parts[0]), None)
        if entry is None or len(parts) != 2:
            raise Unresolvable(f"nothing at {item.identifier!r}")
        camera = parts[1]
        try:
            clips = await entry.runtime_data.client.clips()
        except PrerollError as err:
            raise Unresolvable(str(err)) from err
        done = [c for c in clips if c.get("camera") == camera and c.get("state") == "done"]
        done.sort(key=lambda c: c.get("trigger_time") or "", reverse=True)
        children = [
            BrowseMediaSource(
                domain=DOMAIN,
                identifier=f"{entry.entry_id}/{c['id']}",
                media_class=MediaClass.VIDEO,
                media_content_type=MediaType.VIDEO,
                title=f"{c.get('trigger_time') or c['id']} ({c.get('duration', 0):.0f} s)",
                can_play=True,
                can_expand=False,
            )
            for c in done
        ]
        return self._folder(item.identifier or "", camera, children)

    def _folder(self, identifier: str, title: str, children) -> BrowseMediaSource:
        return BrowseMediaSource(
            domain=DOMAIN,
            identifier=identifier,
            media_class=MediaClass.DIRECTORY,
            media_content_type=MediaType.VIDEO,
            title=title,
            can_play=False,
            can_expand=True,
            children=children,
            children_media_class=MediaClass.VIDEO if children and identifier.count("/") else MediaClass.DIRECTORY,
        )
