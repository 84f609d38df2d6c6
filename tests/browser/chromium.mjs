// Headless Chromium as the browser tests launch it (play.mjs, ui.mjs, latency.mjs).
import { chromium } from 'playwright-core';

// Without the first line's flags Chromium waits on network services this closed machine
// cannot reach; without the others headless Chromium throttles the timers and media of
// pages it considers hidden, and holds back playback that no user gesture started.
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows', '--autoplay-policy=no-user-gesture-required',
];

export function launch(executablePath = '/usr/bin/chromium') {
  return chromium.launch({ executablePath, args: ARGS, timeout: 30000 });
}
