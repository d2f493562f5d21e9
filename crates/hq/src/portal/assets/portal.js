// The key portal: issue a key (shown once), a key's totals, subscribe an
// endpoint to a topic and watch it confirm, publish an order.
'use strict';

// The path each topic's service takes orders on, added to a bare address.
const TOPIC_PATHS = { orders: '/order/', iridium: '/iridium/', magnesite: '/magnesite/' };

async function issueKey(event) {
  event.preventDefault();
  const owner = document.getElementById('owner').value.trim();
  try {
    const issued = await hq.call('POST', '/keys', owner ? { owner } : {});
    document.getElementById('api-key').textContent = issued.api_key;
    document.getElementById('key-id').textContent = issued.key_id;
    document.getElementById('key-owner').textContent = issued.owner;
    document.getElementById('issued').hidden = false;
    // Kept in this page only, for "Your key's totals"; gone on reload.
    document.getElementById('totals-key').value = issued.api_key;
    hq.say('key-state', '');
  } catch (error) {
    hq.say('key-state', `No key issued: ${error.message}`, 'error');
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
    document.getElementById('my-totals').hidden = false;
    hq.say('totals-state', '');
  } catch (error) {
    document.getElementById('my-totals').hidden = true;
    hq.say('totals-state', `No totals: ${error.message}`, 'error');
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
    const state = subscription.state === 'confirmed' ? 'is already subscribed and confirmed' : 'is pending confirmation';
    hq.say('subscribe-state', `${topic}: ${subscription.endpoint} ${state}.`, 'ok');
    await refreshSubscriptions();
  } catch (error) {
    hq.say('subscribe-state', `Not subscribed: ${error.message}`, 'error');
  }
}

async function refreshSubscriptions() {
  const body = document.querySelector('#subscriptions tbody');
  try {
    const { topics } = await hq.call('GET', '/topics');
    const rows = topics.flatMap((topic) =>
      topic.subscriptions.map((s) => {
        const confirmed = s.state === 'confirmed';
        return hq.el(
          'tr',
          { 'data-topic': topic.name, 'data-state': s.state },
          hq.el('td', {}, topic.name),
          hq.el('td', { class: 'mono' }, s.endpoint),
          hq.el('td', {}, hq.el('span', { class: confirmed ? 'badge ok' : 'badge warn' },
            confirmed ? 'confirmed' : 'pending confirmation')),
        );
      }));
    body.replaceChildren(...(rows.length ? rows : [hq.el('tr', {}, hq.el('td', { colspan: '3' }, 'No subscriptions yet.'))]));
  } catch (error) {
    hq.say('subscribe-state', `Subscriptions unavailable: ${error.message}`, 'error');
  }
}

async function publish(event) {
  event.preventDefault();
  const topic = document.getElementById('publish-topic').value;
  const order = document.getElementById('publish-body').value;
  try {
    const published = await hq.call('POST', `/topics/${topic}/publish`, order);
    hq.say('publish-state', `Published ${published.message_id} to ${published.subscribers} subscription(s).`, 'ok');
  } catch (error) {
    hq.say('publish-state', `Not published: ${error.message}`, 'error');
  }
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('key-form').addEventListener('submit', issueKey);
  document.getElementById('totals-form').addEventListener('submit', showTotals);
  document.getElementById('publish-form').addEventListener('submit', publish);
  for (const button of document.querySelectorAll('button[data-topic]')) {
    button.addEventListener('click', () => subscribe(button.dataset.topic));
  }
  document.getElementById('publish-topic').addEventListener('change', (event) => {
    const examples = { orders: '{"bundle": 1}', iridium: '{"iridium": 1}', magnesite: '{"magnesite": 1}' };
    document.getElementById('publish-body').value = examples[event.target.value];
  });
  // /topics is public: the subscriptions show (masked) before signing in.
  refreshSubscriptions();
  setInterval(refreshSubscriptions, 1000);
  hq.setUpCredential(() => {});
});
