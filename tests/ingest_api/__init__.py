"""Tests of the ingest front, through real HTTP."""
