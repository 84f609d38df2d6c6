// Live view: a camera's parts from preroll's WebSocket (/api/cameras/NAME/live) into Media
// Source Extensions, held near the live edge.
//
// Parts arrive whole (every `part_seconds`, 0.5 s by default), so the newest picture the
// browser holds is up to a part old and playback must stay about a part behind the end of
// what is buffered, or it stalls waiting for the next one. The player measures the part
// length as the buffer grows, aims to sit that much (plus a margin) behind the end, plays a
// little faster when further behind, and jumps when far behind, so latency does not creep up
// over hours (the drift users report of other MSE players).

const MARGIN = 0.1; // seconds kept beyond one part
const JUMP = 0.5; // seconds beyond the target at which the player jumps
const KEEP = 10; // seconds of played media kept buffered (for the decoder, not for seeking)

export class LivePlayer {
  // `video`: the element; `hooks`: {status(camera), message(text or ''), playing()}.
  constructor(video, camera, hooks) {
    this.video = video;
    this.camera = camera;
    this.hooks = hooks;
    this.closed = false;
    this.queue = [];
    this.partSeconds = 0.5;
    this.retry = 1000;
  }

  start() {
    this.closed = false;
    this.connect();
    this.onVisible = () => {
      if (!document.hidden) this.toLive();
    };
    document.addEventListener('visibilitychange', this.onVisible);
  }

  stop() {
    this.closed = true;
    document.removeEventListener('visibilitychange', this.onVisible);
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
    this.teardown();
  }

  connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/api/cameras/${encodeURIComponent(this.camera)}/live`);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.pendingInit = null;
    ws.onmessage = (e) => this.receive(e.data);
    ws.onopen = () => {
      this.retry = 1000;
    };
    ws.onclose = () => {
      if (this.closed) return;
      // The camera's stream ended or the service restarts: try again, more slowly each time.
      this.timer = setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 15000);
    };
  }

  receive(data) {
    if (typeof data === 'string') {
      let msg;
      try {
        msg = JSON.parse(data);
      } catch {
        return;
      }
      if (msg.type === 'init') this.pendingInit = msg;
      else if (msg.type === 'status') this.hooks.status(msg.camera);
      else if (msg.type === 'ended') this.hooks.message(`Live view ended: ${msg.reason}. Reconnecting…`);
      return;
    }
    if (this.pendingInit) {
      const init = this.pendingInit;
      this.pendingInit = null;
      this.setup(init, data);
    } else if (this.sourceBuffer || this.opening) {
      this.queue.push(data);
      this.pump();
    }
  }

  // A new init: the stream (re)starts, or the camera's tracks changed. A fresh MediaSource
  // each time: a new stream's timestamps are unrelated to the last one's.
  setup(init, bytes) {
    this.teardown();
    const mime = init.mime;
    if (!mime || typeof MediaSource === 'undefined' || !MediaSource.isTypeSupported(mime)) {
      this.unsupported = true;
      this.hooks.message(unsupportedText(mime));
      return;
    }
    this.unsupported = false;
    this.hooks.message('');
    const source = new MediaSource();
    this.source = source;
    this.opening = true;
    this.queue = [bytes];
    this.started = false;
    this.lastEnd = null;
    this.video.src = URL.createObjectURL(source);
    source.addEventListener('sourceopen', () => {
      if (this.source !== source) return;
      URL.revokeObjectURL(this.video.src);
      try {
        this.sourceBuffer = source.addSourceBuffer(mime);
      } catch (e) {
        this.hooks.message(unsupportedText(mime));
        return;
      }
      this.opening = false;
      this.sourceBuffer.addEventListener('updateend', () => {
        this.afterAppend();
        this.pump();
      });
      this.pump();
    });
  }

  teardown() {
    this.sourceBuffer = null;
    this.opening = false;
    this.queue = [];
    if (this.source) {
      this.source = null;
      this.video.removeAttribute('src');
      this.video.load();
    }
  }

  pump() {
    const sb = this.sourceBuffer;
    if (!sb || sb.updating || !this.queue.length) return;
    const played = this.video.currentTime;
    const b = sb.buffered;
    if (b.length && played - b.start(0) > KEEP * 2) {
      // Bounded memory: what was played long ago goes.
      sb.remove(0, played - KEEP);
      return;
    }
    try {
      sb.appendBuffer(this.queue.shift());
    } catch (e) {
      // QuotaExceededError: drop what is queued and start again from the next keyframe the
      // server sends (a reconnect asks for one).
      this.queue = [];
      this.ws.close();
    }
  }

  afterAppend() {
    const v = this.video;
    const b = this.sourceBuffer && this.sourceBuffer.buffered;
    if (!b || !b.length) return;
    const start = b.start(b.length - 1);
    const end = b.end(b.length - 1);
    if (this.lastEnd !== null && end > this.lastEnd) {
      const grown = end - this.lastEnd;
      if (grown < 5) this.partSeconds = this.partSeconds * 0.8 + grown * 0.2;
    }
    this.lastEnd = end;
    const target = this.partSeconds + MARGIN;
    // A new stream comes as a burst (the parts from the keyframe on): start once it is all
    // in, at the live edge, rather than at the end of its first part.
    if (!this.started && this.queue.length) return;
    if (!this.started) {
      this.started = true;
      v.currentTime = Math.max(start, end - target);
      v.play().catch(() => {}); // muted autoplay; a refusal leaves the first picture shown
      this.hooks.playing();
      return;
    }
    const behind = end - v.currentTime;
    if (v.currentTime < start || behind > target + JUMP) {
      // In a gap (the server skipped ahead) or far behind: to the live edge.
      v.currentTime = Math.max(start, end - target);
      v.playbackRate = 1;
    } else if (behind > target + 0.15) {
      v.playbackRate = 1.15;
    } else if (behind < target - 0.15) {
      v.playbackRate = 0.95;
    } else {
      v.playbackRate = 1;
    }
    if (v.paused && !document.hidden) v.play().catch(() => {});
  }

  toLive() {
    const b = this.sourceBuffer && this.sourceBuffer.buffered;
    if (b && b.length) this.video.currentTime = Math.max(b.start(b.length - 1), b.end(b.length - 1) - this.partSeconds - MARGIN);
  }
}

export function unsupportedText(mime) {
  const codecs = /codecs="([^"]*)"/.exec(mime || '');
  const list = codecs ? codecs[1] : 'unknown';
  const hevc = /(^|,)\s*(hvc1|hev1)/.test(list);
  const name = hevc ? 'H.265 (HEVC)' : `this codec (${list})`;
  return `This browser cannot play ${name} video, so there is no live picture here. ` +
    'The camera still records: clips can be downloaded and played in a player that decodes it.';
}
