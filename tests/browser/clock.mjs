// Reading the clock cameras' barcodes (tests/support/rtsp_server.py `?clock`) off the
// screen, for ui.mjs and latency.mjs.

// In the page: the barcode of the frame on screen in `video` (16 blocks across its top
// quarter, bit 0 leftmost), read through a canvas.
export function installReader() {
  window.__read = (video) => {
    const w = video.videoWidth;
    const h = video.videoHeight;
    if (!w || !h) return null;
    const c = window.__canvas || (window.__canvas = document.createElement('canvas'));
    c.width = w;
    c.height = h;
    const g = c.getContext('2d', { willReadFrequently: true });
    g.drawImage(video, 0, 0, w, h);
    const row = g.getImageData(0, Math.floor(h / 8), w, 1).data;
    const block = w / 16;
    let v = 0;
    for (let b = 0; b < 16; b++) {
      const x = Math.floor(block * b + block / 2);
      const luma = 0.299 * row[4 * x] + 0.587 * row[4 * x + 1] + 0.114 * row[4 * x + 2];
      if (luma > 128) v |= 1 << b;
    }
    return v;
  };
  // Ticks behind: the 40 ms tick now minus the frame's, modulo 2^16.
  window.__behind = (v, now) => (((Math.floor(now / 40) - v) % 65536) + 65536) % 65536;
}

// Every frame each camera's tile presents for `ms`: when, and how many 40 ms ticks behind
// the wall clock its barcode is.
export function sampleLatency(page, cameras, ms) {
  return page.evaluate(async ({ cameras, ms }) => {
    const got = Object.fromEntries(cameras.map((c) => [c, []]));
    const stops = [];
    for (const name of cameras) {
      const v = document.querySelector(`.tile[data-camera="${name}"] video`);
      let on = true;
      const cb = () => {
        if (!on) return;
        const tick = window.__read(v);
        const now = Date.now();
        if (tick !== null) got[name].push({ t: now, behind: window.__behind(tick, now) });
        v.requestVideoFrameCallback(cb);
      };
      v.requestVideoFrameCallback(cb);
      stops.push(() => { on = false; });
    }
    await new Promise((r) => setTimeout(r, ms));
    stops.forEach((s) => s());
    return got;
  }, { cameras, ms });
}

// Latency in seconds: median, 95th percentile, extremes, distinct frames, and the worst of
// each second (to tell a slow start from drift or stalls).
export function summarize(list) {
  const s = list.map((x) => x.behind * 0.04).sort((a, b) => a - b);
  const at = (q) => (s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : null);
  const t0 = list.length ? list[0].t : 0;
  const worst = [];
  for (const x of list) {
    const i = Math.floor((x.t - t0) / 1000);
    worst[i] = Math.max(worst[i] ?? 0, Math.round(x.behind * 40) / 1000);
  }
  const ticks = new Set(list.map((x) => (Math.floor(x.t / 40) - x.behind + 65536) % 65536));
  return {
    frames: s.length, distinct_frames: ticks.size, median: at(0.5), p95: at(0.95),
    max: s.length ? s[s.length - 1] : null, min: s.length ? s[0] : null, worst_per_second: worst,
  };
}
