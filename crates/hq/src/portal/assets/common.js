// Shared by HQ's pages: the admin credential, kept in this tab's
// sessionStorage and sent as "Authorization: Bearer" (HQ sets no cookie),
// JSON calls to HQ, and building elements node by node (text from HQ
// is always set as text, never parsed as markup).
'use strict';

const TOKEN_KEY = 'interstella-hq-admin-token';

// How long a page's own background call (a poll, the sign-in check) waits
// for HQ before it counts as failed: three of the dashboard's polls' time,
// so a slow answer now and then is not, and a hung HQ is said within it.
const CALL_TIMEOUT_MS = 6000;
// How long a call a person's click made waits: longer than HQ takes to
// answer any request (its REQUEST_TIMEOUT_MS, 14 s unless set), so only an
// HQ that hangs (frozen, or behind a network that drops packets) reaches it.
const CLICK_TIMEOUT_MS = 30000;

// A signal that aborts after `ms` with a TimeoutError, as
// AbortSignal.timeout does where the browser has it (Safari 16, Chrome 103,
// Firefox 100 on); built by hand before those.
function timeoutSignal(ms) {
  if (typeof AbortSignal.timeout === 'function') return AbortSignal.timeout(ms);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new DOMException('timed out', 'TimeoutError')), ms);
  return controller.signal;
}

const hq = {
  token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },

  // Calls HQ; resolves to the JSON answer, rejects with HQ's message. A
  // call HQ has not answered within `timeoutMs` is given up as failed
  // (`timedOut`: whether HQ did it is unknown): left to the browser, it
  // waits minutes, a click seems to do nothing, and a poll waiting on it
  // shows old figures as current.
  async call(method, path, body, extraHeaders = {}, { timeoutMs = CLICK_TIMEOUT_MS } = {}) {
    const headers = { Accept: 'application/json', ...extraHeaders };
    const token = hq.token();
    if (token && !('x-api-key' in extraHeaders)) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    // A credential or key is plain ASCII: a character pasted from a chat
    // (’, …) cannot go in a header, and the browser's refusal read as
    // "HQ unreachable" while HQ was up.
    if (Object.values(headers).some((value) => !/^[\x20-\x7e]*$/.test(value))) {
      throw Object.assign(
        new Error('it holds a character no credential or key has (they are plain ASCII): check what was pasted'),
        { notSent: true },
      );
    }
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
        credentials: 'omit',
        cache: 'no-store',
        signal: timeoutSignal(timeoutMs),
      });
    } catch (error) {
      if (error.name === 'TimeoutError') {
        throw Object.assign(new Error(`HQ did not answer within ${timeoutMs / 1000} s`), { unreachable: true, timedOut: true });
      }
      // The browser's own words ("Failed to fetch") say nothing to a person.
      throw Object.assign(new Error('HQ unreachable (is it running? try again)'), { unreachable: true });
    }
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
      const error = new Error((data && data.message) || `${response.status} ${response.statusText}`);
      throw Object.assign(error, { status: response.status });
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

  // Sets a line's text and class. Most lines are live regions: rewriting one
  // with the same text makes some screen readers say it again, so an
  // unchanged line is left alone.
  say(id, text, kind = '') {
    const node = document.getElementById(id);
    if (node.textContent !== text) node.textContent = text;
    if (node.className !== kind) node.className = kind;
  },

  // Replaces `parent`'s children only when `signature` (what they show)
  // changed: a polled table rebuilt under a screen reader's cursor loses
  // its place.
  replaceIfChanged(parent, signature, build) {
    if (parent.dataset.signature === signature) return;
    parent.dataset.signature = signature;
    parent.replaceChildren(...build());
  },

  // `focus`: 'content' (a sign-in: the first control it revealed), 'input'
  // (the credential's field), or nothing (a page load: focus stays put).
  showSignedIn(signedIn, message, focus) {
    const input = document.getElementById('admin-token');
    const active = document.activeElement;
    // Focus inside what is about to be hidden would drop to <body>.
    const losing = !signedIn && active && active !== input && Boolean(active.closest('.needs-admin, #forget'));
    document.getElementById('credential-form').hidden = signedIn;
    document.getElementById('forget').hidden = !signedIn;
    hq.say(
      'credential-state',
      message || (signedIn ? 'Signed in: the credential is kept in this tab only.' : 'Not signed in.'),
      signedIn ? 'ok' : 'warn',
    );
    document.body.classList.toggle('signed-in', signedIn);
    if (signedIn) hq.markInvalid(input, false);
    if (focus === 'content') {
      const first = [...document.querySelectorAll('.needs-admin :is(input, select, button, textarea, [tabindex="0"])')]
        .find((node) => !node.disabled && node.getClientRects().length);
      (first || document.getElementById('forget')).focus();
    } else if (focus === 'input' || losing) {
      input.focus();
    }
  },

  // Ties (or unties) a field to the line that says what is wrong with it.
  markInvalid(input, invalid, describedBy = 'credential-state') {
    if (invalid) {
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby', describedBy);
    } else {
      input.removeAttribute('aria-invalid');
      input.removeAttribute('aria-describedby');
    }
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
        // Admin-only and harmless: checks the credential (within a time, so
        // a hung HQ is said, not a button that does nothing).
        await hq.call('GET', '/faults', undefined, {}, { timeoutMs: CALL_TIMEOUT_MS });
        hq.showSignedIn(true, undefined, 'content');
        onSignedIn();
      } catch (error) {
        sessionStorage.removeItem(TOKEN_KEY);
        const why = error.unreachable || error.notSent ? `Not signed in: ${error.message}.` : `HQ refused that credential: ${error.message}`;
        hq.showSignedIn(false, why, 'input');
        hq.markInvalid(input, !error.unreachable);
      }
    });
    document.getElementById('forget').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      hq.showSignedIn(false, undefined, 'input');
      // A page polling with the credential stops now, not after one more
      // call without it (a refused admin call in HQ's log).
      document.dispatchEvent(new Event('hq-signed-out'));
    });
    const signedIn = Boolean(hq.token());
    hq.showSignedIn(signedIn);
    if (signedIn) onSignedIn();
  },
};
