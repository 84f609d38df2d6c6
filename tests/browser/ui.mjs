// Drives preroll's web UI in Debian's headless Chromium as a user would and prints, as one
// JSON object on stdout, what it saw. It only measures: tests/ui.rs judges.
//
//   node ui.mjs '{"base": "http://127.0.0.1:PORT", "token": "…", "chromium": "/usr/bin/chromium",
//     "cameras": [{"name": "door", "clock": true}, {"name": "hevc", "clock": false}],
//     "clip": {"camera": "door", "lookback": 2, "duration": 2},
//     "latency_seconds": 10, "shots": "/tmp/shots"}'
//
// Steps, each reported under its own key:
// - `start`: the page without a session (login shown? /api/cameras and /api/clips answers);
// - `wrong_token`: the message a wrong token gets;
// - `login`: the cameras view shown; per camera, ms from pressing "Log in" to its first
//   picture, and the screen message;
// - `cross_origin`: a POST to the clip API from a page of another origin (localhost instead
//   of 127.0.0.1) with the browser's cookies: its status as the page saw it;
// - `latency`: for `clock` cameras, over `latency_seconds`, the latency of every frame shown
//   (the wall clock's 40 ms tick at presentation minus the tick the frame's barcode carries,
//   see tests/support/rtsp_server.py `?clock`): samples, median, p95, max;
// - `clip`: the Clip control: the clip's id, ms from "Clip ready" in the tile to the clip's
//   row in the list (the list was open while it recorded); the player: duration, the seek
//   to the trigger mark and the barcode tick shown there, and a seek to 0.5 s;
// - `keep`: the row's Keep button before, after one press (marked) and after another; its
//   text, aria-pressed and the API's `keep` each time;
// - `delete`: the row gone after "Delete" then "Confirm delete"; the API's answer for it;
// - `a11y`: per view, controls without an accessible name and controls Tab never reached;
// - `shots`: screenshots at 1280x800 and 390x844 (files in `shots`);
// - `logout`: the login shown again, and /api/cameras refused after it;
// - `console`: every console message and page error, with the step it came in.
import { launch } from './chromium.mjs';
import { mkdirSync } from 'node:fs';
import { installReader, sampleLatency, summarize } from './clock.mjs';

const job = JSON.parse(process.argv[2]);
const out = { console: [] };
let step = 'start';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));


