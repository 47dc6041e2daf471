"""Data Docs pages made self-contained: every CDN reference rewritten to a copy the API serves.

Great Expectations writes pages that load Bootstrap, jQuery, bootstrap-table, Font Awesome,
Vega, a datepicker and logos from CDNs. Offline (or behind a strict firewall) those pages render
unstyled, with empty tables, and every view tells the CDNs who reads the docs. When the API
serves a page it rewrites each external `<link>`/`<script>` to a file of an installed XStatic
package (or, for bootstrap-table, which no Python package ships, to the small stand-in in
`static/datadocs-table.js` that renders the index tables from the same options); references
nothing provides (Vega, the datepicker, the dark theme) are dropped, links to other sites lose
their `href`, and any absolute URL left is removed, so no served page names another host.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from pathlib import Path

# the asset libraries served under /quality/assets/<library>/: our own files, XStatic packages
SITE_ASSETS = Path(__file__).parent / "static"
_VENDOR_PACKAGES = {
    "jquery": "xstatic.pkg.jquery",
    "bootstrap": "xstatic.pkg.bootstrap",
    "font-awesome": "xstatic.pkg.font_awesome",
}
ASSET_LIBRARIES = ("site", *_VENDOR_PACKAGES)

# what a CDN URL is, by its path: (pattern, (asset library, file in that library)); Bootstrap
# and bootstrap-table name their version in the path (`@4.6.2/` or `/4.6.2/`)
_BOOTSTRAP_TABLE = r"/bootstrap-table[@/][^/]+/dist/bootstrap-table(?:\.min)?"
_BOOTSTRAP = r"/bootstrap[@/]\d[\w.]*/(?:dist/)?"
_CDN_FILES: tuple[tuple[re.Pattern[str], tuple[str, str]], ...] = (
    (re.compile(r"/jquery(?:-\d[\w.]*)?(?:\.min)?\.js$"), ("jquery", "jquery.min.js")),
    (re.compile(_BOOTSTRAP_TABLE + r"\.js$"), ("site", "datadocs-table.js")),
    (re.compile(_BOOTSTRAP_TABLE + r"\.css$"), ("site", "datadocs-table.css")),
    (
        re.compile(_BOOTSTRAP + r"css/bootstrap(?:\.min)?\.css$"),
        ("bootstrap", "css/bootstrap.min.css"),
    ),
    # the bundle includes Popper, so the separate popper.js reference is simply dropped
    (
        re.compile(_BOOTSTRAP + r"js/bootstrap(?:\.bundle)?(?:\.min)?\.js$"),
        ("bootstrap", "js/bootstrap.bundle.min.js"),
    ),
    (
        re.compile(r"/(?:font-awesome|fontawesome-free)[@/]\d[\w.]*/css/all(?:\.min)?\.css$"),
        ("font-awesome", "css/all.min.css"),
    ),
)
# Great Expectations' logos on its own web-assets bucket: the site ships the same logo locally
_GX_LOGO_HOST = "great-expectations-web-assets"
GX_LOGO_FILE = "static/images/logo-long.png"

# a URL with a scheme of the web; scheme-relative ones (`//host`) are found in attributes only,
# as `//` alone also starts a JavaScript comment
_ABSOLUTE = re.compile(r"""(?i)\bhttps?://[^\s"'<>()`]+""")
_TAG = re.compile(r"(?is)<(link|script|img|a|iframe|source|form|embed|object)\b[^>]*>")
_SCRIPT_CLOSE = re.compile(r"(?is)\s*</script\s*>")
_ATTR = re.compile(
    r"""(?is)(\s)(href|src|action|srcset|data|integrity|crossorigin)(?![\w-])"""
    r"""(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]+))?"""
)
_XMLNS = re.compile(r"""(?i)\sxmlns(?::\w+)?\s*=\s*("[^"]*"|'[^']*')""")
_CSS_URL = re.compile(r"""(?i)url\(\s*(["']?)((?:https?:)?//[^)"']*)\1\s*\)""")


