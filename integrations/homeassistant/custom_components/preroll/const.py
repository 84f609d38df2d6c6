"""Constants of the preroll integration."""

DOMAIN = "preroll"
PLATFORMS = ["binary_sensor", "sensor"]

CONF_TOKEN = "token"

# Fields of the services (those of camera.record, with the camera named as preroll names it).
ATTR_CAMERA = "camera"
ATTR_FILENAME = "filename"
ATTR_DURATION = "duration"
ATTR_LOOKBACK = "lookback"
ATTR_WAIT = "wait"
ATTR_CLIP_ID = "clip_id"
ATTR_SECONDS = "seconds"
ATTR_ENTRY = "config_entry_id"


def signal_update(entry_id: str) -> str:
    """The dispatcher signal sent when a server's cameras or clips change."""
    return f"{DOMAIN}_update_{entry_id}"
