"""The page template: shipped files load from the package, names are escaped, the token rides along."""

from __future__ import annotations

from edge_fer.outputs.web.page import load_assets, render_page, stream_url, token_query


def test_assets_load_from_the_installed_package():
    template, assets = load_assets()
    assert set(assets) == {"/preview.js", "/preview.css", "/timeline.js"}
    assert b"/timeline.json" in assets["/preview.js"].body and b"edgeFerTimeline" in assets["/timeline.js"].body
    assert b"/stats.json" in assets["/preview.js"].body and b"/events.json" in assets["/preview.js"].body
    assert assets["/preview.js"].content_type.startswith("text/javascript")
    assert "$cameras" in template.template and "$query" in template.template


def test_page_has_one_stream_per_camera_without_a_token():
    template, _ = load_assets()
    page = render_page(template, ["cam0", "back yard"], None).decode()
    assert page.count('<img class="stream"') == 2
    assert page.count('<canvas class="timeline"') == 2 and 'aria-label="emotions of back yard over time"' in page
    assert 'src="/stream/cam0.mjpg"' in page and 'src="/stream/back%20yard.mjpg"' in page
    assert 'data-query=""' in page and "token" not in page


def test_token_is_url_quoted_then_html_escaped():
    token = 'a+b/c%d&e"f'
    assert token_query(token) == "?token=a%2Bb%2Fc%25d%26e%22f"
    assert stream_url("cam0", token) == "/stream/cam0.mjpg?token=a%2Bb%2Fc%25d%26e%22f"
    template, _ = load_assets()
    page = render_page(template, ["cam0"], token).decode()
    assert 'src="/stream/cam0.mjpg?token=a%2Bb%2Fc%25d%26e%22f"' in page
    assert token not in page


def test_camera_names_cannot_inject_markup():
    template, _ = load_assets()
    page = render_page(template, ['<script>alert(1)</script>"'], None).decode()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;" in page
