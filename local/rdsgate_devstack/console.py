"""The web console's files for the local server: ``/`` (index.html), ``/assets/…`` and ``/console-config.json``.

The files are ``web/static`` of the repository (or ``$RDSGATE_CONSOLE_DIR``), served as
they are: the console needs no build to run locally (the SigV4 bundle it imports when
signing is committed). They are answered before the API sees the request and never need
a signature, as CloudFront serves them in a deployment; every other path goes to the
handler. ``console-config.json`` tells the page how to call the API: unsigned, or
SigV4-signed with credentials the user pastes (``--auth sigv4``).
"""

from __future__ import annotations

import json
import mimetypes
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

CONFIG_PATH = "/console-config.json"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".json": "application/json", ".svg": "image/svg+xml"}
# The page loads nothing from elsewhere and talks to this server only.
_HEADERS = [
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
     "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-cache"),
]

Response = tuple[int, list[tuple[str, str]], bytes]


def console_dir() -> Path:
    configured = os.environ.get("RDSGATE_CONSOLE_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "web" / "static"


def config(verifier: Any, identity: str) -> dict[str, Any]:
    """What the page needs to call this server."""
    if verifier is None:
        return {"auth": "none", "apiUrl": "", "identity": identity}
    return {"auth": "sigv4", "apiUrl": "", "region": verifier.region}


def page(method: str, raw_path: str, verifier: Any, identity: str) -> Response | None:
    """The console's answer to a request, or None when the request is for the API."""
    if method != "GET":
        return None
    path = unquote(urlsplit(raw_path).path)
    if path == CONFIG_PATH:
        body = json.dumps(config(verifier, identity)).encode()
        return 200, [("Content-Type", "application/json"), *_HEADERS], body
    if path in ("/", "/index.html"):
        relative = "index.html"
    elif path.startswith("/assets/"):
        relative = path[1:]
    else:
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in relative):  # NUL (%00) and friends name no file
        return 400, [("Content-Type", "text/plain; charset=utf-8"), *_HEADERS], b"Bad request\n"
    root = console_dir().resolve()
    try:
        file = (root / relative).resolve()
        found = file.is_relative_to(root) and file.is_file()
    except (OSError, ValueError):  # a name too long, a loop of links
        found = False
    if not found:
        if relative == "index.html":
            message = (f"The console's files are not in {root}: run rdsgate from a checkout of the repository, "
                       "or set RDSGATE_CONSOLE_DIR to the web/static folder.\n")
            return 404, [("Content-Type", "text/plain; charset=utf-8")], message.encode()
        return 404, [("Content-Type", "text/plain; charset=utf-8"), *_HEADERS], b"Not found\n"
    content_type = _TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    return 200, [("Content-Type", content_type), *_HEADERS], file.read_bytes()
