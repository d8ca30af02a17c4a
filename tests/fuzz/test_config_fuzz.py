"""Fuzzed configs: valid documents mutated at random (wrong types, out-of-range numbers, unknown and misspelt
keys, nested garbage, odd strings and unicode, deep nesting, YAML tricks, broken text). Loading one gives a
valid Config or a ConfigError whose every problem names where it is: the key path at fault (``cameras[0].fps``)
or, for a document YAML itself cannot read, the line. Never another exception.

``EDGE_FER_FUZZ_EXAMPLES`` sets the number of documents (default 300); the issue's check is 10,000::

    EDGE_FER_FUZZ_EXAMPLES=10000 python -m pytest -q tests/fuzz/test_config_fuzz.py -k load
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edge_fer.cli import main
from edge_fer.config.loading import load_config
from edge_fer.config.settings import Config, ConfigError
from edge_fer.config.source import path_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("EDGE_FER_FUZZ_EXAMPLES", "300"))
ENVIRON = {"HOME": "/root", "CAM_URL": "rtsp://cam:pw@10.0.0.5/live", "FPS": "15", "EMPTY": ""}

SAMPLE = yaml.safe_load((ROOT / "config/edge-fer.yaml").read_text())
BASES: list[dict] = [
    SAMPLE,
    {"cameras": [{"name": "door", "source": "demo", "fps": 15}]},
    {
        "device": "kitchen",
        "cameras": [
            {"name": "a", "source": "demo:2", "reconnect": {"initial_delay": 1, "max_delay": 5}},
            {"name": "b", "source": "0", "width": 640, "height": 480, "fourcc": "MJPG"},
        ],
        "events": {"mode": "every_frame"},
        "mqtt": {"url": "mqtt://edge@127.0.0.1:1883", "keepalive": 10, "tls": {"enabled": False}},
        "http": {"enabled": True, "port": 0, "token": "abc"},
        "output": {"video": {"path": "video", "segment_mb": 5}},
    },
]

ODD_STRINGS = [
    "", " ", "~", "~nosuchuser/x.onnx", "/", "/dev/null", "/proc/self/mem", "..", "../../etc/passwd",
    "${HOME}", "${NOT_SET}", "${EMPTY}", "${EMPTY:-x}", "${cred:nope}", "${cred:../../etc/passwd}", "$${FPS}",
    "${}", "${FPS", "${CAM_URL}", "mqtt://u:p@h:1", "mqtts://[::1]:8883", "mqtt://h:0", "http://x/s.mjpg",
    "rtsp://a:b@c/d", "demo", "demo:0", "demo:99", "-1", "0x10", "1e400", "nan", "-inf", "yes", "on", "null",
    "a\x00b", "\x00", "\t", "\r\n", "\u202e\u0041", "\ufeff", "é", "名前", "😀" * 8, "x" * 3000, "MJPG", "YUYVX",
    "tracks", "every_frame", "3.1.1", "5", "similarity", "auto",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2, 65535, 65536, 240, 241, 7680, 10**7, 2**31, 2**63, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 1e300, 0.5, 0.999, 1.0, 1.0001]),
    st.text(max_size=20),
    st.sampled_from(ODD_STRINGS),
)
keys = st.one_of(st.text(max_size=12), st.sampled_from(["name", "source", "fps", "url", "enabled", "<<", "mode"]))
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


def nested(depth: int, kind: str) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


deep = st.builds(nested, st.integers(1, 120), st.sampled_from(["list", "map"]))
values = st.one_of(junk, junk, junk, deep)


def locations(node: Any, loc: tuple = ()) -> list[tuple]:
    """Every key path in a document (containers too), root excluded."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((*loc, key))
            found += locations(value, (*loc, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.append((*loc, i))
            found += locations(value, (*loc, i))
    return found


def parent_of(doc: Any, loc: tuple) -> Any:
    node = doc
    for part in loc[:-1]:
        node = node[part]
    return node


@st.composite
def mutated(draw) -> tuple[Any, list[tuple]]:
    """A base config with 1-4 mutations, and where each one was made."""
    doc = yaml.safe_load(yaml.safe_dump(draw(st.sampled_from(BASES))))  # a deep copy
    where: list[tuple] = []
    for _ in range(draw(st.integers(1, 4))):
        locs = locations(doc)
        op = draw(st.sampled_from(["replace", "replace", "delete", "add", "rename", "wrap", "stringify"]))
        if op == "add" or not locs:
            containers = [()] + [loc for loc in locs if isinstance(parent_of(doc, (*loc, 0)), (dict, list))]
            loc = draw(st.sampled_from(containers))
            node = parent_of(doc, (*loc, 0))
            if isinstance(node, dict):
                key = draw(keys)
                node[key] = draw(values)
                where.append((*loc, key))
            else:
                node.append(draw(values))
                where.append((*loc, len(node) - 1))
            continue
        loc = draw(st.sampled_from(locs))
        parent, last = parent_of(doc, loc), loc[-1]
        if op == "replace":
            parent[last] = draw(values)
        elif op == "delete":
            del parent[last]
        elif op == "rename" and isinstance(parent, dict):
            new = draw(st.one_of(keys, st.just(str(last).upper()), st.just(str(last)[:-1]), st.just(f"{last}s")))
            parent[new] = parent.pop(last)
            loc = (*loc[:-1], new)
        elif op == "wrap":
            parent[last] = draw(st.sampled_from([[parent[last]], {"value": parent[last]}]))
        elif op == "stringify":
            parent[last] = yaml.safe_dump(parent[last], default_flow_style=True).strip()
        where.append(loc)
        if not isinstance(doc, dict):
            break
    if draw(st.integers(0, 20)) == 0:
        doc = draw(values)  # the whole document replaced: a list, a number, garbage
        where = [()]
    return doc, where


INSERTS = [*":-[]{}&*!|>'\"%@`#,?\n\t\\", "\x00", "\x85", "\ufeff"]


def text_edits(text: str, data) -> str:
    """Damage the YAML text itself: cut it, insert characters, repeat or indent a line, add a tab."""
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["cut", "insert", "repeat", "indent", "tab"]))
        lines = text.splitlines() or [""]
        if op == "cut":
            text = text[: data.draw(st.integers(0, len(text)))]
        elif op == "insert":
            at = data.draw(st.integers(0, len(text)))
            text = text[:at] + data.draw(st.sampled_from(INSERTS)) + text[at:]
        else:
            i = data.draw(st.integers(0, len(lines) - 1))
            extra = {"repeat": lines[i], "indent": "   " + lines[i], "tab": "\t" + lines[i]}[op]
            lines.insert(i + 1, extra)
            text = "\n".join(lines) + "\n"
    return text


