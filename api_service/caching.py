"""ETags and conditional GETs for the data endpoints.

The ETag is the SHA-256 of the representation, so it changes when the data (or the format) does:
a dashboard polling with `If-None-Match` gets a body-less 304 until the pipeline changes something
it shows. A checksum such as Adler-32 would not do: two different bodies with the same checksum
are easy to make, and a client would then keep a stale answer as current. SHA-256 costs little
next to encoding the body (a page is at most a few hundred kB). The tag identifies the bytes
exactly, so it is a strong validator (`"..."`); `If-None-Match` compares weakly, as HTTP says, so
a `W/` tag sent back still matches. Responses vary by key and format, and must be revalidated
before reuse.
"""

from __future__ import annotations

import hashlib

from flask import Flask, Response, request

CACHED_PREFIXES = ("/api/v1/", "/quality")


def body_etag(body: bytes) -> str:
    """The entity tag of a body (without quotes): its SHA-256, in hex."""
    return hashlib.sha256(body).hexdigest()


def init_caching(app: Flask) -> None:
    @app.after_request
    def _conditional(response: Response) -> Response:
        if (
            request.method in ("GET", "HEAD")
            and response.status_code == 200
            and request.path.startswith(CACHED_PREFIXES)
            and not response.direct_passthrough
        ):
            etag = body_etag(response.get_data())
            response.headers["ETag"] = f'"{etag}"'
            response.headers["Cache-Control"] = "private, no-cache"
            response.headers["Vary"] = "Authorization, Accept"
            if request.if_none_match.contains_weak(etag):
                response.status_code = 304
                response.set_data(b"")
                for name in ("Content-Type", "Content-Length"):
                    response.headers.pop(name, None)
        return response
