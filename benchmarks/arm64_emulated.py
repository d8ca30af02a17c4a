"""edge-fer on arm64 under emulation: does the wheel install there, and does it see what x86 sees?

Builds a Debian arm64 root with ``debootstrap`` (cached under ``~/.cache/edge-fer-arm64``), installs the
wheel built from this checkout into a fresh venv there with pip (its dependencies come from PyPI as
aarch64 wheels), then runs on arm64 and on x86 (this script's own venv):

- ``edge-fer analyze --json`` on the scikit-image astronaut, written to a PNG first;
- the daemon on the demo source for ``--frames`` frames, with ``cameras[0].realtime=false`` (every frame is
  processed, none dropped), ``detector.full_scan_interval=0`` (a full scan on every frame; the default 0.5 s
  makes which frames get a full scan depend on speed, and emulation is ~100x slower) and
  ``events.mode=every_frame`` (one event per face per frame with the raw classifier output).

It compares face counts, boxes (``--box-tol`` px), emotion labels and scores (``--score-tol``), prints a
PASS/FAIL table and exits 1 on a mismatch (2 when it cannot run: not root, a tool missing).

Which path it takes, and why: the chroot path. The arm64 root's programs run through ``qemu-user-static``
registered with the kernel's ``binfmt_misc`` (mounted and enabled here if it is not: ``mount -t binfmt_misc``,
``update-binfmts --enable qemu-aarch64``). That lets debootstrap finish its second stage, and pip inside the
root spawn its subprocesses, so the install is the one a Raspberry Pi user does (``python3 -m venv`` plus
``pip install edge_fer-*.whl``), not a host-side imitation of it. The chroot runs in a private mount
namespace (``unshare --mount``), so its /proc and /dev mounts vanish with it. It needs root, Debian's
``qemu-user-static``, ``binfmt-support`` and ``debootstrap``, and the Debian archive and PyPI reachable::

    sudo apt-get install -y qemu-user-static binfmt-support debootstrap
    pip install -e '.[test]'                                      # x86 side; scikit-image gives the photo
    sudo .venv/bin/python benchmarks/arm64_emulated.py            # --fresh rebuilds the cached root

Times printed for arm64 are emulation times on this x86 machine (qemu-user translates every instruction),
not arm64 device times: they say nothing about a Raspberry Pi's speed. Not run by CI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BINFMT = Path("/proc/sys/fs/binfmt_misc")
PACKAGES = "python3,python3-venv,python3-pip,ca-certificates"
VENV = "/opt/edge-fer"  # inside the root
WORK = "/tmp/edge-fer-arm64"  # inside the root: the wheel, the photo, the outputs
DONE = ".edge-fer-debootstrap-done"  # a root without it is an interrupted build and is rebuilt
DAEMON_SETTINGS = ("cameras[0].realtime=false", "detector.full_scan_interval=0", "events.mode=every_frame")
REPORTED = ("numpy", "onnxruntime", "opencv-python-headless", "pydantic")


class SetupError(Exception):
    """Something this script needs is missing; the message says what to do (exit 2)."""


class RunError(Exception):
    """A step failed: the install, or a run on either side (exit 1, as for a mismatch)."""


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x, y, w, h
    emotion: str
    scores: dict[str, float]


@dataclass(frozen=True)
class Row:
    what: str
    x86: str
    arm64: str
    diff: str
    ok: bool


def _run(cmd: list[str], what: str, **kwargs) -> tuple[subprocess.CompletedProcess, float]:
    """Run a command, return it and its wall time; a failure raises with the tail of its output."""
    start = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    wall = time.monotonic() - start
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise RunError(f"{what} failed (exit {done.returncode}): {' '.join(cmd)}\n{tail}")
    return done, wall


def _ensure_binfmt() -> None:
    """qemu-aarch64 registered with binfmt_misc, so that the root's arm64 programs just run."""
    if not shutil.which("update-binfmts") or not Path("/usr/bin/qemu-aarch64-static").exists():
        raise SetupError("needs qemu-user-static and binfmt-support: apt-get install qemu-user-static binfmt-support")
    if not (BINFMT / "status").exists():
        print(f"mounting binfmt_misc on {BINFMT}", flush=True)
        _run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], "mounting binfmt_misc")
    entry = BINFMT / "qemu-aarch64"
    if not entry.exists() or not entry.read_text().startswith("enabled"):
        print("registering qemu-aarch64 with binfmt_misc (update-binfmts --enable qemu-aarch64)", flush=True)
        _run(["update-binfmts", "--enable", "qemu-aarch64"], "update-binfmts")