def all_keys(node: Any) -> set:
    if isinstance(node, dict):
        return set(map(repr, node)).union(*(all_keys(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(all_keys(v) for v in node))
    return set()


DOCUMENT_LEVEL = ("invalid YAML", "the top level must be a mapping", "the file has no settings", "cannot read")


def check(text: str, where: list[tuple] | None, path: Path) -> ConfigError | Config:
    """Load ``text``; a Config, or a ConfigError whose problems each name their place. Anything else fails."""
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        config = load_config(path, environ=ENVIRON)
    except ConfigError as exc:
        assert exc.items, "a ConfigError lists its problems"
        for problem in exc.items:
            assert "Traceback" not in problem.message and problem.message.strip()
            if not problem.path:
                assert problem.message.startswith(DOCUMENT_LEVEL), f"a problem without a place: {problem}"
                assert problem.line is not None or problem.message.startswith(DOCUMENT_LEVEL[2:]), str(problem)
                continue
            if where is not None and () not in where:
                sections = {path_text(loc[:1]) for loc in where}
                assert any(problem.path == s or problem.path.startswith((f"{s}.", f"{s}[")) for s in sections), (
                    f"{problem} is not where the document was changed ({sorted(map(str, where))})"
                )
        return exc
    config.model_dump(mode="json")
    return config


@pytest.mark.parametrize("base", range(len(BASES)))
def test_the_bases_are_valid(tmp_path, base):
    assert isinstance(check(yaml.safe_dump(BASES[base]), None, tmp_path / "c.yaml"), Config)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=mutated(), data=st.data(), damage=st.integers(0, 5))
def test_load_config_on_fuzzed_documents_never_raises_anything_else(case, data, damage):
    doc, where = case
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=data.draw(st.booleans()))
    if all_keys(yaml.safe_load(text)) != all_keys(doc):
        where = None  # PyYAML wrote a key it reads back differently (U+0085 is a YAML line break): no map
    if damage == 0:
        text, where = text_edits(text, data), None  # the text itself is broken: the line is all we can ask
    with tempfile.TemporaryDirectory() as tmp:
        result = check(text, where, Path(tmp) / "edge-fer.yaml")
        event("valid" if isinstance(result, Config) else f"{'several' if len(result.items) > 1 else 'one'} problem(s)")
        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # strict, like a real UTF-8 stdout
        err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["check-config", str(Path(tmp) / "edge-fer.yaml")])
            out.flush(), err.flush()
        assert code == (0 if isinstance(result, Config) else 78)


