"""The three JSON payloads edge-fer publishes, as pydantic models: the one definition of the contract.

``edge_fer/schema/*.schema.json`` are generated from these (``python -m edge_fer.schema``) and a test
checks that the shipped files equal the generated ones, so the schema a consumer reads and the words the
code uses (:class:`~edge_fer.events.EventType`, ``TS_PATTERN``) cannot drift apart. The models describe
the JSON; the producers (``FaceEvent.to_dict``, ``CameraState``, the stats snapshot) are tested against it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from edge_fer.events import SCHEMA_VERSION, TS_PATTERN, EventType

Count = Annotated[int, Field(ge=0)]
Rate = Annotated[float, Field(ge=0)]
Share = Annotated[float, Field(ge=0, le=1)]
Name = Annotated[str, Field(min_length=1)]
Timestamp = Annotated[str, Field(pattern=TS_PATTERN)]
Latency = Annotated[
    float | None,
    Field(ge=0, description="Milliseconds from capture to the event reaching the sinks; null before the first "
                            "processed frame."),
]  # fmt: skip
SchemaVersion = Annotated[Literal[1], Field(description="Version of this payload.")]
RUN_ID = "New at each process start; the same run_id as in the face events."
assert SCHEMA_VERSION == 1, "a new payload version needs a new SchemaVersion literal"


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelRef(_Closed):
    name: Name
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{8,64}$")]


_END_ONLY = {
    "if": {"properties": {"type": {"const": EventType.END.value}}},
    "then": {"required": ["duration", "dominant_emotion"]},
    "else": {"not": {"anyOf": [{"required": ["duration"]}, {"required": ["dominant_emotion"]}]}},
}


class FaceEventPayload(_Closed):
    model_config = ConfigDict(
        title="edge-fer face event",
        json_schema_extra=_END_ONLY,
    )
    __doc__ = (
        "One per-face event as published on stdout (one JSON object per line) and MQTT. Produced by "
        "edge_fer.events.FaceEvent.to_dict."
    )

    schema_: SchemaVersion = Field(alias="schema")
    device: Name = Field(description="Name of the machine (config 'device', default the host name).")
    camera: Name = Field(description="Camera name from the config.")
    run_id: Name = Field(description="New at each process start; seq starts over with it.")
    seq: Count = Field(description="Per camera and run: 0, 1, 2... with no gaps, so a consumer can count lost events.")
    ts: Timestamp = Field(description="Capture time of the frame, ISO-8601 UTC with milliseconds.")
    frame: Count = Field(description="Index of the frame in the camera's capture (counts skipped frames too).")
    track_id: Count = Field(
        description="Track id, unique per camera and run, from 1; 0 in 'face' events for a face not (yet) in a "
        "confirmed track."
    )
    type: EventType = Field(
        description="start, update, change and end describe tracks (mode 'tracks'); face is one raw result "
        "(mode 'every_frame')."
    )
    box: tuple[float, float, Rate, Rate] = Field(description="Face box in pixels: x, y (top-left), width, height.")
    det_score: Share = Field(description="Detector confidence.")
    emotion: Name = Field(description="Published label (tracks: smoothed, with hysteresis; face: the raw winner).")
    confidence: Share = Field(description="Probability of 'emotion' (smoothed for tracks).")
    scores: dict[str, Share] = Field(
        min_length=1, description="One probability per label of the model, in the model's label order."
    )
    model: ModelRef = Field(
        description="The emotion model: its name (members joined by + for an ensemble) and its 12-digit identity "
        "(edge_fer.vision.emotion.model_identity: the start of the file's sha256; for an ensemble, of the "
        "sha256 of its members' sha256 joined by + in order)."
    )
    duration: Rate = Field(None, description="end only: seconds from the first to the last sighting.")
    dominant_emotion: Name = Field(
        None, description="end only: the published label that held longest over the track's life."
    )
    quality: Share = Field(
        None,
        description="How fit the face is to be judged, 0 (unfit) to 1 (as the training data): size, sharpness, "
        "light, head pose and detection score (edge_fer.vision.quality). Tracks: the moving average over the "
        "track's faces. Optional: absent from events of earlier versions.",
    )
    claim: bool = Field(
        None,
        description="false: edge-fer abstains on this face or track (quality or confidence below the "
        "classifier.claim rule); 'emotion' is then the top class for reference only and should not be acted "
        "on. Absent means true (events of earlier versions).",
    )


class CameraStatePayload(_Closed):
    model_config = ConfigDict(title="edge-fer camera state")
    __doc__ = (
        "Retained summary of one camera on <prefix>/<device>/<camera>/state: the faces present now and their "
        "dominant emotion. Published when it changes; an empty retained message clears it on a clean shutdown. "
        "Produced by edge_fer.outputs.mqtt.state.CameraState."
    )

    schema_: SchemaVersion = Field(alias="schema")
    device: Name = Field(description="Name of the machine (config 'device').")
    camera: Name = Field(description="Camera name from the config.")
    run_id: Name = Field(description=RUN_ID)
    faces: Count = Field(description="Number of faces present now.")
    dominant_emotion: Annotated[str, Field(min_length=1)] | None = Field(
        description="The emotion most present faces show (ties: higher summed confidence), among the faces "
        "edge-fer claims (claim not false); null when no such face is present."
    )
    emotions: dict[str, Annotated[int, Field(ge=1)]] = Field(
        description="Number of present faces per emotion label, counting only faces edge-fer claims; empty when "
        "there are none. 'faces' counts every face, claimed or not."
    )
    since: Timestamp = Field(
        description="When dominant_emotion took its current value (null included), ISO-8601 UTC with milliseconds."
    )
    updated: Timestamp = Field(
        description="When this summary was computed: the capture time of the event that changed it, or the wall "
        "clock when a face timed out."
    )


class CameraStats(BaseModel):
    model_config = ConfigDict(extra="allow")

    captured: Count = Field(description="Frames read from the source since start.")
    processed: Count = Field(description="Frames that went through detection and classification.")
    skipped: Count = Field(description="Frames skipped on purpose (detect_every, max_fps).")
    dropped: Count = Field(description="Frames dropped because inference was busy (queue full).")
    fps_capture: Rate = Field(description="Frames per second read over the last interval.")
    fps_processed: Rate = Field(description="Frames per second processed over the last interval.")
    latency_ms_p50: Latency
    latency_ms_p95: Latency
    faces: Count = Field(description="Faces present now.")
    state: Name = Field(
        description="Camera connection state, as on the camera's status topic (connected, reconnecting, failed, "
        "ended, ...)."
    )


class MqttSnapshotStats(_Closed):
    queued: Count = Field(description="Snapshots handed to the outbox (from an earlier run's file included).")
    acked: Count = Field(description="Snapshots acknowledged by the broker.")
    dropped: Count = Field(description="Oldest snapshots dropped because their share of the outbox was full.")
    waiting: Count = Field(description="Snapshots not delivered yet: queued, or sent and not yet acknowledged.")
    too_large: Count = Field(description="Snapshots over output.snapshots.publish_max_kb, never published.")


class MqttStats(_Closed):
    connected: bool = Field(description="Connected to the broker now.")
    published: Count = Field(description="Messages handed to the connection, re-sends included.")
    acked: Count = Field(0, description="Messages acknowledged by the broker (QoS 1/2) or written (QoS 0).")
    buffered: Count = Field(description="Messages waiting: not yet sent, or sent and not yet acknowledged.")
    inflight: Count = Field(0, description="Messages sent and not yet acknowledged.")
    dropped: Count = Field(description="Oldest messages dropped because the offline buffer was full.")
    failed: Count = Field(0, description="Messages refused by the broker or unpublishable.")
    resent: Count = Field(0, description="Messages sent again after a reconnect (a subscriber may see these twice).")
    connects: Count = Field(0, description="Successful connections since start.")
    connect_failures: Count = Field(0, description="Connection attempts that failed or were refused.")
    last_error: str | None = Field(None, description="The last connection problem, null while connected.")
    snapshots: MqttSnapshotStats | None = Field(
        None, description="Snapshot publishing (output.snapshots.publish); absent when it is off."
    )


class StatsPayload(BaseModel):
    model_config = ConfigDict(extra="allow", title="edge-fer stats")
    __doc__ = (
        "Periodic statistics on <prefix>/<device>/stats (not retained). The fields listed under 'required' are "
        "the stable core; new fields may be added at the top level and inside each camera entry, so consumers "
        "must ignore keys they do not know."
    )

    schema_: SchemaVersion = Field(None, alias="schema")
    device: Name = Field(description="Name of the machine (config 'device').")
    run_id: Name = Field(description=RUN_ID)
    ts: Timestamp = Field(description="When these stats were taken, ISO-8601 UTC with milliseconds.")
    uptime_s: Rate = Field(description="Seconds since the process started.")
    cameras: dict[str, CameraStats] = Field(description="One entry per camera, keyed by camera name.")
    mqtt: MqttStats | None = Field(
        description="The MQTT publisher's counters since start; null when MQTT is not configured."
    )
