// The key portal: issue a key (shown once), a key's totals, subscribe an
// endpoint to a topic and watch it confirm (or remove it), publish an order.
'use strict';

// The path each topic's service takes orders on, added to a bare address.
const TOPIC_PATHS = { orders: '/order/', iridium: '/iridium/', magnesite: '/magnesite/' };
// The subscriptions are read again this long after the last read ended:
// a read HQ is slow to answer delays the next, rather than pile up behind it.
const POLL_MS = 1000;

async function issueKey(event) {
  event.preventDefault();
  const owner = document.getElementById('owner').value.trim();
  try {
    const issued = await hq.call('POST', '/keys', owner ? { owner } : {});
    // A read-only field, not text: it takes focus, and selects and copies
    // from the keyboard.
    document.getElementById('api-key').value = issued.api_key;
    document.getElementById('key-id').textContent = issued.key_id;
    document.getElementById('key-owner').textContent = issued.owner;
    document.getElementById('issued').hidden = false;
    // Kept in this page only, for "Your key's totals"; gone on reload.
    document.getElementById('totals-key').value = issued.api_key;
    // The key id makes each issue's line new, so a second key is said too.
    hq.say('key-state', `Key issued (key id ${issued.key_id}): it is shown below once, copy it now.`, 'ok');
  } catch (error) {
    // A key shown before stays (it is shown once, and may not be copied
    // yet), said to be the earlier one: it must not read as this attempt's.
    const earlier = document.getElementById('issued').hidden
      ? ''
      : ` The key below is the one issued before (key id ${document.getElementById('key-id').textContent}).`;
    // Unanswered, HQ may have issued one, never shown: it is unused, and
    // issuing again gives another.
    const outcome = error.timedOut ? 'No key shown (HQ may have issued one; issue again)' : 'No key issued';
    hq.say('key-state', `${outcome}: ${error.message}.${earlier}`, 'error');
  }
}

async function copyKey() {
  const field = document.getElementById('api-key');
  try {
    // Only in a secure context (https, or HQ on loopback).
    if (!navigator.clipboard) throw new Error('no clipboard');
    await navigator.clipboard.writeText(field.value);
    hq.say('key-state', 'Key copied to the clipboard.', 'ok');
  } catch (_) {
    // Selected, so that Ctrl+C (⌘C) copies it.
    field.focus();
    field.select();
    hq.say('key-state', 'This browser did not let the page copy: the key is selected, press Ctrl+C (⌘C) to copy it.', 'warn');
  }
}

async function showTotals(event) {
  event.preventDefault();
  const key = document.getElementById('totals-key').value.trim();
  try {
    const totals = await hq.call('GET', '/receiving/', undefined, { 'x-api-key': key });
    for (const field of ['fulfillments', 'iridium', 'magnesite', 'replays']) {
      document.getElementById(`my-${field}`).textContent = totals[field];
    }
    // The owner isolated, so that no character in it turns the rest around.
    document.getElementById('my-owner').replaceChildren(hq.el('bdi', {}, totals.owner), ` (key id ${totals.key_id})`);
    document.getElementById('my-totals-region').hidden = false;
    // Said, so that a screen reader learns the table is there (and which
    // key it is for: a second click may show another's).
    hq.say('totals-state', `Totals shown below for key id ${totals.key_id}.`, 'ok');
    hq.markInvalid(document.getElementById('totals-key'), false);
  } catch (error) {
    document.getElementById('my-totals-region').hidden = true;
    hq.markInvalid(document.getElementById('totals-key'), !error.unreachable, 'totals-state');
    // HQ's 403 says only "Forbidden" (its log says which): say what to do.
    const why = error.status === 403
      ? 'HQ does not take this key (unknown, or revoked by HQ\'s admin): check it, or issue a new key above'
      : error.message;
    hq.say('totals-state', `No totals: ${why}`, 'error');
  }
}

