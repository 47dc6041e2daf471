"""Browser sessions for the quality report: paste an API key once, then a cookie does.

A browser cannot send `Authorization: Bearer`, so `/quality/login` takes a key with the
`quality:read` scope, checks it with the API's own `KeyVerifier`, and opens a Flask session: a
cookie signed with LATAM_API_SESSION_SECRET that names the key's owner and the key's id. Every page
looks the key up again (with the API's key cache), so revoking the key ends its sessions within
LATAM_API_KEY_CACHE_SECONDS, as it ends the key's bearer use. It is HttpOnly (no script
reads it), SameSite=Lax (other sites cannot make the browser send it with their requests), Secure
when the request came over HTTPS, scoped to `/quality`, and valid for `LIFETIME` from the login
(the server checks the signature's age, whatever the browser keeps). The cookie holds no key.

Every `/quality` page then takes either credential: a bearer header is checked exactly as on the
rest of the API (a wrong one is a 401 even with a session), else the session; a browser without
either is sent to the login form, any other client gets the usual 401 problem document.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask, Request, Response, redirect, request, session, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from api_service.auth import KeyOwner
from api_service.config import GENERATED_SESSION_SECRET, ApiConfig
from api_service.context import auth, services

SCOPE = "quality:read"
COOKIE_NAME = "latam_quality_session"
COOKIE_PATH = "/quality"
# A working day: long enough not to ask again while a person reads the report, short enough that
# a stolen cookie ends the same day. Logging out, revoking the key, or changing
# LATAM_API_SESSION_SECRET ends sessions sooner.
LIFETIME = timedelta(hours=8)
_READER = "quality_reader"
_KEY_ID = "quality_key_id"
log = logging.getLogger("api_service")


class _QualitySessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, read only under /quality, Secure only over HTTPS."""

    def open_session(self, app: Flask, req: Request) -> SecureCookieSession | None:
        if not req.path.startswith(COOKIE_PATH):
            return self.session_class()  # the data API never reads the cookie
        return super().open_session(app, req)

    def get_cookie_secure(self, app: Flask) -> bool:
        # a local demo over plain HTTP still gets its cookie; behind TLS it never leaks to HTTP
        return request.is_secure


def init_browser_sessions(app: Flask, config: ApiConfig) -> None:
    """Sign sessions with the configured secret (or this process's random one) and set the
    cookie's flags."""
    secret = config.session_secret.get_secret_value()
    if not secret:
        log.info(
            "LATAM_API_SESSION_SECRET is not set: quality report sessions are signed with a random "
            "key of this process and end when it restarts"
        )
    app.secret_key = secret or GENERATED_SESSION_SECRET
    app.session_interface = _QualitySessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_PATH=COOKIE_PATH,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=LIFETIME,
        # the expiry counts from the login, not from the last page seen
        SESSION_REFRESH_EACH_REQUEST=False,
    )


def check_key(key: str) -> KeyOwner | None:
    """The owner of a pasted key, by the API's own key check (None: unknown or revoked)."""
    key = key.strip()
    if key.lower().startswith("bearer "):
        key = key[len("bearer ") :].strip()
    return services().keys.verify(key)


def sign_in(owner: KeyOwner) -> None:
    """Open a fresh session for `owner` (any earlier session's content is dropped)."""
    session.clear()
    session.permanent = True
    session[_READER] = owner.name
    session[_KEY_ID] = owner.key_id


def sign_out() -> None:
    session.clear()


def session_reader() -> str | None:
    """Name of the key owner signed in with the session cookie, if any: the key it was opened
    with must still be active and still hold the scope. A session of a revoked key (or one
    without a key id) is cleared, so its cookie is deleted with this response."""
    name, key_id = session.get(_READER), session.get(_KEY_ID)
    if not (isinstance(name, str) and name and type(key_id) is int):
        if session:
            session.clear()
        return None
    owner = services().keys.active_key(key_id)
    if owner is None or owner.name != name or SCOPE not in owner.scopes:
        session.clear()
        return None
    return name


def current_reader() -> str | None:
    """Who reads this page: the bearer key's owner or the session's."""
    owner = auth.current_user
    if isinstance(owner, KeyOwner):
        return owner.name
    return session_reader()


def same_origin_post() -> bool:
    """A form post from one of our own pages. Browsers send Origin with every POST; a post from
    another site (which SameSite=Lax already strips of the cookie) is refused before it can sign
    someone in or out."""
    origin = request.headers.get("Origin")
    if origin is not None:
        return urlsplit(origin).netloc == request.host
    return request.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")


def safe_next(target: str | None, default: str) -> str:
    """`target` when it is a path of the report (never another site), else `default`."""
    if not target or "\\" in target or any(ord(c) < 0x20 for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(COOKIE_PATH + "/"):
        return default
    return target


def _wants_html() -> bool:
    """A browser navigating (HTML preferred over JSON), not an API client."""
    best = request.accept_mimetypes.best_match(("application/json", "text/html"))
    return request.method == "GET" and best == "text/html"


_bearer_check = auth.login_required(role=[SCOPE])(lambda: None)


def reader_required(public: Collection[str] = ()) -> Callable[[], Response | None]:
    """A `before_request` hook: the request needs a `quality:read` key, as a bearer header or a
    session cookie; endpoints in `public` need neither."""

    def require() -> Response | None:
        if request.endpoint in public:
            return None
        if "Authorization" not in request.headers:
            if session_reader() is not None:
                return None
            if _wants_html():
                path = request.path
                if request.query_string:
                    path += "?" + request.query_string.decode("latin-1")
                return redirect(url_for("quality_site.login", next=path))
        return _bearer_check()

    return require
