"""aiohttp web layer: the only place domain errors become HTTP status codes."""
