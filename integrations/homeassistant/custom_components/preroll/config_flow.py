"""Setting up a preroll server: its URL and API token, checked against the server."""

from __future__ import annotations

from typing import Any

import voluptuous as vol

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.const import CONF_URL
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .api import AuthError, PrerollClient, PrerollError
from .const import CONF_TOKEN, DOMAIN

SCHEMA = vol.Schema(
    {
        vol.Required(CONF_URL, default="http://127.0.0.1:8780"): str,
        vol.Required(CONF_TOKEN): str,
    }
)


class PrerollConfigFlow(ConfigFlow, domain=DOMAIN):
    VERSION = 1

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            url = user_input[CONF_URL].rstrip("/")
            client = PrerollClient(async_get_clientsession(self.hass), url, user_input[CONF_TOKEN])
            try:
                cameras = await client.cameras()
            except AuthError:
                errors["base"] = "invalid_auth"
            except PrerollError:
                errors["base"] = "cannot_connect"
            else:
                await self.async_set_unique_id(url)
                self._abort_if_unique_id_configured()
                return self.async_create_entry(
                    title=f"preroll ({len(cameras)} cameras)",
                    data={CONF_URL: url, CONF_TOKEN: user_input[CONF_TOKEN]},
                )
        return self.async_show_form(step_id="user", data_schema=SCHEMA, errors=errors)