async function subscribe(topic) {
  let endpoint = document.getElementById('endpoint').value.trim();
  try {
    const url = new URL(endpoint);
    if (url.pathname === '/') {
      url.pathname = TOPIC_PATHS[topic];
      endpoint = url.toString();
    }
  } catch (_) {
    hq.say('subscribe-state', 'Enter an http:// or https:// address first.', 'error');
    return;
  }
  try {
    const subscription = await hq.call('POST', `/topics/${topic}/subscriptions`, { endpoint });
    // Subscribing an endpoint again gives back its one subscription, as SNS does.
    const confirmed = subscription.state === 'confirmed';
    const state = confirmed ? 'is already subscribed and confirmed' : 'is pending confirmation';
    hq.say('subscribe-state', `${topic}: ${subscription.endpoint} ${state}.`, 'ok');
    // The line says so again once it is confirmed: the table is no live
    // region, and confirming is what this step waits for.
    awaiting = confirmed ? null : { topic, endpoint: subscription.endpoint };
    await refreshSubscriptions();
  } catch (error) {
    // Unanswered, it may yet be subscribed: the list below says.
    const outcome = error.timedOut ? 'Outcome unknown (the list below shows it if subscribed)' : 'Not subscribed';
    hq.say('subscribe-state', `${outcome}: ${error.message}`, 'error');
  }
}

// Enter in the endpoint field subscribes it to the topic its path names;
// a bare address could be any of them, so that one asks for a button.
function subscribeOnEnter(event) {
  // Not the Enter that ends an input method's composition, nor a held key's repeats.
  if (event.key !== 'Enter' || event.isComposing || event.repeat) return;
  event.preventDefault();
  let path = '';
  try {
    path = new URL(event.target.value.trim()).pathname;
  } catch (_) {
    // subscribe() says what is wrong with it.
  }
  // `/order/`, `/order` and `/order/anything` alike (the services answer
  // their path with or without the slash; a path's case is its own).
  const topic = Object.keys(TOPIC_PATHS).find((name) => `${path}/`.startsWith(TOPIC_PATHS[name]));
  if (topic || !path) {
    subscribe(topic || 'orders');
  } else {
    hq.say('subscribe-state', 'Which topic? Press one of the Subscribe buttons below.', 'warn');
  }
}

async function unsubscribe(button, topic, endpoint, arn) {
  // One removal per click: a second one while the first is under way
  // would be told the subscription is gone.
  button.disabled = true;
  try {
    await hq.call('DELETE', `/subscriptions/${encodeURIComponent(arn)}`);
    hq.say('subscribe-state', `${topic}: ${endpoint} is no longer subscribed.`, 'ok');
    if (awaiting && awaiting.topic === topic && awaiting.endpoint === endpoint) awaiting = null;
    // Its row, with the focused button, goes: focus stays on the page's
    // next step rather than drop to the page's top.
    document.getElementById('endpoint').focus();
    await refreshSubscriptions();
  } catch (error) {
    button.disabled = false;
    const outcome = error.timedOut ? 'Outcome unknown (the list below shows it while subscribed)' : 'Not removed';
    hq.say('subscribe-state', `${outcome}: ${error.message}`, 'error');
  }
}

// The subscription the person just made, until it is confirmed.
let awaiting = null;

// Reads the subscriptions, then again POLL_MS after that read ends
// (refreshSubscriptions says its own failures and always resolves).
async function pollSubscriptions() {
  await refreshSubscriptions();
  setTimeout(pollSubscriptions, POLL_MS);
}

