"""Abuse limits: requests per API key and per client address, counted in Redis.

Three limits, each over all endpoints together (LATAM_API_RATELIMIT_* settings):

- per key: requests that present one API key, wherever they come from; the counter is named by
  a hash of the key, so no key is ever written to Redis;
- per address: requests from one client address, with or without a key (the probes `/healthz`
  and `/readyz` are exempt, so an orchestrator is never throttled), unknown paths included;
- failed keys per address: well-formed keys that turn out unknown or revoked, the only refusals
  that cost a database lookup. Past it, every request from that address that presents a key gets
  429 until the window moves on, so guessing keys is slow however many an attacker makes up.
  Malformed keys are refused without a lookup (`api_service.auth`) and count only per address.

The counters live in Redis (LATAM_API_RATELIMIT_STORAGE_URL), so a limit holds across gunicorn
workers and API replicas. They are sliding-window counters: no burst of twice the limit around a
window's edge, and two small Redis keys per client. While Redis does not answer, each worker
counts in its own memory with the same limits (the API keeps serving) and goes back to Redis once
it answers again.

A client over a limit gets 429 with `Retry-After` (seconds) and a problem document saying which
limit it exceeded. The client address is the peer's, or with LATAM_API_PROXY_HOPS set, the one
the trusted proxies forwarded (`api_service.security_headers`).
"""

from __future__ import annotations

import hashlib
import math
import time

from flask import Flask, Response, request
from flask_limiter import ApplicationLimit, Limiter, RateLimitExceeded

from api_service.auth import bearer_token, well_formed
from api_service.config import ApiConfig
from api_service.errors import problem

EXTENSION = "latam_api_limiter"
STRATEGY = "sliding-window-counter"
# the storage must answer quickly or be given up for the in-memory fallback
STORAGE_TIMEOUT_SECONDS = 0.5
PROBES = frozenset({"health.healthz", "health.readyz"})
LOGIN_ENDPOINT = "quality_site.login_submit"
PER_KEY, PER_ADDRESS, FAILED_AUTH = "per-key", "per-address", "failed-auth"


def presented_key() -> str | None:
    """The API key this request presents: its bearer token, or the key pasted into the quality
    report's sign-in form."""
    token = bearer_token(request.headers.get("Authorization"))
    if token is None and request.endpoint == LOGIN_ENDPOINT and request.method == "POST":
        pasted = request.form.get("api_key", "").strip()
        token = bearer_token(pasted) or pasted or None
    return token


def _presents_well_formed_key() -> bool:
    return well_formed(presented_key())


def client_address() -> str:
    return request.remote_addr or "unknown"


def _key_identity() -> str:
    key = presented_key() or ""
    return "key:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _address_identity() -> str:
    return "addr:" + client_address()


def _request_identity() -> str:
    # unknown paths count too: without an endpoint the limiter would let them all through
    return request.endpoint or "<unmatched>"


def _is_probe() -> bool:
    return request.endpoint in PROBES


def _refused(response: Response) -> bool:
    return response.status_code == 401


def build_limiter(config: ApiConfig) -> Limiter:
    """The limiter of one app, from its settings (enabled unless set off, or in testing mode)."""
    enabled = config.ratelimit_enabled
    if enabled is None:
        enabled = not config.testing
    return Limiter(
        _address_identity,
        application_limits=[
            ApplicationLimit(
                config.ratelimit_per_key,
                key_function=_key_identity,
                scope=PER_KEY,
                exempt_when=lambda: not _presents_well_formed_key(),
            ),
            ApplicationLimit(
                config.ratelimit_per_address,
                key_function=_address_identity,
                scope=PER_ADDRESS,
                exempt_when=_is_probe,
            ),
            # tested before the request, counted after it only when the key was refused
            ApplicationLimit(
                config.ratelimit_failed_auth,
                key_function=_address_identity,
                scope=FAILED_AUTH,
                exempt_when=lambda: not _presents_well_formed_key(),
                deduct_when=_refused,
            ),
        ],
        storage_uri=config.ratelimit_storage_url,
        storage_options={
            "socket_timeout": STORAGE_TIMEOUT_SECONDS,
            "socket_connect_timeout": STORAGE_TIMEOUT_SECONDS,
        },
        strategy=STRATEGY,
        key_prefix=config.ratelimit_key_prefix,
        request_identifier=_request_identity,
        headers_enabled=False,
        in_memory_fallback_enabled=True,
        swallow_errors=True,
        enabled=enabled,
    )


_DETAIL = {
    PER_KEY: "this API key has made more requests than its limit of {limit}",
    PER_ADDRESS: "this address has made more requests than its limit of {limit}",
    FAILED_AUTH: "this address has presented more unknown or revoked API keys than the limit of "
    "{limit}",
}


def retry_after(limiter: Limiter) -> int:
    """Whole seconds until the exceeded limit lets a request through again (at least 1)."""
    current = limiter.current_limit
    if current is None:
        return 1
    try:
        return max(1, math.ceil(current.reset_at - time.time()))
    except Exception:  # the storage went away meanwhile: a short wait is a fair answer
        return 1


def init_limits(app: Flask, config: ApiConfig) -> Limiter:
    """Count every request of `app` against the limits; 429 problem documents past them."""
    limiter = build_limiter(config)
    limiter.init_app(app)
    app.extensions[EXTENSION] = limiter

    @app.errorhandler(RateLimitExceeded)
    def _too_many(exc: RateLimitExceeded) -> Response:
        seconds = retry_after(limiter)
        scope = exc.limit.scope if isinstance(exc.limit.scope, str) else PER_ADDRESS
        detail = _DETAIL.get(scope, _DETAIL[PER_ADDRESS]).format(limit=exc.limit.limit)
        return problem(
            429, f"{detail}; retry in {seconds} s", headers={"Retry-After": str(seconds)}
        )

    return limiter
