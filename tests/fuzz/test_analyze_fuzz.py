"""``edge-fer analyze`` on real photos mutated at random (flipped and inserted bytes, cuts, splices, lying size
fields): each file is either analysed (one JSON line) or refused with one line naming it, exit 1 when any was
refused, and never a traceback. tests/commands/test_analyze.py covers the hand-made bad files (missing,
empty, truncated, garbled, a pixel bomb); this throws many more at the same code."""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import cv2
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edge_fer.cli import main
from tests.photos import astronaut_bgr, make_scene

EXAMPLES = max(20, int(os.environ.get("EDGE_FER_FUZZ_EXAMPLES", "300")) // 5)
ROOT = Path(__file__).resolve().parents[2]


@cache
def originals() -> dict[str, bytes]:
    """Real photos in every format the header check knows, and two it does not."""
    scene = make_scene(320, 240, [(160, 120, 90, False)], "coffee").bgr
    out = {".jpg": (ROOT / "edge_fer/assets/astronaut.jpg").read_bytes()}
    for suffix in (".png", ".bmp", ".webp", ".ppm", ".tif"):
        ok, data = cv2.imencode(suffix, scene if suffix != ".png" else astronaut_bgr()[::2, ::2])
        assert ok
        out[suffix] = data.tobytes()
    return out


def lie_about_size(data: bytes, width: int, height: int) -> bytes:
    """Overwrite the size fields of a PNG (IHDR) or JPEG (first SOF) header; other formats are left alone."""
    buf = bytearray(data)
    if data.startswith(b"\x89PNG") and len(buf) >= 24:
        struct.pack_into(">II", buf, 16, width, height)
    elif data.startswith(b"\xff\xd8"):
        for marker in (b"\xff\xc0", b"\xff\xc2"):
            at = data.find(marker)
            if 0 < at <= len(buf) - 9:
                struct.pack_into(">HH", buf, at + 5, height & 0xFFFF, width & 0xFFFF)
                break
    return bytes(buf)


@st.composite
def mutated_image(draw) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from(sorted(originals())))
    data = bytearray(originals()[suffix])
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "flip_head", "cut", "insert", "delete", "size", "splice"]))
        n = len(data)
        if op in ("flip", "flip_head") and n:
            limit = min(n, 200) if op == "flip_head" else n  # the headers are where parsers trust the file
            for _ in range(draw(st.integers(1, 8))):
                data[draw(st.integers(0, limit - 1))] = draw(st.integers(0, 255))
        elif op == "cut":
            data = data[: draw(st.integers(0, n))]
        elif op == "insert":
            at = draw(st.integers(0, n))
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete" and n:
            at = draw(st.integers(0, n - 1))
            del data[at : at + draw(st.integers(1, 512))]
        elif op == "size":
            side = st.one_of(st.integers(0, 70000), st.sampled_from([0, 1, 65535, 2**31 - 1, 2**32 - 1]))
            data = bytearray(lie_about_size(bytes(data), draw(side), draw(side)))
        elif op == "splice":
            other = originals()[draw(st.sampled_from(sorted(originals())))]
            data = data[: draw(st.integers(0, n))] + other[draw(st.integers(0, len(other))) :]
    return draw(st.sampled_from([suffix, suffix, ".jpg", ".png", ""])), bytes(data)


def run_analyze(paths: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["analyze", "--json", *paths])
    return code, out.getvalue(), err.getvalue()


# libjpeg and libpng write their own messages straight to file descriptor 2, past OpenCV's log level that
# analyze silences ("Corrupt JPEG data: premature end of data segment", "libpng error: IHDR: CRC error").
# Noise rather than errors (reported as a finding); set apart so the one-line-per-file rule is checked on the rest.
LIBRARY_NOISE = ("Corrupt JPEG data", "Premature end of JPEG file", "Invalid SOS parameters", "libpng ")


def check_outcome(paths: list[str], code: int, out: str, err: str) -> None:
    analysed = [json.loads(line)["image"] for line in out.splitlines() if line.strip()]
    errors = [line for line in err.splitlines() if not line.startswith(LIBRARY_NOISE)]
    refused = [p for p in paths if p not in analysed]
    assert "Traceback" not in out + err
    if not refused:
        assert code == 0 and errors == []
        return
    assert code == 1
    assert errors[-1] == f"edge-fer analyze: {len(refused)} of {len(paths)} images failed"
    assert len(errors) == len(refused) + 1, err
    for path, line in zip(refused, errors):
        assert line.startswith(f"edge-fer analyze: {path}: "), line


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(images=st.lists(mutated_image(), min_size=1, max_size=6))
def test_mutated_photos_are_analysed_or_refused_with_one_line_each(images):
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, (suffix, data) in enumerate(images):
            path = Path(tmp) / f"image{i}{suffix}"
            path.write_bytes(data)
            paths.append(str(path))
        code, out, err = run_analyze(paths)
    check_outcome(paths, code, out, err)
    event(f"{sum(1 for line in out.splitlines() if line.strip())} of {len(paths)} analysed")


@pytest.mark.slow
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(images=st.lists(mutated_image(), min_size=40, max_size=40))
def test_the_real_process_on_a_batch_of_mutated_photos(images):
    """One process, 40 mutated files of every kind plus a pixel bomb and an empty file: one line each for
    the refused, exit 1, and no traceback."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, (suffix, data) in enumerate(images):
            path = Path(tmp) / f"m{i}{suffix}"
            path.write_bytes(data)
            paths.append(str(path))
        huge, zero = Path(tmp) / "huge.png", Path(tmp) / "zero.jpg"
        huge.write_bytes(lie_about_size(originals()[".png"], 60000, 60000))
        zero.write_bytes(b"")
        paths += [str(huge), str(zero)]
        proc = subprocess.run(
            [sys.executable, "-m", "edge_fer", "analyze", "--json", *paths],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )
    check_outcome(paths, proc.returncode, proc.stdout, proc.stderr)
    assert f"{huge}: 60000x60000 is 3600.0 megapixels" in proc.stderr
    assert f"{zero}: empty file" in proc.stderr
