"""A template venue (fictional): copy this folder to add one, see README.md. Its leading
underscore keeps it out of ``producers.registry``; a copy under the venue's name is discovered."""

from monitor.core.venues import VenueDefaults
from producers._template.endpoints import (
    DEFAULT_REST_URL,
    DEFAULT_SYMBOLS,
    DEFAULT_WS_URL,
    EXCHANGE,
)
from producers._template.parser import TemplateAdapter
from producers.base import Venue

# The venue as the registry discovers it: its defaults (opt-in: enabled=False) and its adapter.
VENUE = Venue(
    VenueDefaults(EXCHANGE, DEFAULT_WS_URL, DEFAULT_REST_URL, DEFAULT_SYMBOLS, enabled=False),
    TemplateAdapter,
)

__all__ = ["VENUE", "TemplateAdapter"]
