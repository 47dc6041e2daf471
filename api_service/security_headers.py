"""Security headers on every response, and which proxy headers the API believes.

Every answer, data, problem document or page, says:
- `X-Content-Type-Options: nosniff`: a browser takes the declared type, so a CSV or JSON body
  is never run as script or rendered as HTML;
- `X-Frame-Options: DENY` and CSP `frame-ancestors 'none'`: no other site can frame a page;
- `Referrer-Policy: no-referrer` (the quality report's own pages keep `same-origin`, for their
  links to each other);
- a Content-Security-Policy: pages that set their own keep it (`/docs` runs Swagger UI from
  `/docs/assets/`, the quality report and Data Docs load `/quality/assets/`; see docs_assets,
  quality_site and quality); other HTML may load styles and images from the API only and run no
  script; anything else (JSON, CSV) may load nothing at all;
- `Strict-Transport-Security` when the request came over TLS: directly, or through the trusted
  proxies' `X-Forwarded-Proto: https`. Over plain HTTP (a local demo) it would mean nothing.

Proxy headers: with LATAM_API_PROXY_HOPS = n > 0 the API sits behind n reverse proxies and takes
the client address and scheme from their `X-Forwarded-For` / `X-Forwarded-Proto` (werkzeug's
ProxyFix, trusting exactly n hops). With 0, the default, it trusts no such header: a client could
otherwise pick the address its rate limits are counted under, or claim TLS it does not have.
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

from api_service.config import ApiConfig

HSTS = "max-age=31536000; includeSubDomains"
# HTML that sets no policy of its own (no page of the API does so today)
HTML_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# data, problem documents, files: nothing to load, nothing to run, never framed
DATA_CSP = "default-src 'none'; frame-ancestors 'none'"


def trust_proxies(app: Flask, hops: int) -> None:
    """Believe `hops` proxies' X-Forwarded-For and X-Forwarded-Proto (none when 0)."""
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers.setdefault("Referrer-Policy", "no-referrer")
    if "Content-Security-Policy" not in headers:
        headers["Content-Security-Policy"] = (
            HTML_CSP if response.mimetype == "text/html" else DATA_CSP
        )
    if request.is_secure:
        headers["Strict-Transport-Security"] = HSTS
    return response


def init_security_headers(app: Flask, config: ApiConfig) -> None:
    trust_proxies(app, config.proxy_hops)
    app.after_request(add_security_headers)