async function refreshSubscriptions() {
  const body = document.querySelector('#subscriptions tbody');
  try {
    const { topics } = await hq.call('GET', '/topics', undefined, {}, { timeoutMs: CALL_TIMEOUT_MS });
    // An ARN is listed to the admin only; on SNS a pending subscription has
    // none (SNS deletes it three days unconfirmed).
    const subscriptions = topics.flatMap((topic) => topic.subscriptions.map((s) =>
      [topic.name, s.endpoint, s.state, s.subscription_arn && s.subscription_arn.startsWith('arn:') ? s.subscription_arn : '']));
    // HQ's own feed counts deliveries (SNS' do not show): its subscriptions
    // are kept in memory, so a restart empties this list.
    const ownFeed = topics.every((topic) => topic.stats);
    if (awaiting && subscriptions.some(([topic, endpoint, state]) =>
      topic === awaiting.topic && endpoint === awaiting.endpoint && state === 'confirmed')) {
      hq.say('subscribe-state', `${awaiting.topic}: ${awaiting.endpoint} is confirmed.`, 'ok');
      awaiting = null;
    }
    // A rebuilt table would drop the keyboard's focus from a Remove button
    // to the page's top: it goes back to the same subscription's button.
    const focusedArn = body.contains(document.activeElement) ? document.activeElement.dataset.arn : undefined;
    hq.replaceIfChanged(body, JSON.stringify(subscriptions), () => {
      const rows = subscriptions.map(([topic, endpoint, state, arn]) => {
        const confirmed = state === 'confirmed';
        const remove = hq.el('td');
        if (arn) {
          const button = hq.el('button', { type: 'button', class: 'quiet', 'data-arn': arn, 'aria-label': `Remove ${topic}: ${endpoint}` }, 'Remove');
          button.addEventListener('click', () => unsubscribe(button, topic, endpoint, arn));
          remove.append(button);
        }
        return hq.el(
          'tr',
          { 'data-topic': topic, 'data-state': state },
          hq.el('td', {}, topic),
          hq.el('td', { class: 'mono' }, endpoint),
          hq.el('td', {}, hq.el('span', { class: confirmed ? 'badge ok' : 'badge warn' },
            confirmed ? 'confirmed' : 'pending confirmation')),
          remove,
        );
      });
      const none = ownFeed
        ? 'No subscriptions. HQ keeps those of its own feed in memory: after HQ restarts, subscribe again.'
        : 'No subscriptions yet.';
      return rows.length ? rows : [hq.el('tr', {}, hq.el('td', { colspan: '4' }, none))];
    });
    if (focusedArn && !body.contains(document.activeElement)) {
      const again = [...body.querySelectorAll('button[data-arn]')].find((button) => button.dataset.arn === focusedArn);
      if (again) again.focus();
    }
    hq.say('subscriptions-state', '');
  } catch (error) {
    // Its own line, not #subscribe-state: the poll must not overwrite what
    // answers the person's own click.
    hq.say('subscriptions-state', `Subscriptions unavailable: ${error.message}`, 'error');
  }
}

async function publish(event) {
  event.preventDefault();
  const topic = document.getElementById('publish-topic').value;
  const order = document.getElementById('publish-body').value;
  try {
    const published = await hq.call('POST', `/topics/${topic}/publish`, order);
    if (published.status === 'publishing') {
      // 202: still under way at the request's deadline; it finishes on its own.
      hq.say('publish-state', `Still publishing: ${published.detail}`, 'ok');
    } else {
      const reached = published.subscribers === 0
        ? ', but no subscription takes this topic\'s orders: it reached nobody (unrouted)'
        : ` to ${published.subscribers} subscription(s)`;
      hq.say('publish-state', `Published ${published.message_id}${reached}.`, published.subscribers === 0 ? 'warn' : 'ok');
    }
  } catch (error) {
    // 504: SNS' answer did not say whether it took the order; no answer
    // from HQ in time does not say whether HQ published it.
    const outcome = error.status === 504 || error.timedOut ? 'Outcome unknown' : 'Not published';
    hq.say('publish-state', `${outcome}: ${error.message}`, 'error');
  }
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('key-form').addEventListener('submit', issueKey);
  document.getElementById('totals-form').addEventListener('submit', showTotals);
  document.getElementById('publish-form').addEventListener('submit', publish);
  document.getElementById('copy-key').addEventListener('click', copyKey);
  document.getElementById('endpoint').addEventListener('keydown', subscribeOnEnter);
  for (const button of document.querySelectorAll('button[data-topic]')) {
    button.addEventListener('click', () => subscribe(button.dataset.topic));
  }
  document.getElementById('publish-topic').addEventListener('change', (event) => {
    const examples = { orders: '{"bundle": 1}', iridium: '{"iridium": 1}', magnesite: '{"magnesite": 1}' };
    document.getElementById('publish-body').value = examples[event.target.value];
  });
  // /topics is public: the subscriptions show (masked) before signing in.
  pollSubscriptions();
  hq.setUpCredential(() => {});
});
