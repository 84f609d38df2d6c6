// preroll's web UI: login, then the cameras (live view, status, Clip control) and the clips
// (list, playback, download, delete). Every update comes from the service's event stream
// (/api/events) or the live sockets; nothing polls.

import { Cameras } from './cameras.js';
import { Clips } from './clips.js';
import { api, problem, whenLoggedOut } from './http.js';

const $ = (id) => document.getElementById(id);

class App {
  constructor() {
    this.cameras = new Cameras($('tiles'), (id) => this.openClip(id));
    this.clips = new Clips();
    this.events = null;
    $('login-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.login();
    });
    $('logout').addEventListener('click', () => this.logout());
    window.addEventListener('hashchange', () => this.route());
  }

  async begin() {
    const session = await fetch('/api/session', { credentials: 'same-origin' });
    if (!session.ok || !(await session.json()).session) {
      this.showLogin('');
      return;
    }
    const response = await api('/api/cameras');
    if (response.status === 401) return;
    if (!response.ok) {
      this.showLogin(await problem(response));
      return;
    }
    this.enter(await response.json());
  }

  async login() {
    const error = $('login-error');
    error.textContent = '';
    const response = await api('/api/session', { json: { token: $('token').value } });
    if (response.ok) {
      $('token').value = '';
      await this.begin();
      return;
    }
    error.textContent = response.status === 401 ? 'Wrong token.' : await problem(response);
    $('token').focus();
  }

  async logout() {
    await api('/api/session', { method: 'DELETE' });
    this.loggedOut('');
  }

  loggedOut(message) {
    if (this.events) this.events.close();
    this.events = null;
    this.cameras.clear();
    this.clips.clear();
    this.showLogin(message);
  }

  showLogin(message) {
    for (const id of ['cameras', 'clips', 'nav', 'logout']) $(id).hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message;
    $('token').focus();
  }

  enter(cameras) {
    $('login').hidden = true;
    $('nav').hidden = false;
    $('logout').hidden = false;
    this.cameras.show(cameras);
    this.clips.setCameras(cameras.map((c) => c.name));
    this.listen();
    this.route();
  }

  route() {
    if ($('login').hidden === false) return;
    const [view, id] = location.hash.replace(/^#/, '').split('/');
    const clips = view === 'clips';
    $('cameras').hidden = clips;
    $('clips').hidden = !clips;
    $('nav-cameras').toggleAttribute('aria-current', !clips);
    $('nav-clips').toggleAttribute('aria-current', clips);
    if (clips) this.clips.load(id ? decodeURIComponent(id) : null);
    else this.clips.pause();
  }

  openClip(id) {
    location.hash = `#clips/${encodeURIComponent(id)}`;
  }

  // One event stream for the whole page; the browser reconnects it (with Last-Event-ID).
  listen() {
    if (this.events) return;
    const events = new EventSource('/api/events');
    this.events = events;
    events.onmessage = (e) => {
      let event;
      try {
        event = JSON.parse(e.data);
      } catch {
        return;
      }
      if (event.kind.startsWith('camera.')) this.refreshCameras();
      if (event.kind.startsWith('clip.') && event.clip) {
        this.cameras.clipEvent(event.kind, event.clip);
        this.clips.clipEvent(event.kind, event.clip);
      }
    };
    events.onerror = () => {
      if (events.readyState === EventSource.CLOSED) {
        // Refused (the session ended): find out, and show the login if so.
        this.events = null;
        api('/api/cameras').then((r) => {
          if (r.ok) setTimeout(() => this.listen(), 2000);
        });
      }
    };
  }

  async refreshCameras() {
    const response = await api('/api/cameras');
    if (response.ok) this.cameras.update(await response.json());
  }
}

const app = new App();
whenLoggedOut((message) => app.loggedOut(message));
app.begin();
