// The live view's latency over a long run, for scripts/live-latency.sh: logs in to the UI,
// then for `minutes` minutes reads every frame the clock cameras' tiles present and prints
// one JSON object: per camera, a summary per minute (see clock.mjs `summarize`).
//
//   node latency.mjs '{"base": "http://127.0.0.1:PORT", "token": "…",
//     "chromium": "/usr/bin/chromium", "cameras": ["door"], "minutes": 10}'
import { launch } from './chromium.mjs';
import { installReader, sampleLatency, summarize } from './clock.mjs';

const job = JSON.parse(process.argv[2]);
const out = { minutes: {}, console: [] };

async function main() {
  const browser = await launch(job.chromium);
  out.browser = browser.version();
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  page.on('console', (m) => { if (m.type() === 'error') out.console.push(m.text()); });
  page.on('pageerror', (e) => out.console.push(String(e)));
  await page.addInitScript(installReader);
  await page.goto(job.base + '/');
  await page.fill('#token', job.token);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#cameras:not([hidden])');
  for (const c of job.cameras) out.minutes[c] = [];
  for (let m = 0; m < job.minutes; m++) {
    const samples = await sampleLatency(page, job.cameras, 60000);
    for (const c of job.cameras) {
      const s = summarize(samples[c]);
      delete s.worst_per_second;
      out.minutes[c].push(s);
    }
    process.stderr.write(`minute ${m + 1}: ${JSON.stringify(Object.fromEntries(job.cameras.map((c) => [c, out.minutes[c][m]])))}\n`);
  }
  await browser.close();
}

main()
  .catch((e) => { out.failure = String(e.stack || e); })
  .finally(() => { process.stdout.write(JSON.stringify(out) + '\n'); process.exit(0); });
