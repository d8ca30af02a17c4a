"""``edge-fer analyze VIDEO``: the daemon's pipeline over a whole recording, as fast as the CPU allows.

The pieces are the daemon's own: the capture thread decodes ahead on its own thread (a file waits for
queue room, so no frame is lost), the analyzer runs gated detection with a full scan at the daemon's
interval, the tracker smooths and publishes on the file's own timeline (frame index / fps), as the daemon
does for a file read with ``realtime: false``. So the table agrees with the daemon's ``every_frame`` events
on the same file, frame by frame.

A file that ends early (cut off, or with a broken stretch FFmpeg skips) is told apart from a complete one by
comparing the frames decoded with the count in its header; the rows of the frames analysed stay written.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from edge_fer.capture import ENDED, FAILED, CaptureThread, FileSource, FrameQueue, UrlSource
from edge_fer.capture.opencv_source import cut_off
from edge_fer.config.settings import DetectorSettings, ReconnectSettings, TrackingSettings
from edge_fer.offline import timeline
from edge_fer.offline.inputs import Input
from edge_fer.offline.progress import Progress
from edge_fer.offline.table import FrameTable, TrackLog, TrackSummary, frame_rows
from edge_fer.tracking.tracker import Tracker
from edge_fer.vision.gated import make_gate

QUEUE_SIZE = 8  # frames decoded ahead of inference


class VideoError(Exception):
    """The video cannot be analysed at all; one line naming it."""


@dataclass(frozen=True, slots=True)
class VideoOptions:
    out_dir: Path
    csv: bool = True
    jsonl: bool = True
    annotate_dir: Path | None = None
    max_pixels: int = 40_000_000
    max_frames: int | None = None
    progress: IO[str] | None = None  # where the progress bar goes; None: no bar


@dataclass(slots=True)
class VideoResult:
    """What happened: ``problem`` is one line when the video ended early (cut off, corrupt, stream lost)."""

    name: str
    width: int = 0
    height: int = 0
    fps: float | None = None
    frames: int = 0  # processed
    expected_frames: int | None = None  # what the container says
    duration_s: float = 0.0
    elapsed_s: float = 0.0
    rows: int = 0
    tracks: list[TrackSummary] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    problem: str | None = None
    interrupted: bool = False

    def to_dict(self) -> dict:
        return {
            "video": self.name,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "frames": self.frames,
            "expected_frames": self.expected_frames,
            "duration_s": round(self.duration_s, 3),
            "elapsed_s": round(self.elapsed_s, 3),
            "rows": self.rows,
            "complete": self.problem is None and not self.interrupted,
            "problem": self.problem,
            "tracks": [t.to_dict() for t in sorted(self.tracks, key=lambda t: t.track_id)],
            "files": self.files,
        }


def stem_of(item: Input) -> str:
    """A file-name stem for the outputs: the file's own, or the stream's host and path."""
    if item.kind != "url":
        return Path(item.name).stem or "video"
    rest = item.name.split("://", 1)[1].split("?", 1)[0].rsplit("@", 1)[-1]
    return re.sub(r"[^A-Za-z0-9.-]+", "-", rest).strip(".-")[:80] or "stream"


def probe(path: str, max_pixels: int) -> tuple[int, int, float | None, int | None]:
    """Width, height, frame rate and frame count from the container, before any frame is analysed."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own lines would bypass the one-line errors
    import cv2

    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise VideoError(f"{path}: FFmpeg cannot open it (not a video, or cut off before its header)")
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()
    if width <= 0 or height <= 0:
        raise VideoError(f"{path}: the container states no picture size; is it a video file?")
    if width * height > max_pixels:
        raise VideoError(
            f"{path}: {width}x{height} frames exceed --max-pixels {max_pixels}; raise the limit to read it"
        )
    return width, height, (fps if 0.5 <= fps <= 1000 else None), (count if count > 0 else None)


