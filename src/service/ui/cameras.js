// Camera tiles: live video, status, and the Clip control.

import { api, problem } from './http.js';
import { LivePlayer } from './live.js';

const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else if (v !== false && v !== null && v !== undefined) e.setAttribute(k, v === true ? '' : v);
  }
  e.append(...children);
  return e;
};

export function seconds(s) {
  return `${Number(s).toFixed(1)} s`;
}

function bitrate(bps) {
  if (!bps) return '—';
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mb/s` : `${Math.round(bps / 1e3)} kb/s`;
}

class Tile {
  constructor(camera, index, openClip) {
    this.name = camera.name;
    this.openClip = openClip;
    const id = `cam${index}`;
    this.badge = el('span', { class: 'badge' });
    this.video = el('video', { muted: true, autoplay: true, playsinline: true, 'aria-label': `Live view of ${camera.name}` });
    this.video.muted = true;
    this.message = el('p', { class: 'screen-message', role: 'status' });
    this.facts = el('dl', { class: 'facts' });
    this.lookback = el('input', { id: `${id}-lookback`, type: 'number', min: '0', step: 'any', inputmode: 'decimal', placeholder: 'default' });
    this.duration = el('input', { id: `${id}-duration`, type: 'number', min: '0.1', step: 'any', inputmode: 'decimal', placeholder: 'default' });
    this.button = el('button', { type: 'submit', text: 'Clip' });
    this.note = el('p', { class: 'clip-note', 'aria-live': 'polite' });
    const form = el('form', { class: 'clip-form', 'aria-label': `Take a clip from ${camera.name}` },
      el('label', { for: `${id}-lookback`, text: 'Lookback (s)' }), this.lookback,
      el('label', { for: `${id}-duration`, text: 'Duration (s)' }), this.duration,
      this.button);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.clip();
    });
    this.root = el('article', { class: 'tile', 'aria-labelledby': `${id}-title`, 'data-camera': camera.name },
      el('div', { class: 'tile-head' }, el('h3', { id: `${id}-title`, text: camera.name }), this.badge),
      el('div', { class: 'screen' }, this.video, this.message),
      this.facts, form, this.note);
    this.update(camera);
    this.watching = null;
    if (camera.enabled) {
      this.player = new LivePlayer(this.video, camera.name, {
        status: (c) => c && this.update(c),
        message: (text) => {
          this.message.textContent = text;
          this.root.classList.toggle('no-picture', Boolean(text));
        },
        playing: () => this.root.classList.add('playing'),
      });
      this.player.start();
    } else {
      this.message.textContent = 'This camera is disabled in the config.';
      this.root.classList.add('no-picture');
    }
  }

  update(c) {
    this.badge.textContent = !c.enabled ? 'Disabled' : c.connected ? 'Connected' : 'Offline';
    this.badge.className = `badge ${c.connected ? 'up' : 'down'}`;
    const size = c.width && c.height ? ` ${c.width}×${c.height}` : '';
    const rows = [
      ['Video', c.codec ? `${c.codec}${size}` : '—'],
      ['Audio', c.audio_codec || (c.source_audio ? `${c.source_audio} (not kept)` : 'none')],
      ['Bitrate', bitrate(c.bitrate)],
      ['Ring', `${seconds(c.ring_seconds)} of ${seconds(c.ring_limit_seconds)}`],
    ];
    if (c.last_error) rows.push(['Last error', c.last_error]);
    this.facts.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
    this.lookback.max = String(c.ring_limit_seconds);
  }

  async clip() {
    const order = {};
    if (this.lookback.value !== '') order.lookback = Number(this.lookback.value);
    if (this.duration.value !== '') order.duration = Number(this.duration.value);
    this.button.disabled = true;
    this.note.textContent = 'Starting a clip…';
    try {
      const response = await api(`/api/cameras/${encodeURIComponent(this.name)}/clips`, { json: order });
      if (!response.ok) {
        this.note.textContent = `Refused: ${await problem(response)}`;
        return;
      }
      const clip = await response.json();
      this.watching = clip.id;
      this.showClip('clip.created', clip);
    } catch (e) {
      this.note.textContent = `Could not reach preroll: ${e.message}`;
    } finally {
      this.button.disabled = false;
    }
  }

  showClip(kind, clip) {
    if (clip.id !== this.watching) return;
    this.note.dataset.clip = clip.id;
    this.note.dataset.state = clip.state;
    const link = el('a', { href: `#clips/${encodeURIComponent(clip.id)}`, text: 'Play it' });
    switch (clip.state) {
      case 'recording':
        this.note.textContent = `Recording clip ${clip.id}: ${seconds(clip.duration)} so far…`;
        break;
      case 'finalizing':
        this.note.textContent = `Finishing clip ${clip.id}…`;
        break;
      case 'done':
        this.note.replaceChildren(`Clip ready: ${seconds(clip.duration)}, ${seconds(clip.preroll)} before the trigger. `, link);
        break;
      case 'failed':
        this.note.textContent = `Clip ${clip.id} failed: ${clip.error || 'unknown error'}`;
        break;
      default:
        break;
    }
  }

  stop() {
    if (this.player) this.player.stop();
  }
}

export class Cameras {
  constructor(container, openClip) {
    this.container = container;
    this.openClip = openClip;
    this.tiles = new Map();
  }

  show(cameras) {
    this.clear();
    cameras.forEach((c, i) => {
      const tile = new Tile(c, i, this.openClip);
      this.tiles.set(c.name, tile);
      this.container.append(tile.root);
    });
    if (!cameras.length) this.container.append(el('p', { text: 'No cameras are configured.' }));
  }

  update(cameras) {
    for (const c of cameras) this.tiles.get(c.name)?.update(c);
  }

  clipEvent(kind, clip) {
    if (clip.camera) this.tiles.get(clip.camera)?.showClip(kind, clip);
  }

  clear() {
    for (const t of this.tiles.values()) t.stop();
    this.tiles.clear();
    this.container.replaceChildren();
  }
}

export { el };
