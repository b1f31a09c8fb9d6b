"""The fast lane: ``POST /association``, the route feeds call once per association, answered
straight from the connection, beside aiohttp, which serves every other request (and every
request of this route the lane gives back). ``FastLaneSite`` serves an application so.
"""

from ingest_api.fast_lane.site import FastLaneSite

__all__ = ["FastLaneSite"]