def vendor_dir(library: str) -> Path | None:
    """Directory of an asset library (`site` or an XStatic package), None if unknown."""
    if library == "site":
        return SITE_ASSETS
    module = _VENDOR_PACKAGES.get(library)
    if module is None:
        return None
    return Path(importlib.import_module(module).BASE_DIR)


def is_external(url: str) -> bool:
    """An absolute URL (`http://`, `https://` or scheme-relative `//host`)."""
    return bool(re.match(r"(?i)\s*(?:https?:)?//", url))


def local_asset(url: str) -> tuple[str, str] | None:
    """(library, file) of the local copy of a CDN URL, or None when nothing provides it."""
    path = url.split("?", 1)[0].split("#", 1)[0]
    for pattern, asset in _CDN_FILES:
        if pattern.search(path):
            return asset
    return None


class Rewriter:
    """Rewrites one page. `asset_url(library, file)` and `logo_url` are the API's own URLs."""

    def __init__(self, asset_url: Callable[[str, str], str], logo_url: str):
        self.asset_url = asset_url
        self.logo_url = logo_url

    def html(self, text: str) -> str:
        """The page with every external reference rewritten, dropped or emptied."""
        text = _XMLNS.sub("", text)
        text = self._tags(text)
        text = self.css(text)
        return _ABSOLUTE.sub("", text)

    def css(self, text: str) -> str:
        """`url(...)` of another host: the local logo for GX's logos, else nothing."""

        def replace(match: re.Match[str]) -> str:
            if _GX_LOGO_HOST in match.group(2):
                return f'url("{self.logo_url}")'
            return "none"

        return _CSS_URL.sub(replace, text)

    def _tags(self, text: str) -> str:
        out: list[str] = []
        pos = 0
        for match in _TAG.finditer(text):
            if match.start() < pos:  # inside a dropped <script>...</script>
                continue
            out.append(text[pos : match.start()])
            pos = match.end()
            tag = match.group(0)
            name = match.group(1).lower()
            source = "src" if name in ("script", "img", "iframe", "embed") else "href"
            url = _attr_value(tag, source)
            if name in ("link", "script") and url is not None and is_external(url):
                local = local_asset(url)
                if local is None:  # nothing provides it: drop the element
                    if name == "script":
                        close = _SCRIPT_CLOSE.match(text, pos)
                        if close:
                            pos = close.end()
                    continue
                # the CDN's integrity hash is of another build of the file
                tag = _drop_attrs(tag, ("integrity", "crossorigin"))
                attr = "src" if name == "script" else "href"
                tag = _set_attr(tag, attr, self.asset_url(*local))
            elif name == "img" and url is not None and _GX_LOGO_HOST in url:
                tag = _set_attr(tag, "src", self.logo_url)
            out.append(_drop_external_attrs(tag))
        out.append(text[pos:])
        return "".join(out)


def _attr_value(tag: str, name: str) -> str | None:
    for match in _ATTR.finditer(tag):
        if match.group(2).lower() == name and match.group(3) is not None:
            return match.group(3).strip("\"'")
    return None


def _set_attr(tag: str, name: str, value: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(2).lower() == name:
            return f'{match.group(1)}{name}="{value}"'
        return match.group(0)

    return _ATTR.sub(replace, tag)


def _drop_attrs(tag: str, names: tuple[str, ...]) -> str:
    return _ATTR.sub(lambda m: "" if m.group(2).lower() in names else m.group(0), tag)


def _drop_external_attrs(tag: str) -> str:
    """Links to other sites keep their text but lose the URL; so do other URL attributes."""

    def replace(match: re.Match[str]) -> str:
        value = match.group(3)
        url_attr = match.group(2).lower() in ("href", "src", "action", "srcset", "data")
        if url_attr and value and (is_external(value.strip("\"'")) or _ABSOLUTE.search(value)):
            return ""
        return match.group(0)

    return _ATTR.sub(replace, tag)
