"""HTTP views of the front: writes, reads, admin and operations (``ingest_api.routes`` maps
them to paths)."""
