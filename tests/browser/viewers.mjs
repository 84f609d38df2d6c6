// N live viewers without a browser, for scripts/bench-live.sh: each opens the camera's live
// WebSocket with the token and reads (and drops) everything for SECONDS, then prints one
// JSON line: per viewer the inits, parts and bytes received.
//
//   node --experimental-websocket viewers.mjs '{"base": "http://127.0.0.1:PORT",
//     "token": "…", "camera": "cam1", "viewers": 20, "seconds": 60}'
const job = JSON.parse(process.argv[2]);
const url = `${job.base.replace(/^http/, 'ws')}/api/cameras/${encodeURIComponent(job.camera)}/live`;

function viewer() {
  return new Promise((resolve) => {
    const seen = { inits: 0, parts: 0, bytes: 0, error: null };
    // Node's WebSocket takes no headers; the token goes as a session cookie would not, so
    // log in first and send the cookie (the browser's way).
    const ws = new WebSocket(url, { headers: { cookie: job.cookie } });
    ws.binaryType = 'arraybuffer';
    let initNext = false;
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') {
        if (JSON.parse(e.data).type === 'init') initNext = true;
        return;
      }
      if (initNext) {
        seen.inits += 1;
        initNext = false;
      } else {
        seen.parts += 1;
        seen.bytes += e.data.byteLength;
      }
    };
    ws.onerror = (e) => { seen.error = String(e.message || e.type); };
    setTimeout(() => { ws.close(); resolve(seen); }, job.seconds * 1000);
  });
}

const login = await fetch(`${job.base}/api/session`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ token: job.token }),
});
job.cookie = (login.headers.get('set-cookie') || '').split(';')[0];
const all = await Promise.all(Array.from({ length: job.viewers }, viewer));
console.log(JSON.stringify(all));
