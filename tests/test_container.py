"""The Dockerfile and compose.yaml agree with the project. These tests do NOT build or run an image (the
development machine had no Docker daemon): they check what can go stale without one, namely that every file
the Dockerfile copies is in the build context, that its dependency list is pyproject's with the headless
OpenCV, that it runs as a non-root user without TensorFlow, and that compose's files and config load."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from edge_fer.config.loading import load_config

ROOT = Path(__file__).resolve().parents[1]


def instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last:]


def test_every_file_the_dockerfile_copies_is_in_the_build_context():
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()]
    copies = [shlex.split(rest) for key, rest in instructions() if key == "COPY" and "--from" not in rest]
    assert copies
    for *sources, _ in copies:
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not any(Path(source).parts[0] == pattern for pattern in ignored), source


def test_the_image_installs_pyprojects_dependencies_with_headless_opencv_and_no_tensorflow():
    import tomllib

    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = sorted(d.replace("opencv-python", "opencv-python-headless") for d in wanted)
    runs = " ".join(rest for key, rest in final_stage() if key == "RUN")
    installed = sorted(re.findall(r'"([a-z][a-z0-9-]*[<>=!~][^"]*)"', runs))
    assert installed == sorted(re.sub(r"\s+#.*", "", d) for d in wanted)
    assert "tensorflow" not in runs and "--no-deps" in runs


def test_the_image_runs_the_daemon_as_a_non_root_user():
    stage = final_stage()
    users = [rest for key, rest in stage if key == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("ENTRYPOINT", '["edge-fer"]') in stage
    config = next(rest for key, rest in stage if key == "COPY" and rest.startswith("docker/edge-fer.yaml"))
    assert config.split()[-1] in next(rest for key, rest in stage if key == "CMD")


def test_compose_mounts_files_that_exist_and_a_config_that_loads():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"mosquitto", "edge-fer"}
    for service in services.values():
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            if host.startswith("./"):
                assert (ROOT / host).is_file(), host
    edge = services["edge-fer"]
    assert edge["build"] == "." and "/dev/video0:/dev/video0" in edge["devices"] and "video" in edge["group_add"]
    config = load_config(ROOT / "docker" / "edge-fer.yaml")
    assert config.mqtt.url == "mqtt://mosquitto:1883" and config.cameras[0].source == "/dev/video0"
