// Plays clips served by `preroll serve` in Debian's headless Chromium and prints, as one JSON
// object on stdout, what each <video> element saw. It only measures: tests/browser.rs judges.
//
//   node play.mjs '{"base": "http://127.0.0.1:PORT", "token": "…", "clips": [{"name": "h264",
//     "path": "/api/clips/ID/file", "mime": "video/mp4; codecs=\"avc1.64000d\"",
//     "seeks": [3.0, 3.5], "bits": 10}]}'
//
// Per clip: canPlayType and MediaSource.isTypeSupported for `mime`; the element's duration
// and size; real-time playback from 0, then to the end at 4x; then each seek in `seeks`: the
// frames presented after it (requestVideoFrameCallback's mediaTime) and the pixels of the
// frame shown (the `bits`-block barcode in the top eighth of the picture, read as luma, and
// the luma spread below it) and videoWidth/videoHeight then (`video_width`,
// `video_height`: a clip whose resolution changes shows the size of the frame on screen);
// any MediaError. Chromium's console goes in `console`.
//
// Also per clip: `can_play_types`, canPlayType of each MIME type in the clip's optional
// `types` (e.g. 'audio/mp4; codecs="flac"'); `audio_decoded_bytes` and
// `video_decoded_bytes`, Chromium's webkitAudioDecodedByteCount and
// webkitVideoDecodedByteCount when the probe ends (null where the browser has none; audio
// is decoded while the element is muted too).
import { launch } from './chromium.mjs';

const job = JSON.parse(process.argv[2]);


// Runs inside the page, once per clip. Every wait is bounded and returns what it got, so a
// failure still reports the element's state and its MediaError.
async function probe({ path, mime, seeks, bits, types }) {
  const out = { events: [] };
  const v = document.createElement('video');
  out.can_play_type = v.canPlayType(mime);
  out.can_play_types = Object.fromEntries((types ?? []).map((t) => [t, v.canPlayType(t)]));
  out.mse_supported = typeof MediaSource !== 'undefined' && MediaSource.isTypeSupported(mime);
  v.muted = true; // autoplay without a user gesture is allowed only when muted
  v.preload = 'auto';
  document.body.appendChild(v);
  for (const type of ['loadedmetadata', 'playing', 'waiting', 'stalled', 'seeking', 'seeked', 'ended', 'error']) {
    v.addEventListener(type, () => out.events.push(`${type}@${v.currentTime.toFixed(3)}`));
  }
  const error = () => v.error && { code: v.error.code, message: v.error.message };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const until = async (pred, ms) => {
    const start = performance.now();
    while (!pred()) {
      if (v.error || performance.now() - start > ms) return false;
      await sleep(20);
    }
    return true;
  };
  const done = () => {
    out.error = error();
    const q = v.getVideoPlaybackQuality();
    out.quality = { total_video_frames: q.totalVideoFrames, dropped_video_frames: q.droppedVideoFrames };
    out.audio_decoded_bytes = v.webkitAudioDecodedByteCount ?? null;
    out.video_decoded_bytes = v.webkitVideoDecodedByteCount ?? null;
    return out;
  };

  v.src = path;
  if (!(await until(() => v.readyState >= HTMLMediaElement.HAVE_METADATA, 15000))) return done();
  out.duration = v.duration;
  out.video_width = v.videoWidth;
  out.video_height = v.videoHeight;

  // 1. Real-time playback from the start.
  const started = performance.now();
  try {
    await v.play();
  } catch (e) {
    out.play_rejected = String(e);
    return done();
  }
  const goal = Math.min(0.5, v.duration / 2);
  out.advanced = await until(() => v.currentTime >= goal, 10000);
  out.advanced_to = v.currentTime;
  out.advance_wall_seconds = (performance.now() - started) / 1000;

  // Then through to the end, faster, without an error.
  v.playbackRate = 4;
  out.ended = await until(() => v.ended, (v.duration / 4 + 10) * 1000);
  out.end_time = v.currentTime;
  if (!out.ended) return done();

  // 2. Seeks. For each: wait for `seeked`, then for the frames presented after it (the
  // last one is what the element shows), then read that frame back through a canvas.
  v.pause();
  out.seekable = Array.from({ length: v.seekable.length }, (_, i) => [v.seekable.start(i), v.seekable.end(i)]);
  out.seeks = [];
  if (v.videoWidth === 0) return done(); // no video track Chromium can show: no frame to seek to
  for (const target of seeks) {
    out.seeks.push(await seekTo(target));
    if (v.error) break;
  }
  return done();

  async function seekTo(target) {
    const frames = [];
    let armed = true;
    const watch = (_, meta) => {
      frames.push(meta);
      if (armed) v.requestVideoFrameCallback(watch);
    };
    v.requestVideoFrameCallback(watch);
    const seeked = new Promise((r) => v.addEventListener('seeked', () => r(true), { once: true }));
    v.currentTime = target;
    const res = { target, seeked: await Promise.race([seeked, sleep(10000).then(() => false)]) };
    // A paused element presents the seeked frame once; wait for it, then a little longer
    // in case another one follows.
    await until(() => frames.length > 0, 5000);
    await sleep(150);
    armed = false;
    res.current_time = v.currentTime;
    res.presented = frames.map((f) => f.mediaTime);
    const shown = frames[frames.length - 1];
    res.media_time = shown ? shown.mediaTime : null;
    res.video_width = v.videoWidth;
    res.video_height = v.videoHeight;
    Object.assign(res, readFrame());
    return res;
  }

  // The frame on screen at full size: the barcode in its top eighth (block centres, as
  // luma) and the mean and spread of the luma below the barcode band.
  function readFrame() {
    const w = v.videoWidth;
    const h = v.videoHeight;
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(v, 0, 0, w, h);
    const px = ctx.getImageData(0, 0, w, h).data;
    const luma = (x, y) => {
      const i = (y * w + x) * 4;
      return 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
    };
    const block = w / bits;
    const barcode = Array.from({ length: bits }, (_, b) => Math.round(luma(Math.floor(block * b + block / 2), Math.floor(h / 8))));
    let n = 0, sum = 0, sq = 0;
    for (let y = Math.ceil(h / 4); y < h; y += 2) {
      for (let x = 0; x < w; x += 2) {
        const l = luma(x, y);
        n += 1; sum += l; sq += l * l;
      }
    }
    const mean = sum / n;
    return { barcode, picture_mean: mean, picture_std: Math.sqrt(Math.max(0, sq / n - mean * mean)) };
  }
}

const report = { clips: [], console: [] };
let browser;
try {
  browser = await launch(job.chromium);
  report.browser = browser.version();
  const context = await browser.newContext();
  // Sent with every request of the page, media requests included.
  await context.setExtraHTTPHeaders({ Authorization: `Bearer ${job.token}` });
  const page = await context.newPage();
  page.on('console', (m) => report.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => report.console.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => report.console.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
  // Any page of the service makes the clips same-origin; /healthz needs no token.
  await page.goto(`${job.base}/healthz`);
  for (const clip of job.clips) {
    const seen = await page.evaluate(probe, clip);
    report.clips.push({ name: clip.name, ...seen });
  }
} catch (e) {
  report.failure = String(e?.stack ?? e);
} finally {
  await browser?.close();
}
process.stdout.write(JSON.stringify(report) + '\n');
