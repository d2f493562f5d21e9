// Shared by HQ's pages: the admin credential, kept in this tab's
// sessionStorage and sent as "Authorization: Bearer" (HQ sets no cookie),
// JSON calls to HQ, and building elements node by node (text from HQ
// is always set as text, never parsed as markup).
'use strict';

const TOKEN_KEY = 'interstella-hq-admin-token';

const hq = {
  token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },

  // Calls HQ; resolves to the JSON answer, rejects with HQ's message.
  async call(method, path, body, extraHeaders = {}) {
    const headers = { Accept: 'application/json', ...extraHeaders };
    const token = hq.token();
    if (token && !('x-api-key' in extraHeaders)) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (response.status === 401 && !('x-api-key' in extraHeaders)) {
      // A credential HQ no longer takes (HQ restarted with a new one) is
      // forgotten, which also stops the dashboard's polling.
      if (token) sessionStorage.removeItem(TOKEN_KEY);
      hq.showSignedIn(false, token ? 'HQ no longer takes that credential: sign in again.' : 'HQ wants the admin credential.');
    }
    if (!response.ok) {
      throw new Error((data && data.message) || `${response.status} ${response.statusText}`);
    }
    return data;
  },

  // <tag attrs...>children</tag>; strings become text nodes.
  el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    for (const child of children) node.append(child instanceof Node ? child : String(child));
    return node;
  },

  say(id, text, kind = '') {
    const node = document.getElementById(id);
    node.textContent = text;
    node.className = kind;
  },

  showSignedIn(signedIn, message) {
    document.getElementById('credential-form').hidden = signedIn;
    document.getElementById('forget').hidden = !signedIn;
    hq.say(
      'credential-state',
      message || (signedIn ? 'Signed in: the credential is kept in this tab only.' : 'Not signed in.'),
      signedIn ? 'ok' : 'warn',
    );
    document.body.classList.toggle('signed-in', signedIn);
  },

  // Wires the credential form; `onSignedIn` runs once HQ accepted it.
  setUpCredential(onSignedIn) {
    const form = document.getElementById('credential-form');
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const input = document.getElementById('admin-token');
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      input.value = '';
      try {
        await hq.call('GET', '/faults'); // admin-only and harmless: checks the credential
        hq.showSignedIn(true);
        onSignedIn();
      } catch (error) {
        sessionStorage.removeItem(TOKEN_KEY);
        hq.showSignedIn(false, `HQ refused that credential: ${error.message}`);
      }
    });
    document.getElementById('forget').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      hq.showSignedIn(false);
    });
    const signedIn = Boolean(hq.token());
    hq.showSignedIn(signedIn);
    if (signedIn) onSignedIn();
  },
};
