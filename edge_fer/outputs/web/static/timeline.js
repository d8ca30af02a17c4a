// edge-fer preview: each camera's emotion timeline, drawn on its <canvas> from /timeline.json.
// Top: the share of face time per emotion over the window; below: one strip per recent track, oldest time
// on the left, now on the right. Names from the server are drawn as canvas text, never parsed as HTML.
"use strict";
window.edgeFerTimeline = (() => {
  const LEFT = 44, RIGHT = 4, BAR = 12, STRIP = 10, GAP = 4, AXIS = 14;

  function minutes(seconds) {
    return seconds >= 120 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds)} s`;
  }

  function draw(canvas, mood, camera, windowS, colors) {
    const tracks = camera.tracks || [];
    const width = canvas.clientWidth || canvas.width;
    canvas.width = width;
    canvas.height = BAR + GAP * 2 + tracks.length * (STRIP + GAP) + AXIS;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#1c1c1c";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.font = "10px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    const plot = width - LEFT - RIGHT;
    const seconds = camera.seconds || {};
    const total = Object.values(seconds).reduce((a, b) => a + b, 0);
    ctx.fillStyle = "#999";
    ctx.fillText("all", 4, BAR / 2);
    let x = LEFT;
    const ranked = Object.entries(seconds).filter(([, s]) => s > 0).sort((a, b) => b[1] - a[1]);
    for (const [label, s] of ranked) {
      const w = (s / total) * plot;
      ctx.fillStyle = colors[label] || "#fff";
      ctx.fillRect(x, 0, Math.max(w, 1), BAR);
      x += w;
    }
    if (!total) {
      ctx.strokeStyle = "#444";
      ctx.strokeRect(LEFT + 0.5, 0.5, plot - 1, BAR - 1);
    }
    const xOf = (ago) => LEFT + (1 - Math.min(Math.max(ago / windowS, 0), 1)) * plot;
    tracks.forEach((track, i) => {
      const y = BAR + GAP * 2 + i * (STRIP + GAP);
      ctx.fillStyle = track.live ? "#ddd" : "#777";
      ctx.fillText(`#${track.track_id}`, 4, y + STRIP / 2);
      for (const [label, from, to] of track.runs) {
        ctx.fillStyle = colors[label] || "#fff";
        const x0 = xOf(from);
        ctx.fillRect(x0, y, Math.max(xOf(to) - x0, 1), STRIP);
      }
    });
    ctx.fillStyle = "#999";
    const axisY = canvas.height - AXIS / 2;
    ctx.fillText(`−${minutes(windowS)}`, LEFT, axisY);
    ctx.textAlign = "right";
    ctx.fillText("now", width - RIGHT, axisY);
    const words = ranked.map(([label, s]) => `${label} ${Math.round((100 * s) / total)}%`);
    mood.textContent = `last ${minutes(windowS)}: ${words.length ? words.join(" · ") : "no faces"}`;
  }

  return { draw };
})();
