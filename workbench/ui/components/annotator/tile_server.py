"""Tiles straight to the browser: a small HTTP server in the UI process, on the UI's own address.

Through Streamlit a tile costs a round trip of the page (the browser's ask, a fragment rerun that
registers the files, the answer with their URLs) before the browser can fetch it, and every
registration reads the file into the session's memory. Here the page hands the browser one URL
pattern with the grid; the browser fetches the tiles in view itself the moment it zooms past the
display copy, and a tile not on disk yet is written on that request (one decode of the original).

Only tiles are served: ``/<token>/<project>/<image id>/<side>/<index>.bmp``, where the token is
random per process (nothing outside the page that was given it can name a tile), the project and
image are looked up in the store (an unknown one is a 404), and the file comes from the tile cache.
The server binds the address Streamlit binds (``127.0.0.1`` by default); the browser falls back to
the Streamlit path (tiles.py) when it cannot reach it (a proxy that forwards one port, https).
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from workbench.domain import WorkbenchError
from workbench.services import tiles as tile_svc
from workbench.services.workspace import Workspace

_PATH = re.compile(r"^/([A-Za-z0-9_-]{16,64})/([A-Za-z0-9._-]{1,200})/(\d{1,12})/(\d{1,6})/(\d{1,7})\.bmp$")
WILDCARD_HOSTS = {"", "0.0.0.0", "::"}  # noqa: S104 - the names of "every address", compared against


@dataclass(frozen=True)
class TileServer:
    """Where the browser finds tiles: ``host`` None means the page's own host name."""

    host: str | None
    port: int
    token: str

    def base(self, slug: str, image_id: int, side: int) -> str:
        return f"/{self.token}/{slug}/{image_id}/{side}/"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    token: str
    ws: Workspace
    users: dict[str, Workspace]
    """Team mode: a token per signed-in user -> the workspace acted on by that user (every tile is
    checked as theirs by the service); signing out revokes it."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the tiles of a view come over a few connections
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        m = _PATH.match(self.path.split("?", 1)[0])
        ws = None if m is None else self._workspace(m[1])
        if m is None or ws is None or int(m[4]) != tile_svc.TILE_SIDE:
            self._send(404, b"not found", "text/plain")
            return
        data = None
        for _attempt in range(2):  # a tile pruned from the cache between the two lines is cut again
            try:
                (path,) = tile_svc.tile_files(ws, m[2], int(m[3]), [int(m[5])], side=int(m[4]))
                data = path.read_bytes()
                break
            except OSError:
                continue
            except WorkbenchError:
                break
        if data is None:
            self._send(404, b"not found", "text/plain")
            return
        self._send(200, data, tile_svc.TILE_MIMETYPE)

    def _workspace(self, token: str) -> Workspace | None:
        for known, ws in list(self.server.users.items()):
            if hmac.compare_digest(token, known):
                return ws
        return self.server.ws if hmac.compare_digest(token, self.server.token) else None

    def _send(self, status: int, body: bytes, mimetype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", mimetype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Timing-Allow-Origin", "*")  # the page's resource timing sees where time goes
        # a tile of an image never changes (stored files are content-addressed, ids never reused)
        self.send_header("Cache-Control", "private, max-age=86400" if status == 200 else "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
        pass


_LOCK = threading.Lock()
_STARTED: dict[str, TileServer | None] = {}


def tile_server(ws: Workspace, address: str | None) -> TileServer | None:
    """The process's tile server on ``address`` (Streamlit's), started at the first call; None
    when it cannot be (a unix socket, a bind error): then tiles go through Streamlit."""
    host = (address or "127.0.0.1").strip()
    if host.startswith("unix:"):
        return None
    with _LOCK:
        if host in _STARTED:
            found = _STARTED[host]
            if found is not None:
                found = _for_user(_SERVERS[host], found, ws)
            return found
        try:
            srv = _Server((host, 0), _Handler)
        except OSError:
            _STARTED[host] = None
            return None
        srv.token = secrets.token_urlsafe(24)
        srv.users = {}
        srv.ws = ws.as_user(None)
        threading.Thread(target=srv.serve_forever, name="wb-tile-server", daemon=True).start()
        _SERVERS[host] = srv
        info = TileServer(
            host=None if host in WILDCARD_HOSTS else host, port=srv.server_address[1], token=srv.token
        )
        _STARTED[host] = info
        return _for_user(srv, info, ws)


def _for_user(srv: _Server, info: TileServer, ws: Workspace) -> TileServer:
    """The signed-in user's own token (team mode), or the process's (solo mode)."""
    if ws.actor is None:
        srv.ws = ws
        return info
    for token, known in srv.users.items():
        if known.actor is not None and known.actor.id == ws.actor.id:
            srv.users[token] = ws
            return replace(info, token=token)
    token = secrets.token_urlsafe(24)
    srv.users[token] = ws
    return replace(info, token=token)


def revoke_user(user_id: int) -> None:
    """A user signed out: their tile URLs stop working at once."""
    with _LOCK:
        for srv in _SERVERS.values():
            for token, known in list(srv.users.items()):
                if known.actor is not None and known.actor.id == user_id:
                    del srv.users[token]


_SERVERS: dict[str, _Server] = {}

__all__ = ["TileServer", "revoke_user", "tile_server"]
