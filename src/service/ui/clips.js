// The clip list (filtered, newest first, paged) and the player with the trigger marked.

import { el, seconds } from './cameras.js';
import { api, problem } from './http.js';

const PAGE = 20;
const $ = (id) => document.getElementById(id);

function size(bytes) {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1e3))} kB`;
}

function when(clip) {
  if (!clip.trigger_time) return 'recovered at start';
  return new Date(clip.trigger_time).toLocaleString();
}

export class Clips {
  constructor() {
    this.offset = 0;
    this.visible = false;
    this.playing = null;
    this.reload = null;
    $('filter-camera').addEventListener('change', () => this.refilter());
    $('filter-state').addEventListener('change', () => this.refilter());
    $('newer').addEventListener('click', () => this.page(-PAGE));
    $('older').addEventListener('click', () => this.page(PAGE));
    const video = $('player-video');
    video.addEventListener('timeupdate', () => this.cursor());
    video.addEventListener('loadedmetadata', () => this.cursor());
    $('trigger-mark').addEventListener('click', () => {
      if (this.playing) video.currentTime = this.playing.preroll;
    });
  }

  setCameras(names) {
    const select = $('filter-camera');
    select.replaceChildren(el('option', { value: '', text: 'All cameras' }), ...names.map((n) => el('option', { value: n, text: n })));
  }

  refilter() {
    this.offset = 0;
    this.load(null);
  }

  page(delta) {
    this.offset = Math.max(0, this.offset + delta);
    this.load(null);
  }

  async load(open) {
    this.visible = true;
    const q = new URLSearchParams({ order: 'newest', limit: String(PAGE), offset: String(this.offset) });
    if ($('filter-camera').value) q.set('camera', $('filter-camera').value);
    if ($('filter-state').value) q.set('state', $('filter-state').value);
    const response = await api(`/api/clips?${q}`);
    if (!response.ok) {
      $('clip-list').replaceChildren(el('li', { class: 'error', text: await problem(response) }));
      return;
    }
    const clips = await response.json();
    const total = Number(response.headers.get('x-total-count') || clips.length);
    this.render(clips, total);
    if (open) {
      const clip = clips.find((c) => c.id === open) || (await this.fetchOne(open));
      if (clip) this.play(clip);
    }
  }

  async fetchOne(id) {
    const response = await api(`/api/clips/${encodeURIComponent(id)}`);
    return response.ok ? response.json() : null;
  }

  render(clips, total) {
    const list = $('clip-list');
    if (!clips.length) {
      list.replaceChildren(el('li', { class: 'empty', text: 'No clips match.' }));
    } else {
      list.replaceChildren(...clips.map((c) => this.item(c)));
    }
    const first = clips.length ? this.offset + 1 : 0;
    $('page-info').textContent = `${first}–${this.offset + clips.length} of ${total}`;
    $('newer').disabled = this.offset === 0;
    $('older').disabled = this.offset + clips.length >= total;
  }

  item(clip) {
    const file = `/api/clips/${encodeURIComponent(clip.id)}/file`;
    const label = `${clip.camera || 'recovered'} ${when(clip)}`;
    const actions = el('div', { class: 'actions' });
    if (clip.state === 'done') {
      const play = el('button', { type: 'button', text: 'Play', 'aria-label': `Play clip ${label}` });
      play.addEventListener('click', () => this.play(clip));
      const download = el('a', { href: file, download: `${clip.camera || 'clip'}-${clip.id}.mp4`, text: 'Download', 'aria-label': `Download clip ${label}` });
      actions.append(play, download);
    }
    if (clip.state === 'done' || clip.state === 'failed') {
      const keep = el('button', { type: 'button', class: 'keep', 'aria-pressed': String(Boolean(clip.keep)), title: 'A kept clip is never deleted by retention' });
      const show = (kept) => {
        keep.textContent = kept ? 'Kept' : 'Keep';
        keep.setAttribute('aria-pressed', String(kept));
        keep.setAttribute('aria-label', kept ? `Kept: clip ${label} is never deleted by retention; press to unmark` : `Keep clip ${label}: never deleted by retention`);
      };
      show(Boolean(clip.keep));
      keep.addEventListener('click', () => this.keep(clip, keep, show));
      actions.append(keep);
      const del = el('button', { type: 'button', class: 'danger', text: 'Delete', 'aria-label': `Delete clip ${label}` });
      del.addEventListener('click', () => this.remove(clip, del, label));
      del.addEventListener('blur', () => {
        del.textContent = 'Delete';
        del.setAttribute('aria-label', `Delete clip ${label}`);
        del.dataset.armed = '';
      });
      actions.append(del);
    }
    const facts = [clip.state, seconds(clip.duration), size(clip.bytes)];
    if (clip.preroll) facts.push(`${seconds(clip.preroll)} before the trigger`);
    const li = el('li', { class: `clip ${clip.state}`, 'data-clip': clip.id },
      el('div', { class: 'clip-meta' },
        el('strong', { text: clip.camera || 'recovered' }), ' ',
        el('time', { datetime: clip.trigger_time || '', text: when(clip) }),
        el('span', { class: 'clip-facts', text: facts.join(' · ') }),
        clip.error ? el('span', { class: 'error', text: clip.error }) : ''),
      actions);
    return li;
  }

  // Marks the clip keep, or unmarks it; the button shows what the API answered.
  async keep(clip, button, show) {
    const wanted = button.getAttribute('aria-pressed') !== 'true';
    button.disabled = true;
    const response = await api(`/api/clips/${encodeURIComponent(clip.id)}`, { method: 'PATCH', json: { keep: wanted } });
    button.disabled = false;
    if (!response.ok) {
      button.after(el('span', { class: 'error', role: 'alert', text: await problem(response) }));
      return;
    }
    const view = await response.json();
    clip.keep = view.keep;
    show(Boolean(view.keep));
  }

  // Two steps: the first press arms the button, the second deletes.
  async remove(clip, button, label) {
    if (button.dataset.armed !== 'yes') {
      button.dataset.armed = 'yes';
      button.textContent = 'Confirm delete';
      button.setAttribute('aria-label', `Confirm: delete clip ${label}`);
      return;
    }
    const response = await api(`/api/clips/${encodeURIComponent(clip.id)}`, { method: 'DELETE' });
    if (!response.ok) {
      button.textContent = 'Delete';
      button.dataset.armed = '';
      button.after(el('span', { class: 'error', role: 'alert', text: await problem(response) }));
      return;
    }
    if (this.playing && this.playing.id === clip.id) this.closePlayer();
    this.load(null);
  }

  play(clip) {
    this.playing = clip;
    const video = $('player-video');
    $('player').hidden = false;
    video.src = `/api/clips/${encodeURIComponent(clip.id)}/file`;
    const share = clip.duration > 0 ? Math.min(100, (clip.preroll / clip.duration) * 100) : 0;
    $('timeline-pre').style.width = `${share}%`;
    $('trigger-mark').style.left = `${share}%`;
    $('trigger-mark').setAttribute('aria-label', `Go to the trigger, ${seconds(clip.preroll)} into the clip`);
    $('player-caption').textContent = `${clip.camera || 'Recovered clip'}, ${when(clip)}: ${seconds(clip.duration)}; the trigger is at ${seconds(clip.preroll)} (marked).`;
    video.play().catch(() => {});
    $('player').scrollIntoView({ block: 'nearest' });
  }

  closePlayer() {
    this.playing = null;
    const video = $('player-video');
    video.pause();
    video.removeAttribute('src');
    video.load();
    $('player').hidden = true;
  }

  cursor() {
    const video = $('player-video');
    const d = this.playing ? this.playing.duration || video.duration : video.duration;
    if (d > 0) $('timeline-now').style.left = `${Math.min(100, (video.currentTime / d) * 100)}%`;
  }

  clipEvent() {
    if (!this.visible) return;
    // Several events come together (done follows finalizing): one reload for them.
    clearTimeout(this.reload);
    this.reload = setTimeout(() => this.load(null), 150);
  }

  pause() {
    this.visible = false;
    $('player-video').pause();
  }

  clear() {
    this.visible = false;
    clearTimeout(this.reload);
    this.closePlayer();
    $('clip-list').replaceChildren();
  }
}
