"""The preview page: a static template plus the cameras known when it is requested.

The page is built on the server so the stream ``<img>`` tags work without JavaScript; the script only
refreshes stats, events and the emotion timeline (drawn on each camera's ``<canvas>`` by the page itself:
devices are offline, so no chart library from a CDN) and adds cameras that start later. When a token is set,
the page carries it into its own URLs: whoever loaded the page has already shown the token.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from importlib import resources
from string import Template
from urllib.parse import quote

_STATIC = {
    "/preview.js": ("preview.js", "text/javascript; charset=utf-8"),
    "/timeline.js": ("timeline.js", "text/javascript; charset=utf-8"),
    "/preview.css": ("preview.css", "text/css; charset=utf-8"),
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str


def load_assets() -> tuple[Template, dict[str, Asset]]:
    """The page template and the static files served beside it, read once when the server is built."""
    root = resources.files("edge_fer.outputs.web").joinpath("static")
    template = Template(root.joinpath("index.html").read_text(encoding="utf-8"))
    assets = {route: Asset(root.joinpath(name).read_bytes(), ctype) for route, (name, ctype) in _STATIC.items()}
    return template, assets


def token_query(token: str | None) -> str:
    return f"?token={quote(token, safe='')}" if token else ""


def stream_url(camera: str, token: str | None) -> str:
    return f"/stream/{quote(camera, safe='')}.mjpg{token_query(token)}"


def camera_section(camera: str, token: str | None) -> str:
    name = html.escape(camera)
    return (
        f'<section class="camera" data-camera="{name}">\n'
        f"  <h2>{name}</h2>\n"
        f'  <img class="stream" src="{html.escape(stream_url(camera, token))}" alt="live view of {name}">\n'
        f'  <canvas class="timeline" width="440" height="60" aria-label="emotions of {name} over time"></canvas>\n'
        f'  <p class="mood"></p>\n'
        f'  <dl class="camera-stats"></dl>\n'
        f'  <ul class="faces"></ul>\n'
        f"</section>"
    )


def render_page(template: Template, cameras: list[str], token: str | None) -> bytes:
    sections = "\n".join(camera_section(camera, token) for camera in cameras)
    return template.substitute(cameras=sections, query=html.escape(token_query(token))).encode("utf-8")
