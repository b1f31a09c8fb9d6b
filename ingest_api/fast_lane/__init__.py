"""The fast lane: ``POST /association``, the route feeds call once per association, answered
straight from the connection, beside aiohttp, which serves every other request (and those of
this route with a body or headers out of the ordinary). ``FastLaneSite`` serves an
application so.
"""

from ingest_api.fast_lane.site import FastLaneSite

__all__ = ["FastLaneSite"]