async function a11y(page) {
  return page.evaluate(async () => {
    // Disabled controls take no focus by design (a pager's end).
    const visible = (e) => !e.disabled && (e.offsetParent !== null || e.getClientRects().length > 0);
    const controls = [...document.querySelectorAll('button, input, select, a[href], video[controls]')].filter(visible);
    const name = (e) => {
      if (e.getAttribute('aria-label')) return e.getAttribute('aria-label');
      if (e.labels && e.labels.length) return [...e.labels].map((l) => l.textContent).join(' ').trim();
      return (e.textContent || '').trim();
    };
    const describe = (e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''} "${name(e)}"`;
    const unnamed = controls.filter((e) => !name(e)).map(describe);
    return { controls: controls.map(describe), unnamed, ids: controls.map((e, i) => { e.dataset.a11y = String(i); return i; }) };
  }).then(async (r) => {
    // Tab through the page from the top; every control must take the focus at some point.
    await page.evaluate(() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); });
    const reached = new Set();
    for (let i = 0; i < r.controls.length * 2 + 10; i++) {
      await page.keyboard.press('Tab');
      const at = await page.evaluate(() => document.activeElement && document.activeElement.dataset.a11y);
      if (at !== undefined && at !== null) reached.add(Number(at));
    }
    const unreached = r.controls.filter((_, i) => !reached.has(i));
    return { controls: r.controls.length, unnamed: r.unnamed, unreached };
  });
}

async function main() {
  const browser = await launch(job.chromium);
  out.browser = browser.version();
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on('console', (m) => out.console.push({ step, type: m.type(), text: m.text(), url: m.location().url }));
  page.on('pageerror', (e) => out.console.push({ step, type: 'pageerror', text: String(e) }));
  out.refused = [];
  page.on('response', (r) => {
    if (r.status() >= 400) out.refused.push({ step, status: r.status(), method: r.request().method(), url: r.url() });
  });
  await page.addInitScript(installReader);
  if (job.shots) mkdirSync(job.shots, { recursive: true });
  const shot = async (name) => {
    if (job.shots) await page.screenshot({ path: `${job.shots}/${name}.png` });
  };

  // Without a session.
  await page.goto(job.base + '/');
  await page.waitForSelector('#login:not([hidden])', { timeout: 10000 });
  out.start = {
    login_shown: await page.isVisible('#token'),
    cameras_status: await page.evaluate(() => fetch('/api/cameras').then((r) => r.status)),
    clips_status: await page.evaluate(() => fetch('/api/clips').then((r) => r.status)),
    live_status: await page.evaluate(() => fetch('/api/cameras/x/live.mp4').then((r) => r.status)),
  };
  out.a11y = { login: await a11y(page) };
  await shot('login-1280x800');

  step = 'wrong_token';
  await page.fill('#token', 'not-the-token');
  await page.click('#login-form button[type=submit]');
  await page.waitForFunction(() => document.getElementById('login-error').textContent !== '', null, { timeout: 10000 });
  out.wrong_token = { message: await page.textContent('#login-error'), still_login: await page.isVisible('#token') };

  step = 'login';
  // Every video element that appears gets a first-frame callback.
  await page.evaluate(() => {
    window.__first = {};
    window.__t0 = performance.now();
    new MutationObserver(() => {
      for (const v of document.querySelectorAll('.tile video')) {
        if (v.__watched) continue;
        v.__watched = true;
        const name = v.closest('.tile').dataset.camera;
        v.requestVideoFrameCallback(() => { window.__first[name] = performance.now() - window.__t0; });
      }
    }).observe(document.body, { subtree: true, childList: true });
  });
  await page.fill('#token', job.token);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#cameras:not([hidden])', { timeout: 10000 });
  const names = job.cameras.map((c) => c.name);
  await page.waitForFunction((n) => n.every((c) => window.__first[c] !== undefined || document.querySelector(`.tile[data-camera="${c}"]`)?.classList.contains('no-picture')), names, { timeout: 15000 }).catch(() => {});
  out.login = { cameras: {} };
  for (const c of job.cameras) {
    out.login.cameras[c.name] = await page.evaluate((name) => {
      const tile = document.querySelector(`.tile[data-camera="${name}"]`);
      return {
        tile: Boolean(tile),
        first_picture_ms: window.__first[name] ?? null,
        message: tile ? tile.querySelector('.screen-message').textContent : null,
        no_picture: tile ? tile.classList.contains('no-picture') : null,
        facts: tile ? tile.querySelector('.facts').textContent : null,
        badge: tile ? tile.querySelector('.badge').textContent : null,
      };
    }, c.name);
  }

  step = 'latency';
  out.latency = {};
  const clocks = job.cameras.filter((c) => c.clock).map((c) => c.name);
  const samples = await sampleLatency(page, clocks, (job.latency_seconds || 10) * 1000);
  for (const [name, list] of Object.entries(samples)) out.latency[name] = summarize(list);
  await shot('cameras-1280x800');
  out.a11y.cameras = await a11y(page);

  step = 'cross_origin';
  {
    // Another site's page (served by the driver itself, on localhost rather than
    // 127.0.0.1: another site to the browser) posts a form to the clip API, as a CSRF
    // attack would, in the browser that holds the session cookie.
    const other = await context.newPage();
    other.on('console', (m) => out.console.push({ step, type: m.type(), text: m.text(), url: m.location().url }));
    const url = new URL(job.base);
    const evil = `${url.protocol}//localhost:${url.port}/evil-page`;
    const target = `${job.base}/api/cameras/${encodeURIComponent(job.clip.camera)}/clips`;
    await other.route(evil, (r) => r.fulfill({
      contentType: 'text/html',
      body: `<!doctype html><form id=f method=POST action="${target}" enctype="text/plain">` +
        `<input name='{"duration": 1, "x": "' value='"}'></form>`,
    }));
    await other.goto(evil);
    const [answer] = await Promise.all([
      other.waitForNavigation({ timeout: 10000 }),
      other.evaluate(() => document.getElementById('f').submit()),
    ]);
    out.cross_origin = { status: answer ? answer.status() : null, body: await other.textContent('body') };
    await other.close();
  }

  step = 'clip';
  {
    const c = job.clip;
    const tile = `.tile[data-camera="${c.camera}"]`;
    await page.fill(`${tile} input[id$=lookback]`, String(c.lookback));
    await page.fill(`${tile} input[id$=duration]`, String(c.duration));
    // When the tile hears that the clip is done (its note says so).
    await page.evaluate((t) => {
      const note = document.querySelector(`${t} .clip-note`);
      window.__readyAt = null;
      new MutationObserver(() => {
        if (note.dataset.state === 'done' && window.__readyAt === null) window.__readyAt = performance.now();
      }).observe(note, { attributes: true, childList: true, characterData: true, subtree: true });
    }, tile);
    await page.click(`${tile} button[type=submit]`);
    await page.waitForFunction((t) => document.querySelector(`${t} .clip-note`).dataset.clip, tile, { timeout: 10000 });
    const id = await page.evaluate((t) => document.querySelector(`${t} .clip-note`).dataset.clip, tile);
    out.clip = { id, first_note: await page.textContent(`${tile} .clip-note`) };
    // The list is open while the clip records; the row must turn up as done by itself.
    await page.click('#nav-clips');
    await page.waitForSelector('#clips:not([hidden])');
    const ready = await page.evaluate(async ({ id, limit }) => {
      const start = performance.now();
      while (performance.now() - start < limit) {
        const row = document.querySelector(`li[data-clip="${id}"].done`);
        if (row && window.__readyAt !== null) return { row_after_done_ms: Math.max(0, performance.now() - window.__readyAt) };
        await new Promise((r) => setTimeout(r, 20));
      }
      return { row_after_done_ms: null, done_heard: window.__readyAt !== null };
    }, { id, limit: (c.duration + 20) * 1000 });
    Object.assign(out.clip, ready);
    out.clip.row_text = await page.textContent(`li[data-clip="${id}"]`).catch(() => null);
    // The Download link: where it points, the name it saves as, and what that answers.
    out.clip.download = await page.evaluate(async (id) => {
      const a = document.querySelector(`li[data-clip="${id}"] a[download]`);
      if (!a) return null;
      const r = await fetch(a.href);
      const body = await r.arrayBuffer();
      return { name: a.getAttribute('download'), status: r.status, type: r.headers.get('content-type'), bytes: body.byteLength };
    }, id);

    await page.click(`li[data-clip="${id}"] button:has-text("Play")`);
    await page.waitForFunction(() => document.getElementById('player-video').readyState >= 2, null, { timeout: 10000 });
    const seek = async (how) => {
      await page.evaluate(() => { window.__seeked = false; document.getElementById('player-video').addEventListener('seeked', () => { window.__seeked = true; }, { once: true }); });
      await how();
      await page.waitForFunction(() => window.__seeked, null, { timeout: 10000 });
      await sleep(300);
      return page.evaluate(() => {
        const v = document.getElementById('player-video');
        v.pause();
        return { time: v.currentTime, tick: window.__read(v) };
      });
    };
    await page.evaluate(() => document.getElementById('player-video').pause());
    out.clip.player = {
      duration: await page.evaluate(() => document.getElementById('player-video').duration),
      caption: await page.textContent('#player-caption'),
      mark_left: await page.evaluate(() => document.getElementById('trigger-mark').style.left),
      at_mark: await seek(() => page.click('#trigger-mark')),
      at_half_second: await seek(() => page.evaluate(() => { document.getElementById('player-video').currentTime = 0.5; })),
    };
    out.clip.api = await page.evaluate((id) => fetch(`/api/clips/${id}`).then((r) => r.json()), id);
    await shot('clips-1280x800');
    out.a11y.clips = await a11y(page);

    await page.setViewportSize({ width: 390, height: 844 });
    await sleep(300);
    await shot('clips-390x844');
    await page.click('#nav-cameras');
    await sleep(1500);
    await shot('cameras-390x844');
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.click('#nav-clips');
    await page.waitForSelector(`li[data-clip="${id}"]`);

    step = 'keep';
    const keep = `li[data-clip="${id}"] button.keep`;
    const keepState = async () => ({
      text: await page.textContent(keep),
      pressed: await page.getAttribute(keep, 'aria-pressed'),
      api: await page.evaluate((id) => fetch(`/api/clips/${id}`).then((r) => r.json()).then((c) => c.keep), id),
    });
    const before = await keepState();
    await page.click(keep);
    await page.waitForSelector(`${keep}[aria-pressed="true"]`, { timeout: 10000 }).catch(() => {});
    const marked = await keepState();
    await page.click(keep);
    await page.waitForSelector(`${keep}[aria-pressed="false"]`, { timeout: 10000 }).catch(() => {});
    out.keep = { before, marked, unmarked: await keepState() };

    step = 'delete';
    const del = `li[data-clip="${id}"] button.danger`;
    await page.click(del);
    const armed = await page.textContent(del);
    await page.click(del);
    await page.waitForSelector(`li[data-clip="${id}"]`, { state: 'detached', timeout: 10000 }).catch(() => {});
    out.delete = {
      armed_text: armed,
      row_gone: (await page.$(`li[data-clip="${id}"]`)) === null,
      api_status: await page.evaluate((id) => fetch(`/api/clips/${id}`).then((r) => r.status), id),
    };
  }

  step = 'logout';
  await page.click('#logout');
  await page.waitForSelector('#login:not([hidden])', { timeout: 10000 });
  out.logout = {
    login_shown: await page.isVisible('#token'),
    cameras_status: await page.evaluate(() => fetch('/api/cameras').then((r) => r.status)),
  };
  await browser.close();
}

main()
  .catch((e) => { out.failure = `${step}: ${e.stack || e}`; })
  .finally(() => { process.stdout.write(JSON.stringify(out) + '\n'); process.exit(0); });
