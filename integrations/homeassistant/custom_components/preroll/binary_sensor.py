"""Per camera: connected or not, as the server's events say."""

from __future__ import annotations

from homeassistant.components.binary_sensor import BinarySensorDeviceClass, BinarySensorEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import EntityCategory
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .entity import PrerollEntity


async def async_setup_entry(hass: HomeAssistant, entry, async_add_entities: AddEntitiesCallback) -> None:
    hub = entry.runtime_data
    async_add_entities(CameraConnected(hub, name) for name in hub.cameras)


class CameraConnected(PrerollEntity, BinarySensorEntity):
    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_translation_key = "connected"

    def __init__(self, hub, camera: str) -> None:
        super().__init__(hub, camera, "connected")

    @property
    def is_on(self) -> bool:
        return bool(self.hub.cameras.get(self.camera, {}).get("connected"))

    @property
    def extra_state_attributes(self) -> dict:
        view = self.hub.cameras.get(self.camera, {})
        return {"last_error": view.get("last_error"), "tracks": view.get("tracks")}