class VideoAnalysis:
    """Runs one video at a time through the analyzer, a fresh tracker and the writers."""

    def __init__(self, analyzer, detector: DetectorSettings, tracking: TrackingSettings, stop: threading.Event):
        self.analyzer, self.detector, self.tracking, self.stop = analyzer, detector, tracking, stop

    def run(self, item: Input, opts: VideoOptions, stem: str) -> VideoResult:
        result = VideoResult(item.name)
        if item.kind == "url":
            source = UrlSource(item.name)
        else:
            result.width, result.height, result.fps, result.expected_frames = probe(item.name, opts.max_pixels)
            source = FileSource(item.name, realtime=False, check_length=False)  # reported below, as one line
        files = {
            "frames_csv": opts.out_dir / f"{stem}.frames.csv" if opts.csv else None,
            "frames_jsonl": opts.out_dir / f"{stem}.frames.jsonl" if opts.jsonl else None,
            "tracks_csv": opts.out_dir / f"{stem}.tracks.csv",
            "timeline_png": opts.out_dir / f"{stem}.timeline.png",
        }
        if opts.annotate_dir is not None:
            files["annotated_avi"] = opts.annotate_dir / f"{stem}.avi"
        result.files = {k: str(v) for k, v in files.items() if v is not None}
        table = FrameTable(files["frames_csv"], files["frames_jsonl"])
        try:
            log, last_t = self._loop(source, opts, table, result, files.get("annotated_avi"))
        finally:
            table.close()
        if result.frames == 0 and result.problem is not None:  # never opened: leave no empty results behind
            for key in ("frames_csv", "frames_jsonl"):
                if files[key] is not None:
                    files[key].unlink(missing_ok=True)
            result.files = {}
            return result
        result.rows = table.rows
        result.tracks = log.summaries
        result.duration_s = max(result.duration_s, last_t)
        log.write_summary(files["tracks_csv"])
        count = len(log.runs)
        title = f"{item.name}: {count} track{'' if count == 1 else 's'} over {result.duration_s:.1f} s"
        timeline.write(files["timeline_png"], log, result.duration_s, title)
        return result

    def _loop(self, source, opts: VideoOptions, table: FrameTable, result: VideoResult, annotated: Path | None):
        import time

        from edge_fer.outputs.annotate import annotate, faces_for_annotation

        stop = threading.Event()  # this video's: the process-wide one ends every video
        live = source.is_live
        capture = CaptureThread(
            "analyze",
            source,
            stop,
            queue=FrameQueue(QUEUE_SIZE),
            policy="wait",  # a stream too: every frame it sends is analysed, none dropped for freshness
            stall_timeout=10.0 if live else None,
            # No reconnect: a stream that ends is the end of the recording (an HTTP file would start over).
            reconnect=ReconnectSettings(max_attempts=1) if live else None,
        )
        tracker, gate = Tracker(self.tracking), make_gate(self.analyzer.detector, self.detector)
        log = TrackLog(gap_s=max(0.5, self.tracking.max_age))
        bar = Progress(opts.progress, Path(result.name).name, result.expected_frames) if opts.progress else None
        writer, t0, last_t = None, None, 0.0
        started = time.monotonic()
        capture.start()
        try:
            while True:
                if self.stop.is_set():
                    result.interrupted = True
                    break
                frame = capture.queue.get(timeout=0.25)
                if frame is None:
                    if capture.queue.exhausted:
                        break
                    continue
                try:
                    image = frame.image
                    if image.shape[0] * image.shape[1] > opts.max_pixels:
                        result.problem = f"{result.name}: a {frame.width}x{frame.height} frame exceeds --max-pixels"
                        break
                    # The recording's own timeline (index / rate), as the daemon runs a file read unpaced;
                    # capture time only for a stream that states no rate.
                    fps = source.fps
                    t0 = frame.t_mono if t0 is None else t0
                    t = frame.index / fps if fps else frame.t_mono - t0
                    detect = None if gate is None else (lambda img, t=t: gate.detect(img, t))
                    faces = list(self.analyzer.analyze(image, detect).faces)
                    update = tracker.update(faces, t, frame.index)
                    table.write(frame_rows(t, faces, update))
                    log.add(t, update)
                    if annotated is not None:
                        writer = writer or _AviWriter(annotated, (frame.width, frame.height), fps or 30.0)
                        writer.write(annotate(image, faces_for_annotation(faces, update)))
                    last_t = t
                    result.frames += 1
                    result.width, result.height, result.fps = frame.width, frame.height, fps
                    if bar is not None:
                        bar.update(result.frames)
                finally:
                    capture.queue.mark_processed()
                if opts.max_frames is not None and result.frames >= opts.max_frames:
                    break
        finally:
            stop.set()
            capture.join(timeout=5.0)
            if writer is not None:
                writer.close()
            if bar is not None:
                bar.finish(result.frames)
        result.elapsed_s = time.monotonic() - started
        if result.fps:
            result.duration_s = result.frames / result.fps
        log.add(last_t, tracker.flush(last_t))
        ended_at_end = opts.max_frames is None or result.frames < opts.max_frames
        if result.problem is None and not result.interrupted and ended_at_end:
            result.problem = self._ending_problem(capture, result)
        return log, last_t

    @staticmethod
    def _ending_problem(capture: CaptureThread, result: VideoResult) -> str | None:
        if capture.state == FAILED and capture.source.is_live and result.frames > 0:
            return None  # a stream has no length to fall short of: its end is the end
        if capture.state == FAILED:
            detail = capture.detail
            return detail if result.name in detail else f"{result.name}: {detail}"
        if capture.state == ENDED:
            return cut_off(result.name, result.frames, result.expected_frames)
        return None


class _AviWriter:
    """The annotated video: MJPEG in AVI, the container the daemon's recordings use, playable if cut short."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float) -> None:
        import cv2

        path.parent.mkdir(parents=True, exist_ok=True)
        self.size = size
        self._writer = cv2.VideoWriter(str(path), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
        if not self._writer.isOpened():
            raise OSError(f"{path}: cannot be written; check the --annotate directory")

    def write(self, image) -> None:
        import cv2

        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)

    def close(self) -> None:
        self._writer.release()
