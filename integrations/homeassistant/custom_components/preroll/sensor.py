"""Per camera: the newest clip done, as a timestamp (its trigger time) with the clip's
fields as attributes."""

from __future__ import annotations

from datetime import datetime

from homeassistant.components.sensor import SensorDeviceClass, SensorEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.util import dt as dt_util

from .entity import PrerollEntity


async def async_setup_entry(hass: HomeAssistant, entry, async_add_entities: AddEntitiesCallback) -> None:
    hub = entry.runtime_data
    async_add_entities(LastClip(hub, name) for name in hub.cameras)


class LastClip(PrerollEntity, SensorEntity):
    _attr_device_class = SensorDeviceClass.TIMESTAMP
    _attr_translation_key = "last_clip"

    def __init__(self, hub, camera: str) -> None:
        super().__init__(hub, camera, "last_clip")

    @property
    def native_value(self) -> datetime | None:
        clip = self.hub.last_clip.get(self.camera)
        if not clip or not clip.get("trigger_time"):
            return None
        return dt_util.parse_datetime(clip["trigger_time"])

    @property
    def extra_state_attributes(self) -> dict:
        clip = self.hub.last_clip.get(self.camera) or {}
        return {
            key: clip.get(key)
            for key in ("id", "path", "duration", "preroll", "bytes", "request_id")
        }
