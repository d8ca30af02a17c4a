// edge-fer preview: refreshes stats every second, events and the emotion timeline every two seconds.
// Everything from the server is written with textContent, never parsed as HTML.
"use strict";
(() => {
  const query = document.body.dataset.query || "";
  const camerasEl = document.getElementById("cameras");
  const statusEl = document.getElementById("status");

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  function fmt(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "number") {
      if (Number.isInteger(value)) return String(value);
      return value.toFixed(Math.abs(value) >= 100 ? 0 : 1);
    }
    if (Array.isArray(value)) return value.map(fmt).join(", ");
    if (typeof value === "object") return Object.entries(value).map(([k, v]) => `${k} ${fmt(v)}`).join(" · ");
    return String(value);
  }

  function fillList(dl, entries) {
    dl.replaceChildren(...entries.flatMap(([key, value]) => [el("dt", key), el("dd", fmt(value))]));
  }

  function section(name) {
    for (const existing of camerasEl.querySelectorAll("section.camera")) {
      if (existing.dataset.camera === name) return existing;
    }
    const created = el("section", null, "camera");
    created.dataset.camera = name;
    const canvas = el("canvas", null, "timeline");
    canvas.setAttribute("aria-label", `emotions of ${name} over time`);
    created.append(el("h2", name), canvas, el("p", null, "mood"), el("dl", null, "camera-stats"), el("ul", null, "faces"));
    camerasEl.append(created);
    return created;
  }

  function ensureStream(sec, name) {
    if (sec.querySelector("img.stream")) return;
    const img = el("img", null, "stream");
    img.alt = `live view of ${name}`;
    img.src = `/stream/${encodeURIComponent(name)}.mjpg${query}`;
    sec.querySelector("h2").after(img);
  }

  function faceText(face) {
    if (face === null || typeof face !== "object") return fmt(face);
    const id = face.track_id ?? face.id;
    const emotion = face.emotion ?? face.label ?? "?";
    const confidence = typeof face.confidence === "number" ? ` ${Math.round(face.confidence * 100)}%` : "";
    return `${id === undefined ? "" : `#${id} `}${emotion}${confidence}`;
  }

  // Stats follow edge_fer/schema/stats.schema.json; unknown keys are shown as they come.
  const SHOWN = ["fps_processed", "fps", "latency_ms_p50", "latency_ms_p95", "latency_ms", "faces", "tracks"];

  function showStats(stats) {
    const pipeline = stats.pipeline || {};
    const cams = pipeline.cameras || {};
    const preview = stats.preview || {};
    const streams = preview.cameras || {};
    const facesNow = preview.faces || {};
    for (const name of new Set([...Object.keys(streams), ...Object.keys(cams)])) {
      const sec = section(name);
      if (name in streams) ensureStream(sec, name);
      const cam = cams[name] || {};
      const faces = Array.isArray(cam.tracks) ? cam.tracks : facesNow[name] || [];
      const percentiles = cam.latency_ms_p50 !== undefined;
      const entries = [
        ["fps", cam.fps_processed ?? cam.fps],
        percentiles
          ? ["latency ms p50 / p95", `${fmt(cam.latency_ms_p50)} / ${fmt(cam.latency_ms_p95)}`]
          : ["latency ms", cam.latency_ms],
        ["faces", typeof cam.faces === "number" ? cam.faces : faces.length],
      ];
      for (const [key, value] of Object.entries(cam)) {
        if (!SHOWN.includes(key)) entries.push([key, value]);
      }
      entries.push(["viewers", streams[name] ? streams[name].watchers : 0]);
      fillList(sec.querySelector(".camera-stats"), entries);
      sec.querySelector(".faces").replaceChildren(...faces.map((face) => el("li", faceText(face))));
    }
    const general = Object.entries(pipeline).filter(([key]) => key !== "cameras");
    general.push(["viewers", `${preview.viewers ?? 0} / ${preview.max_clients ?? "?"}`]);
    fillList(document.getElementById("pipeline-stats"), general);
  }

  function eventText(event) {
    if (event === null || typeof event !== "object") return fmt(event);
    const parts = [];
    if (typeof event.ts === "string") parts.push(/T(\d\d:\d\d:\d\d)/.exec(event.ts)?.[1] ?? event.ts);
    for (const key of ["camera", "type"]) if (event[key] !== undefined) parts.push(String(event[key]));
    if (event.track_id !== undefined) parts.push(`#${event.track_id}`);
    if (event.emotion !== undefined) parts.push(fmt(event.emotion));
    if (typeof event.confidence === "number") parts.push(`${Math.round(event.confidence * 100)}%`);
    return parts.length > 1 ? parts.join(" ") : JSON.stringify(event);
  }

  async function getJson(path) {
    const response = await fetch(path + query, { cache: "no-store" });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  function every(ms, task) {
    const run = async () => {
      try {
        await task();
      } catch (error) {
        statusEl.textContent = String(error.message || error);
        statusEl.className = "status bad";
      }
      setTimeout(run, ms);
    };
    run();
  }

  every(1000, async () => {
    showStats(await getJson("/stats.json"));
    statusEl.textContent = `live · ${new Date().toLocaleTimeString()}`;
    statusEl.className = "status ok";
  });
  every(2000, async () => {
    const data = await getJson("/timeline.json");
    for (const [name, camera] of Object.entries(data.cameras || {})) {
      const sec = section(name);
      window.edgeFerTimeline.draw(
        sec.querySelector("canvas.timeline"), sec.querySelector("p.mood"), camera, data.window_s, data.colors || {},
      );
    }
  });
  every(2000, async () => {
    const data = await getJson("/events.json");
    const events = data.events || [];
    document.getElementById("events").replaceChildren(...events.map((event) => el("li", eventText(event))));
  });
})();
