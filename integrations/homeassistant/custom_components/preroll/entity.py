"""What preroll's entities share: a device per camera, updates pushed from the hub."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity

from .const import DOMAIN, signal_update
from .hub import PrerollHub


class PrerollEntity(Entity):
    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, hub: PrerollHub, camera: str, key: str) -> None:
        self.hub = hub
        self.camera = camera
        self._attr_unique_id = f"{hub.entry.entry_id}_{camera}_{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, f"{hub.entry.entry_id}_{camera}")},
            name=camera,
            manufacturer="preroll",
            model="Camera recorder",
        )

    async def async_added_to_hass(self) -> None:
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_update(self.hub.entry.entry_id), self.async_write_ha_state
            )
        )