def _ensure_root(root: Path, suite: str, mirror: str, fresh: bool) -> float | None:
    """The arm64 Debian root, built unless a finished one is cached; the build's wall time, or None."""
    if fresh or not (root / DONE).exists():
        if root.exists():
            shutil.rmtree(root)
    else:
        print(f"arm64 root: cached at {root} (--fresh rebuilds it)", flush=True)
        return None
    if not shutil.which("debootstrap"):
        raise SetupError("needs debootstrap: apt-get install -y debootstrap")
    print(f"arm64 root: debootstrap {suite} from {mirror} into {root} (minutes: its second stage is emulated)")
    root.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["debootstrap", "--arch=arm64", "--variant=minbase", f"--include={PACKAGES}", suite, str(root), mirror]
    _, wall = _run(cmd, "debootstrap")
    (root / DONE).write_text(f"{suite} {mirror}\n")
    return wall


def _in_root(root: Path, argv: list[str], what: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run argv in the arm64 root, in a private mount namespace with /proc and /dev, clean env.

    /sys stays unmounted: with the x86 host's /sys there, importing onnxruntime crashed under qemu-user
    (SIGSEGV, 5 December 2026); without it, onnxruntime's CPU probe (cpuinfo) warns that it cannot read the
    CPU list and runs. Both are emulation artifacts: a real board has its own /sys.
    """
    env = ["PATH=/usr/bin:/bin", "HOME=/root", "LANG=C.UTF-8", "PIP_CERT=/etc/ssl/certs/host-ca-bundle.crt"]
    env += [f"{k}={v}" for k, v in os.environ.items() if k.lower() in ("http_proxy", "https_proxy", "no_proxy")]
    inner = " && ".join(
        [
            f"mount -t proc proc {root}/proc",
            f"mount --rbind /dev {root}/dev",
            f"exec chroot {root} /usr/bin/env -i " + " ".join(_quote(a) for a in [*env, *argv]),
        ]
    )
    return _run(["unshare", "--mount", "--propagation", "private", "sh", "-c", inner], what)


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


def _install(root: Path, wheel: Path) -> float:
    """A fresh venv in the root and the wheel installed into it by the root's pip, from PyPI."""
    for name in ("resolv.conf", "ssl/certs/ca-certificates.crt"):  # the host's DNS and TLS trust (a proxy's CA)
        source = Path("/etc") / name
        target = root / "etc" / ("ssl/certs/host-ca-bundle.crt" if name.startswith("ssl") else name)
        target.unlink(missing_ok=True)  # resolv.conf may be a dangling link in a fresh root
        shutil.copyfile(source, target)
    shutil.rmtree(root / VENV.lstrip("/"), ignore_errors=True)
    shutil.copy(wheel, root / WORK.lstrip("/") / wheel.name)
    print(f"arm64: python3 -m venv {VENV} && pip install {wheel.name} (dependencies from PyPI)", flush=True)
    pip = f"{VENV}/bin/pip install --no-cache-dir --progress-bar off {WORK}/{wheel.name}"
    _, wall = _in_root(root, ["sh", "-c", f"python3 -m venv {VENV} && {pip}"], "pip install in the arm64 root")
    return wall


def _versions(site_packages: list[Path]) -> str:
    dists = metadata.distributions(path=[str(p) for p in site_packages])
    found = {d.metadata["Name"].lower(): d.version for d in dists}
    return ", ".join(f"{name} {found.get(name, '-')}" for name in REPORTED)


def _build_wheel(out: Path) -> Path:
    print("building the wheel: pip wheel --no-deps .", flush=True)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)], "pip wheel")
    (wheel,) = out.glob("edge_fer-*.whl")
    return wheel


