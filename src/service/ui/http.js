// Requests to preroll's API with the session cookie.

let loggedOut = () => {};

// Called with a message when an answer says the session is gone.
export function whenLoggedOut(f) {
  loggedOut = f;
}

// Fetches from the API with the session cookie; a 401 anywhere means the session is gone.
export async function api(path, options = {}) {
  const init = { credentials: 'same-origin', ...options, headers: { ...(options.headers || {}) } };
  if (options.json !== undefined) {
    init.method = init.method || 'POST';
    init.body = JSON.stringify(options.json);
    init.headers['content-type'] = 'application/json';
  }
  const response = await fetch(path, init);
  if (response.status === 401 && path !== '/api/session') {
    loggedOut('Your session has ended; log in again.');
  }
  return response;
}

// The error text of a failed answer (`{"error": …}`), or its status.
export async function problem(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch {
    // not JSON
  }
  return `${response.status} ${response.statusText}`;
}