ALIAS_BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else 'x'}]\n"
    for prev, name in zip([None, "a", "b", "c", "d", "e", "f", "g"], "abcdefgh")
)
# name: (document, the problem it must give: "path: words", or None for a valid config)
YAML_TRICKS = {
    "deep_list": ("device: " + "[" * 3000 + "]" * 3000 + "\n", "device[0][0]"),
    "deep_map": ("device: " + "{a: " * 2000 + "1" + "}" * 2000 + "\n", "device.a.a.a"),
    "self_alias": ("cameras: &c [*c]\n", "cameras[0]: an alias (*name) refers to the value that contains it"),
    "alias_bomb": (ALIAS_BOMB + "classifier:\n  models: *h\n", "classifier: expands to"),
    "python_tag": ("device: !!python/object/apply:os.system [echo hi]\n", "could not determine a constructor"),
    "binary": ("device: !!binary aGVsbG8=\n", None),
    "set": ("cameras: !!set {a, b}\n", "cameras[0]: Input should be a valid dictionary"),
    "timestamp": ("device: 2001-12-14t21:59:43.10-05:00\n", "device: Input should be a valid string"),
    "merge_key": ("cameras:\n  - &cam {name: a, source: demo}\n  - {<<: *cam, name: b}\n", None),
    "complex_key": ("? [a, b]\n: c\n", "found unhashable key"),
    "int_key": ("1: 2\n", "[1]: Keys should be strings"),
    "empty_key": ('"": 2\n', '"": unknown key'),
    "lone_surrogate": ('device: "\\ud800"\n', "device: contains an invalid Unicode escape"),
    "nul_escape": ('device: "a\\0b"\n', "device: contains a NUL character"),
    "nul_in_path": ('output:\n  video:\n    path: "v\\0ideo"\n', "output.video.path: contains a NUL character"),
    "raw_nul": ("device: a\x00b\n", "line 1, column 10: invalid YAML"),
    "unknown_home": ("classifier:\n  models: [~nosuchuser/m.onnx]\n", "classifier.models[0]: cannot expand"),
    "huge_int": ("cameras:\n  - source: 100000000000000000000000000000\n", None),
    "huge_float": ("detector:\n  min_face_size: 1e400\n", "detector.min_face_size: Input should be a finite number"),
    "bom": ("\ufeffdevice: x\n", None),
    "only_comments": ("# nothing\n", "the file has no settings"),
    "tabs": ("cameras:\n\t- source: demo\n", "line 2, column 1: invalid YAML"),
    "document_stream": ("device: a\n---\ndevice: b\n", "expected a single document"),
    "duplicate_keys": ("device: a\ndevice: b\n", "device: duplicate key (first at line 1)"),
    "duplicate_odd_key": ('"a[": 1\n"a[": 2\n', "a[: duplicate key (first at line 1)"),
    "nul_under_odd_key": ('"x.y": "\\0"\n', "x.y: contains a NUL character"),
}


@pytest.mark.parametrize("name", list(YAML_TRICKS))
def test_yaml_tricks_are_config_errors_naming_their_place_or_configs(tmp_path, name):
    text, expected = YAML_TRICKS[name]
    result = check(text, None, tmp_path / "edge-fer.yaml")
    if expected is None:
        assert isinstance(result, Config)
    else:
        assert isinstance(result, ConfigError) and expected in "\n".join(result.problems), result.problems


CLI_EXAMPLES = max(10, EXAMPLES // 15)


@pytest.mark.slow
@settings(max_examples=CLI_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=mutated(), damage=st.integers(0, 3))
def test_check_config_process_on_fuzzed_files_exits_0_or_78_without_a_traceback(case, damage):
    doc, _ = case
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    if damage == 0:
        text = text[: len(text) // 2] + "]\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "edge-fer.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        proc = subprocess.run(
            [sys.executable, "-m", "edge_fer", "check-config", str(path)],
            capture_output=True,
            timeout=60,
            env={**os.environ, **ENVIRON},
        )
    assert proc.returncode in (0, 78), proc.stderr.decode(errors="replace")
    assert b"Traceback" not in proc.stdout + proc.stderr
    if proc.returncode == 78:
        assert proc.stderr.strip().splitlines()[-1].endswith(b"nothing was started")