def _write_photo(path: Path) -> None:
    import cv2
    import skimage.data

    if not cv2.imwrite(str(path), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)):
        raise SetupError(f"cannot write {path}")


def _analyze_faces(stdout: str) -> list[Face]:
    (image,) = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return [Face(tuple(f["box"]), f["emotion"], f["scores"]) for f in image["faces"]]


def _daemon_faces(stdout: str, frames: int) -> dict[int, list[Face]]:
    by_frame: dict[int, list[Face]] = {i: [] for i in range(frames)}
    for line in stdout.splitlines():
        event = json.loads(line)
        if event["type"] == "face" and event["frame"] < frames:
            by_frame[event["frame"]].append(Face(tuple(event["box"]), event["emotion"], event["scores"]))
    return by_frame


def _pair(a: list[Face], b: list[Face]) -> list[tuple[Face, Face]]:
    """Each face of ``a`` with the nearest unpaired face of ``b`` (box centres), greedily."""
    left, pairs = list(b), []
    for face in a:
        if not left:
            break
        cx, cy = face.box[0] + face.box[2] / 2, face.box[1] + face.box[3] / 2
        near = min(left, key=lambda o: (o.box[0] + o.box[2] / 2 - cx) ** 2 + (o.box[1] + o.box[3] / 2 - cy) ** 2)
        left.remove(near)
        pairs.append((face, near))
    return pairs


def _compare(what: str, x86: list[Face], arm: list[Face], box_tol: float, score_tol: float) -> Row:
    labels_x, labels_a = ",".join(f.emotion for f in x86), ",".join(f.emotion for f in arm)
    if len(x86) != len(arm):
        return Row(what, f"{len(x86)} faces", f"{len(arm)} faces", "face count differs", False)
    box_d = score_d = 0.0
    same_labels = True
    for fx, fa in _pair(x86, arm):
        box_d = max(box_d, *(abs(p - q) for p, q in zip(fx.box, fa.box)))
        score_d = max(score_d, *(abs(fx.scores[k] - fa.scores.get(k, -1.0)) for k in fx.scores))
        same_labels &= fx.emotion == fa.emotion and fx.scores.keys() == fa.scores.keys()
    ok = box_d <= box_tol and score_d <= score_tol and same_labels
    diff = f"box {box_d:.1f} px, scores {score_d:.4f}" + ("" if same_labels else ", labels differ")
    return Row(what, f"{len(x86)}: {labels_x or '-'}", f"{len(arm)}: {labels_a or '-'}", diff, ok)


