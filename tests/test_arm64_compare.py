"""The comparison of ``benchmarks/arm64_emulated.py`` on real x86 output: it reads what the commands print,
the daemon settings it uses give one face event per frame, and each kind of difference fails.

The emulated arm64 half needs root, qemu and minutes, so it is run by hand (docs/deploy.md, "arm64"); a
parser that no longer matches the commands' output would otherwise only show up there.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

from benchmarks.arm64_emulated import DAEMON_SETTINGS, _analyze_faces, _compare, _daemon_faces, _write_photo


def _edge_fer(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "edge_fer", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_daemon_settings_give_each_frame_its_face_and_agree_with_themselves():
    settings = [arg for setting in DAEMON_SETTINGS for arg in ("--set", setting)]
    out = _edge_fer("--source", "demo", "--max-frames", "4", "--log-level", "warning", *settings)
    frames = _daemon_faces(out, 4)
    assert [len(faces) for faces in frames.values()] == [1, 1, 1, 1]
    assert all(_compare(f"frame {i}", faces, faces, 2.0, 0.02).ok for i, faces in frames.items())


def test_analyze_output_is_read_and_each_difference_fails(tmp_path):
    photo = tmp_path / "astronaut.png"
    _write_photo(photo)
    (face,) = _analyze_faces(_edge_fer("analyze", "--json", str(photo)))
    assert face.emotion == "happy" and 170 < face.box[0] < 195

    def moved(dx: float) -> list:
        x, y, w, h = face.box
        return [dataclasses.replace(face, box=(x + dx, y, w, h))]

    top = max(face.scores, key=face.scores.get)
    other = min(face.scores, key=face.scores.get)
    shifted_scores = {**face.scores, top: face.scores[top] - 0.03, other: face.scores[other] + 0.03}
    assert _compare("same", [face], [face], 2.0, 0.02).ok
    assert _compare("1.5 px", [face], moved(1.5), 2.0, 0.02).ok
    assert not _compare("2.5 px", [face], moved(2.5), 2.0, 0.02).ok
    assert not _compare("scores", [face], [dataclasses.replace(face, scores=shifted_scores)], 2.0, 0.02).ok
    assert not _compare("label", [face], [dataclasses.replace(face, emotion="sad")], 2.0, 0.02).ok
    assert not _compare("missing", [face], [], 2.0, 0.02).ok
