"""ETags and conditional GETs for the data endpoints.

The ETag is derived from the representation (its length and Adler-32 checksum), so it changes
when the data (or the format) does: a dashboard polling with `If-None-Match` gets a body-less 304
until the pipeline changes something it shows. It is a weak validator (`W/"..."`): a checksum,
not a cryptographic hash, because hashing every body with SHA would cost as much as encoding it.
Responses vary by key and format, and must be revalidated before reuse.
"""

from __future__ import annotations

import zlib

from flask import Flask, Response, request

CACHED_PREFIXES = ("/api/v1/", "/quality")


def init_caching(app: Flask) -> None:
    @app.after_request
    def _conditional(response: Response) -> Response:
        if (
            request.method in ("GET", "HEAD")
            and response.status_code == 200
            and request.path.startswith(CACHED_PREFIXES)
            and not response.direct_passthrough
        ):
            body = response.get_data()
            etag = f"{len(body):x}-{zlib.adler32(body):08x}"
            response.headers["ETag"] = f'W/"{etag}"'
            response.headers["Cache-Control"] = "private, no-cache"
            response.headers["Vary"] = "Authorization, Accept"
            if request.if_none_match.contains_weak(etag):
                response.status_code = 304
                response.set_data(b"")
                for name in ("Content-Type", "Content-Length"):
                    response.headers.pop(name, None)
        return response