def _table(rows: list[Row]) -> str:
    head = Row("check", "x86 (faces: emotions)", "arm64 (faces: emotions)", "largest difference", True)
    widths = [max(len(getattr(r, f)) for r in [head, *rows]) for f in ("what", "x86", "arm64", "diff")]
    lines = []
    for r in [head, *rows]:
        verdict = "result" if r is head else ("PASS" if r.ok else "FAIL")
        cells = [r.what, r.x86, r.arm64, r.diff]
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + f" | {verdict:<6} |")
        if r is head:
            lines.append("|" + "|".join("-" * (w + 2) for w in [*widths, 6]) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except SetupError as exc:
        print(f"arm64_emulated: {exc}", file=sys.stderr)
        return 2
    except RunError as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "edge-fer-arm64", help="root cache")
    parser.add_argument("--suite", default="bookworm", help="Debian suite of the root (bookworm: Python 3.11)")
    parser.add_argument("--mirror", default="http://deb.debian.org/debian", help="Debian mirror for debootstrap")
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached root")
    parser.add_argument("--frames", type=int, default=10, help="daemon frames on the demo source (10)")
    parser.add_argument("--box-tol", type=float, default=2.0, help="largest box difference in px (2.0)")
    parser.add_argument("--score-tol", type=float, default=0.02, help="largest emotion score difference (0.02)")
    args = parser.parse_args(argv)
    if args.frames < 1:
        parser.error("--frames must be at least 1")
    if os.geteuid() != 0:
        print("arm64_emulated: needs root (debootstrap, chroot, binfmt_misc): run it with sudo", file=sys.stderr)
        return 2
    root = args.cache / f"root-{args.suite}-arm64"
    _ensure_binfmt()
    root_wall = _ensure_root(root, args.suite, args.mirror, args.fresh)
    (root / WORK.lstrip("/")).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _build_wheel(Path(tmp))
        install_wall = _install(root, wheel)
    photo = root / WORK.lstrip("/") / "astronaut.png"
    _write_photo(photo)

    daemon_args = ["--source", "demo", "--max-frames", str(args.frames), "--log-level", "warning"]
    for setting in DAEMON_SETTINGS:
        daemon_args += ["--set", setting]
    host_cli = str(Path(sys.executable).parent / "edge-fer")
    arm_cli = f"{VENV}/bin/edge-fer"
    walls: dict[str, tuple[float, float]] = {}
    outputs: dict[str, tuple[str, str]] = {}
    for name, argv_tail, photo_arg in (
        ("analyze", ["analyze", "--json"], True),
        (f"daemon, {args.frames} demo frames", daemon_args, False),
    ):
        x86_args = [*argv_tail, str(photo)] if photo_arg else argv_tail
        arm_args = [*argv_tail, f"{WORK}/astronaut.png"] if photo_arg else argv_tail
        print(f"x86: edge-fer {' '.join(x86_args)}", flush=True)
        x86_done, x86_wall = _run([host_cli, *x86_args], f"x86 {name}")
        print(f"arm64 (emulated, minutes): edge-fer {' '.join(arm_args)}", flush=True)
        arm_done, arm_wall = _in_root(root, [arm_cli, *arm_args], f"arm64 {name}")
        walls[name], outputs[name] = (x86_wall, arm_wall), (x86_done.stdout, arm_done.stdout)
        for side, done in (("x86", x86_done), ("arm64", arm_done)):  # warnings, e.g. onnxruntime's on the CPU
            for line in done.stderr.strip().splitlines()[-10:]:
                print(f"  {side} stderr: {line}", flush=True)

    rows = [_compare("analyze astronaut.png", *map(_analyze_faces, outputs["analyze"]), args.box_tol, args.score_tol)]
    daemon = outputs[f"daemon, {args.frames} demo frames"]
    x86_frames, arm_frames = (_daemon_faces(out, args.frames) for out in daemon)
    for i in range(args.frames):
        rows.append(_compare(f"daemon demo frame {i}", x86_frames[i], arm_frames[i], args.box_tol, args.score_tol))

    print()
    print(f"x86:   {sys.version.split()[0]}, {_versions([Path(p) for p in sys.path if p.endswith('site-packages')])}")
    arm_site = sorted((root / VENV.lstrip("/") / "lib").glob("python3*/site-packages"))
    print(f"arm64: {arm_site[0].parent.name if arm_site else '?'}, {_versions(arm_site)}")
    settings = " ".join(f"--set {s}" for s in DAEMON_SETTINGS)
    print(f"tolerances: box {args.box_tol} px, scores {args.score_tol}; the daemon ran with {settings}")
    print()
    print(_table(rows))
    print()
    print("wall times; arm64 ones are qemu-user EMULATION on this x86 machine, not arm64 device times:")
    if root_wall is not None:
        print(f"  debootstrap of the arm64 root (emulated second stage): {root_wall:.0f} s")
    print(f"  venv + pip install of the wheel in the arm64 root (emulated, downloads included): {install_wall:.0f} s")
    for name, (x86_wall, arm_wall) in walls.items():
        print(f"  {name}: x86 {x86_wall:.1f} s, arm64 emulated {arm_wall:.1f} s")
    failed = sum(not r.ok for r in rows)
    print()
    print(f"{'FAIL' if failed else 'PASS'}: {len(rows) - failed} of {len(rows)} checks agree")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
