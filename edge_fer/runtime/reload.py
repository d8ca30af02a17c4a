"""SIGHUP (``systemctl reload edge-fer``): the config read again and applied between frames, without a restart.

An invalid config is refused with its problems listed, and the daemon goes on with the one it runs. A valid
one is applied with the least disruption, on the worker thread between two frames, so nothing else sees a
half-applied config:

- ``detector`` or ``classifier`` changed: a new analyzer is built (models loaded) before anything changes, then
  swapped in; if its models do not load, the whole reload is refused.
- ``tracking``, ``classifier.claim`` and ``events`` go to every camera's tracker and event policy in place: open
  tracks carry on.
- cameras are matched by name: a new one starts, a removed one stops (its open tracks end), a changed one
  restarts. A camera keeps its ``seq`` across all of it, even when removed and added back later, so consumers
  see one gapless stream per camera and run.
- The MQTT session, the preview, the metrics listener, recording and logging (``device``, ``mqtt``, ``http``,
  ``metrics``, ``output``, ``log_level``) are not touched: a change there is named in a warning and applies at
  the next restart.

One log line (and ``STATUS=``) says what changed. A storm of SIGHUPs is one pending reload: the signal only
sets an event, and the worker reads the file once per turn at most.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from edge_fer.config.settings import Config, ConfigError
from edge_fer.events import EventPolicy, ModelInfo
from edge_fer.vision.gated import make_gate
from edge_fer.vision.quality import ClaimRule

log = logging.getLogger("edge_fer.reload")

RESTART_ONLY = ("device", "mqtt", "http", "metrics", "output", "log_level", "log_repeat_window")
IN_PLACE = ("tracking", "events", "stats")


def _changed_keys(old: Any, new: Any, prefix: str) -> list[str]:
    """Dotted keys whose values differ between two dumps (lists compared whole)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            out += _changed_keys(old.get(key), new.get(key), f"{prefix}.{key}")
        return out
    return [] if old == new else [prefix]


class Reloader:
    """Owned by the daemon; :meth:`between_frames` is the pipeline's hook, called on its worker thread."""

    def __init__(
        self,
        pipeline,
        requested: threading.Event,
        load: Callable[[], Config],
        build_analyzer: Callable[[Config], Any],
        notifier=None,
    ) -> None:
        self.pipeline = pipeline
        self.requested = requested
        self.load = load
        self.build_analyzer = build_analyzer
        self.notifier = notifier
        self.applied = self.refused = 0
        self._retired: dict[str, EventPolicy] = {}  # removed cameras' policies: their seq goes on if they return

    def between_frames(self) -> None:
        if self.requested.is_set():
            self.requested.clear()  # signals from now on ask for the next reload
            self.reload()

    def reload(self) -> bool:
        """Read the config and apply it; False (and the running config kept) when it is refused."""
        log.info("reload: reading the config again (SIGHUP)")
        try:
            new = self.load()
        except ConfigError as exc:
            return self._refuse(exc.lines())
        except (ValueError, OSError) as exc:
            return self._refuse([str(exc)])
        pipeline = self.pipeline
        old: Config = pipeline.config
        said: list[str] = []
        later = [key for key in RESTART_ONLY if _dump(old, key) != _dump(new, key)]
        if later:
            log.warning("reload: %s changed; that applies at the next restart, not now", ", ".join(later))
            new = new.model_copy(update={key: getattr(old, key) for key in later})
        analyzer = None
        if _dump(old, "detector") != _dump(new, "detector") or _dump(old, "classifier") != _dump(new, "classifier"):
            try:
                analyzer = self.build_analyzer(new)  # the models load before anything is changed
            except Exception as exc:
                return self._refuse([f"the new detector/classifier settings do not load: {exc}"])
            said += _changed_keys(_dump(old, "detector"), _dump(new, "detector"), "detector")
            said += _changed_keys(_dump(old, "classifier"), _dump(new, "classifier"), "classifier")
        for key in IN_PLACE:
            said += _changed_keys(_dump(old, key), _dump(new, key), key)
        pipeline.config = new
        if analyzer is not None:
            self._swap_analyzer(analyzer)
        claim = ClaimRule.from_settings(new.classifier.claim)
        for cam in pipeline.cameras:
            cam.tracker.config, cam.tracker.claim, cam.policy.config = new.tracking, claim, new.events
        said += self._cameras(old, new)
        self.applied += 1
        text = "reload: applied: " + ("; ".join(said) if said else "nothing changed")
        log.info("%s", text)
        if self.notifier is not None:
            self.notifier.status(text)
        return True

    def _refuse(self, lines: list[str]) -> bool:
        self.refused += 1
        for line in lines:
            log.error("reload: %s", line)
        log.error("reload refused: the config has %d problem(s); still running on the previous one", len(lines))
        if self.notifier is not None:
            self.notifier.status("reload refused: still running on the previous config (see the log)")
        return False

    def _swap_analyzer(self, analyzer) -> None:
        pipeline = self.pipeline
        previous = pipeline.analyzer
        pipeline.analyzer = analyzer
        classifier = analyzer.classifier
        pipeline.model = ModelInfo(name=classifier.name, sha256=classifier.sha256_id)
        for cam in pipeline.cameras:
            cam.policy.model = pipeline.model
            cam.gate = make_gate(analyzer.detector, pipeline.config.detector)
        for policy in self._retired.values():
            policy.model = pipeline.model
        close = getattr(previous.detector, "close", None)
        if close is not None:
            close()

    def _cameras(self, old: Config, new: Config) -> list[str]:
        pipeline = self.pipeline
        before = {c.safe_name: c for c in old.cameras}
        after = {c.safe_name: c for c in new.cameras}
        said = []
        for name, cam in after.items():  # new ones first: the pipeline never runs with no camera
            if name not in before:
                pipeline.add_camera(cam, self._retired.pop(name, None))
                said.append(f"camera {name} added")
        for name, cam in before.items():
            if name not in after:
                self._retired[name] = pipeline.remove_camera(name).policy
                said.append(f"camera {name} removed")
            elif cam.model_dump() != after[name].model_dump():
                policy = pipeline.remove_camera(name).policy
                pipeline.add_camera(after[name], policy)
                keys = _changed_keys(cam.model_dump(mode="json"), after[name].model_dump(mode="json"), name)
                said.append(f"camera {name} restarted ({', '.join(k.split('.', 1)[1] for k in keys)})")
        return said


def _dump(config: Config, key: str) -> Any:
    value = getattr(config, key)
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value
