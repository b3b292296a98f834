// Vakt staff web app: the phone in a browser. Plain ES module, no build step; it
// talks only to the gateway that served it (docs/api.md). Test hooks are listed in
// docs/api.md, "Web app test hooks".
import { pickLang, translator } from './i18n.js';
import { AlarmStore, backoff, ago, retryAfter } from './logic.js';

const $ = (s) => document.querySelector(s);
const SESSION_KEY = 'vakt.session';
const POLL_MS = 5_000;
const POLL_HIDDEN_MS = 30_000;
const POSITION_EVERY_MS = 15_000;

let lang = pickLang(navigator.languages, localStorage.getItem('vakt.lang'));
let t = translator(lang);
let session = loadSession(); // {token, staff: {id, name, roles}}
let me = null; // GET /api/v1/me
let store = null;
let ws = null;
let online = false;
let attempt = 0;
let retryTimer = 0;
let retryAt = 0;
const eprSent = new Set();

// ---- helpers ---------------------------------------------------------------

function loadSession() {
  try {
    const s = JSON.parse(localStorage.getItem(SESSION_KEY));
    return s && s.token && s.staff && s.staff.id ? s : null;
  } catch {
    return null;
  }
}

function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const k of kids) if (k !== null && k !== undefined) el.append(k);
  return el;
}

class ApiError extends Error {
  constructor(status, code, message, res) {
    super(message);
    this.status = status;
    this.code = code;
    this.res = res;
  }
}

// api calls the gateway. A body is always JSON with its Content-Type; a request
// without one sends no Content-Type at all.
async function api(method, path, body) {
  const opt = { method, headers: {}, cache: 'no-store' };
  if (session && path !== '/sessions') opt.headers.Authorization = 'Bearer ' + session.token;
  if (body !== undefined) {
    opt.headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch('/api/v1' + path, opt);
  } catch {
    lostConnection();
    throw new ApiError(0, 'network', t('err.network'));
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = (data && data.error) || {};
    if (res.status === 401 && path !== '/sessions') endSession(t('err.session'));
    throw new ApiError(res.status, err.code || 'http_' + res.status, err.message || res.statusText, res);
  }
  return data;
}

let toastTimer = 0;
function toast(msg) {
  const el = $('#toast');
  el.textContent = msg;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 6000);
}

function failed(e, action) {
  if (e.status === 0 || e.status === 401) toast(e.message);
  else if (e.status === 409 && action === 'accept') toast(t('err.conflict'));
  else toast(t('err.generic', { m: e.message }));
}

// ---- language --------------------------------------------------------------

function applyLang() {
  t = translator(lang);
  document.documentElement.lang = lang === 'nb' ? 'nb' : 'en';
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  $('#lang').textContent = t('lang.switch');
  $('#lang').dataset.lang = lang;
  renderConn();
  renderMe();
  render();
  renderVisits(lastVisits);
}

$('#lang').addEventListener('click', () => {
  lang = lang === 'nb' ? 'en' : 'nb';
  localStorage.setItem('vakt.lang', lang);
  applyLang();
});

// ---- connection ------------------------------------------------------------

function renderConn() {
  const el = $('#conn');
  el.dataset.connection = online ? 'online' : 'offline';
  if (online) el.textContent = t('conn.online');
  else if (retryAt > Date.now()) el.textContent = t('conn.retry', { s: Math.ceil((retryAt - Date.now()) / 1000) });
  else el.textContent = t('conn.offline');
  document.body.dataset.connection = el.dataset.connection;
}

function setOnline(on) {
  online = on;
  renderConn();
}

// lostConnection: a request could not reach the gateway. Drop the socket (it may
// be dead without knowing it) and let the reconnect loop take over.
function lostConnection() {
  setOnline(false);
  if (ws) {
    const s = ws;
    ws = null;
    s.close();
  }
  scheduleReconnect();
}

function scheduleReconnect() {
  if (!session || retryTimer || ws) return;
  const d = backoff(attempt++);
  retryAt = Date.now() + d;
  retryTimer = setTimeout(() => {
    retryTimer = 0;
    retryAt = 0;
    connect();
  }, d);
  renderConn();
}

function reconnectNow() {
  if (!session || ws) return;
  clearTimeout(retryTimer);
  retryTimer = 0;
  attempt = 0;
  connect();
}

// connect checks the session with GET /me (a 401 there means log in again; a
// WebSocket cannot tell), then opens the one push socket of this page.
async function connect() {
  if (!session || ws) return;
  try {
    me = await api('GET', '/me');
  } catch (e) {
    if (e.status !== 401 && e.status !== 0) scheduleReconnect();
    return;
  }
  if (!session || ws) return;
  renderMe();
  updateSharing();
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const sock = new WebSocket(`${proto}//${location.host}/api/v1/stream?token=${encodeURIComponent(session.token)}`);
  ws = sock;
  sock.onopen = () => {
    if (ws !== sock) return;
    attempt = 0;
    setOnline(true);
    refresh();
  };
  sock.onmessage = (ev) => {
    if (ws === sock) onPush(sock, ev.data);
  };
  sock.onclose = (ev) => {
    if (ws !== sock) return;
    ws = null;
    setOnline(false);
    // 4001: the gateway closed this socket because a newer one of the same staff
    // member took its place (another tab or phone); reconnecting would evict that one.
    if (ev.code === 4001) {
      toast(t('conn.replaced'));
      return;
    }
    scheduleReconnect();
  };
}

function onPush(sock, data) {
  let m;
  try {
    m = JSON.parse(data);
  } catch {
    return;
  }
  const now = Date.now();
  switch (m.type) {
    case 'offer':
      if (!m.alarm || !m.alarm.id) return;
      // Confirm first: the gateway counts an unconfirmed offer as unreachable.
      sock.send(JSON.stringify({ type: 'delivered', alarm_id: m.alarm.id }));
      store.offer(m.alarm, now);
      break;
    case 'taken':
      store.taken(m.alarm_id, m.by, now);
      break;
    case 'update':
      if (!m.alarm || !m.alarm.id) return;
      store.update(m.alarm, now);
      break;
    case 'withdrawn':
      store.withdrawn(m.alarm_id, now);
      break;
    default:
      return;
  }
  render();
}

// refresh reloads the lists; it also notices a dead connection.
async function refresh() {
  if (!session || !store) return;
  const since = Date.now();
  try {
    const [alarms, visits] = await Promise.all([api('GET', '/alarms'), api('GET', '/visits')]);
    if (!store) return;
    store.list(alarms || [], Date.now(), since);
    render();
    renderVisits(visits || []);
  } catch {
    // lostConnection or endSession already said so
  }
}

// The list is polled: often while the screen is on (a nurse lead's list of every
// open alarm has no push of its own), seldom while hidden, to spare the battery.
// Offers never wait for this: they come over the WebSocket.
function poll() {
  if (online) refresh();
  setTimeout(poll, document.visibilityState === 'visible' ? POLL_MS : POLL_HIDDEN_MS);
}
setTimeout(poll, POLL_MS);
setInterval(() => {
  renderConn();
  if (store && store.prune(Date.now())) render();
  for (const el of document.querySelectorAll('[data-ago]')) el.textContent = t('offer.ago', { a: ago(t, el.dataset.ago, Date.now()) });
}, 1000);
window.addEventListener('online', reconnectNow);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') reconnectNow();
});

// ---- session ---------------------------------------------------------------

$('#login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  unlockAudio();
  const f = ev.target;
  const err = $('#login-error');
  err.textContent = '';
  const btn = f.querySelector('button');
  btn.disabled = true;
  try {
    const res = await api('POST', '/sessions', { staff_id: f.staff_id.value.trim(), secret: f.secret.value });
    session = { token: res.token, staff: res.staff };
    localStorage.setItem(SESSION_KEY, JSON.stringify(session));
    f.secret.value = '';
    start();
  } catch (e) {
    if (e.status === 401) err.textContent = t('login.wrong');
    else if (e.status === 429) err.textContent = t('login.throttled', { s: retryAfter(e.res && e.res.headers.get('Retry-After')) });
    else if (e.status === 0) err.textContent = t('err.network');
    else err.textContent = t('err.generic', { m: e.message });
  } finally {
    btn.disabled = false;
  }
});

$('#logout').addEventListener('click', async () => {
  try {
    await api('DELETE', '/sessions/current');
  } catch {
    // logged out locally all the same
  }
  endSession('');
});

function endSession(msg) {
  stopSharing();
  session = null;
  me = null;
  store = null;
  localStorage.removeItem(SESSION_KEY);
  clearTimeout(retryTimer);
  retryTimer = 0;
  retryAt = 0;
  if (ws) {
    const s = ws;
    ws = null;
    s.close();
  }
  setOnline(false);
  stopRing();
  render();
  $('#main').hidden = true;
  $('#offer').hidden = true;
  $('#login').hidden = false;
  $('#login-error').textContent = msg;
}

function start() {
  store = new AlarmStore(session.staff.id);
  $('#login').hidden = true;
  $('#main').hidden = false;
  $('#who').textContent = session.staff.name || session.staff.id;
  attempt = 0;
  renderMe();
  render();
  connect();
}

// ---- me: duty, availability, position --------------------------------------

function renderMe() {
  if (!me) return;
  $('#duty').checked = !!me.on_duty;
  $('#availability').value = me.availability;
  updateSharing();
}

$('#duty').addEventListener('change', async (ev) => {
  try {
    me = await api('PUT', '/me/duty', { on_duty: ev.target.checked });
  } catch (e) {
    failed(e);
  }
  renderMe();
});

$('#availability').addEventListener('change', async (ev) => {
  try {
    me = await api('PUT', '/me/availability', { availability: ev.target.value });
  } catch (e) {
    failed(e);
  }
  renderMe();
});

let watchId = null;
let lastSent = 0;
let shareNote = '';

function wantShare() {
  return localStorage.getItem('vakt.share') === '1';
}

$('#share').addEventListener('change', (ev) => {
  localStorage.setItem('vakt.share', ev.target.checked ? '1' : '0');
  shareNote = '';
  lastSent = 0;
  updateSharing();
});

$('#floor').addEventListener('change', () => { lastSent = 0; });

// updateSharing watches the position only while logged in, on duty and switched on.
function updateSharing() {
  const sw = $('#share');
  const onDuty = !!(me && me.on_duty);
  // A site without nearest-staff routing keeps no positions: send none at all.
  const wanted = onDuty && !(me && me.nearest_routing === false);
  sw.disabled = !wanted;
  sw.checked = wanted && wantShare();
  const should = !!session && wanted && wantShare();
  if (should && watchId === null) {
    if (!('geolocation' in navigator) || !window.isSecureContext) {
      shareNote = t('share.unavailable');
    } else {
      watchId = navigator.geolocation.watchPosition(sendPosition, positionError,
        { enableHighAccuracy: true, maximumAge: 10_000, timeout: 60_000 });
    }
  } else if (!should) {
    stopSharing();
  }
  const st = $('#share-status');
  if (!onDuty) st.textContent = t('share.offduty');
  else if (!wanted) st.textContent = t('share.notused');
  else st.textContent = shareNote || (watchId !== null && lastSent ? t('share.on') : t('share.off'));
}

function stopSharing() {
  if (watchId !== null) navigator.geolocation.clearWatch(watchId);
  watchId = null;
}

// A phone standing still gets no new watch callback; ask again now and then so
// the gateway's short-lived copy does not run out while the nurse is on duty.
setInterval(() => {
  if (watchId !== null && online && Date.now() - lastSent >= 60_000) {
    navigator.geolocation.getCurrentPosition(sendPosition, () => {}, { maximumAge: 30_000, timeout: 30_000 });
  }
}, 60_000);

async function sendPosition(p) {
  const now = Date.now();
  if (now - lastSent < POSITION_EVERY_MS || !me || !me.on_duty || me.nearest_routing === false) return;
  lastSent = now;
  const floor = parseInt($('#floor').value, 10);
  try {
    await api('PUT', '/me/position', {
      lat: p.coords.latitude,
      lon: p.coords.longitude,
      floor: Number.isFinite(floor) ? floor : 0,
      accuracy_m: Math.max(0, Math.round(p.coords.accuracy || 0)),
    });
    shareNote = '';
  } catch (e) {
    if (e.status === 409) {
      // Off duty, or the gateway has nearest routing off: send nothing more.
      localStorage.setItem('vakt.share', '0');
      stopSharing();
      shareNote = t('share.refused');
    } else {
      lastSent = 0;
    }
  }
  updateSharing();
}

function positionError(err) {
  if (err.code === 1) {
    localStorage.setItem('vakt.share', '0');
    stopSharing();
    shareNote = t('share.denied');
  } else {
    shareNote = t('share.unavailable');
  }
  updateSharing();
}

// ---- ringing ---------------------------------------------------------------

let audio = null;
let ringTimer = 0;

function unlockAudio() {
  try {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!audio && AC) audio = new AC();
    if (audio && audio.state === 'suspended') audio.resume().then(renderOffer, () => {});
  } catch {
    audio = null;
  }
}
document.addEventListener('pointerdown', unlockAudio, { capture: true });
document.addEventListener('keydown', unlockAudio, { capture: true });

function tone(freq, at, len) {
  const o = audio.createOscillator();
  const g = audio.createGain();
  o.type = 'square';
  o.frequency.value = freq;
  g.gain.setValueAtTime(0.0001, at);
  g.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
  g.gain.exponentialRampToValueAtTime(0.0001, at + len);
  o.connect(g).connect(audio.destination);
  o.start(at);
  o.stop(at + len + 0.05);
}

function ringOnce() {
  if (audio && audio.state === 'running') {
    const t0 = audio.currentTime + 0.01;
    tone(880, t0, 0.35);
    tone(660, t0 + 0.45, 0.35);
    tone(880, t0 + 0.9, 0.35);
  }
  if (navigator.vibrate && navigator.userActivation && navigator.userActivation.hasBeenActive) navigator.vibrate([500, 250, 500]);
}

function startRing() {
  document.body.dataset.ringing = 'true';
  if (ringTimer) return;
  ringOnce();
  ringTimer = setInterval(ringOnce, 2000);
}

function stopRing() {
  document.body.dataset.ringing = 'false';
  if (!ringTimer) return;
  clearInterval(ringTimer);
  ringTimer = 0;
  if (navigator.vibrate && navigator.userActivation && navigator.userActivation.hasBeenActive) navigator.vibrate(0);
}

// ---- drawing alarms --------------------------------------------------------

function alarmBody(e) {
  const a = e.alarm;
  const tx = a.transmitter || {};
  const facts = [];
  if (tx.zone) facts.push(t('offer.zone', { z: tx.zone }));
  if (tx.floor !== undefined && tx.floor !== null) facts.push(t('offer.floor', { f: tx.floor }));
  if (typeof a.distance_m === 'number') facts.push(t('offer.distance', { m: Math.round(a.distance_m) }));
  let status = t('state.' + a.state);
  if (e.gone === 'taken') status = t('gone.taken', { by: e.by || a.assignee });
  else if (e.gone) status = t('gone.' + e.gone);
  else if (a.assignee === (session && session.staff.id)) status = t('gone.taken_me') + ' · ' + t('state.' + a.state);
  else if (a.assignee) status = t('assignee', { by: a.assignee }) + ' · ' + t('state.' + a.state);
  // A nurse call line's own display text, when the gateway sends one.
  const text = a.text || tx.text || '';
  return [
    h('div', { class: 'head' },
      h('span', { class: 'prio prio-' + a.priority, 'data-priority': a.priority, text: t('prio.' + a.priority) }),
      h('span', { class: 'kind', text: t('kind.' + a.kind) === 'kind.' + a.kind ? a.kind : t('kind.' + a.kind) })),
    h('div', { class: 'room', text: tx.room ? t('offer.room', { r: tx.room }) : (tx.id || a.id) }),
    text ? h('div', { class: 'text', text }) : null,
    h('div', { class: 'facts', text: facts.join(' · ') }),
    h('div', { class: 'ago', 'data-ago': a.raised_at, text: t('offer.ago', { a: ago(t, a.raised_at, Date.now()) }) }),
    a.count > 1 ? h('div', { class: 'count', text: t('offer.count', { n: a.count }) }) : null,
    h('div', { class: 'state', text: status }),
  ];
}

// noteSelect offers the site's visit notes (GET /me visit_notes, privacy.visit_notes)
// as a choice: no free text, so no health data can be typed into a visit record.
// None configured: no control at all.
function noteSelect(name, label, value) {
  const notes = (me && me.visit_notes) || [];
  if (!notes.length) return null;
  return h('select', { name, 'aria-label': label },
    h('option', { value: '', text: label }),
    ...notes.map((n) => h('option', { value: n, text: n, selected: n === value || undefined })));
}

function alarmEl(tag, e, notes) {
  const a = e.alarm;
  const el = h(tag, {
    class: 'alarm prio-' + a.priority + (e.gone ? ' gone' : ''),
    'data-alarm-id': a.id,
    'data-state': a.state,
    'data-gone': e.gone || undefined,
    'data-assignee': a.assignee || undefined,
    'data-offers': e.offers,
  }, ...alarmBody(e));
  const acts = store.actions(e);
  if (acts.length) {
    const row = h('div', { class: 'actions' });
    if (acts.includes('complete')) {
      const sel = noteSelect('visit_note', t('act.note'), notes.get(a.id) || '');
      if (sel) row.append(sel);
    }
    for (const act of acts) row.append(h('button', { type: 'button', class: 'act act-' + act, 'data-action': act, text: t('act.' + act) }));
    el.append(row);
  }
  return el;
}

function render() {
  renderOffer();
  const list = $('#alarm-list');
  const notes = new Map();
  for (const inp of list.querySelectorAll('[name=visit_note]')) {
    notes.set(inp.closest('[data-alarm-id]').dataset.alarmId, inp.value);
  }
  const focused = document.activeElement && document.activeElement.name === 'visit_note'
    ? document.activeElement.closest('[data-alarm-id]').dataset.alarmId : null;
  list.replaceChildren();
  const entries = store ? store.sorted() : [];
  for (const e of entries) list.append(alarmEl('li', e, notes));
  $('#no-alarms').hidden = entries.length > 0;
  if (focused) {
    const inp = list.querySelector(`[data-alarm-id="${CSS.escape(focused)}"] [name=visit_note]`);
    if (inp) inp.focus();
  }
}

// renderOffer: the most urgent ringing alarm takes over the screen until it is
// answered, taken, withdrawn or closed.
function renderOffer() {
  const box = $('#offer');
  const ringing = store ? store.ringing() : [];
  if (!ringing.length) {
    box.hidden = true;
    box.replaceChildren();
    stopRing();
    return;
  }
  const e = ringing[0];
  const card = alarmEl('div', e, new Map());
  card.classList.add('offer-card');
  if (ringing.length > 1) card.append(h('div', { class: 'more', text: t('offer.more', { n: ringing.length - 1 }) }));
  if (!audio || audio.state !== 'running') {
    card.append(h('button', { type: 'button', class: 'sound', 'data-sound': 'off', text: t('offer.sound') }));
  }
  box.className = 'offer prio-' + e.alarm.priority;
  box.replaceChildren(card);
  box.hidden = false;
  startRing();
}

document.addEventListener('click', async (ev) => {
  const btn = ev.target.closest('button[data-action]');
  if (!btn || !store) return;
  const el = btn.closest('[data-alarm-id]');
  const id = el.dataset.alarmId;
  const action = btn.dataset.action;
  let body;
  if (action === 'complete') {
    const inp = el.querySelector('[name=visit_note]');
    const note = inp ? inp.value : '';
    if (note) body = { visit: { note } };
  }
  for (const b of el.querySelectorAll('button[data-action]')) b.disabled = true;
  try {
    const a = await api('POST', `/alarms/${encodeURIComponent(id)}/${action}`, body);
    store.answered(action, a && a.id ? a : { ...store.entry(id).alarm }, Date.now());
  } catch (e) {
    failed(e, action);
    if (e.status === 409 || e.status === 403 || e.status === 404) refresh();
  }
  render();
});

// ---- visits ----------------------------------------------------------------

let lastVisits = [];

function renderVisits(visits) {
  lastVisits = visits;
  const list = $('#visit-list');
  const keep = new Map();
  for (const inp of list.querySelectorAll('input, select')) keep.set(inp.closest('[data-visit-id]').dataset.visitId + inp.name, inp.value);
  list.replaceChildren();
  for (const v of visits) {
    const started = new Date(v.start).toLocaleTimeString(lang === 'nb' ? 'nb-NO' : 'en-GB', { hour: '2-digit', minute: '2-digit' });
    const val = (n, d) => keep.get(v.id + n) ?? d;
    list.append(h('li', { class: 'visit', 'data-visit-id': v.id, 'data-epr': eprSent.has(v.id) ? 'sent' : undefined },
      h('div', { class: 'room', text: [v.room && t('offer.room', { r: v.room }), v.resident].filter(Boolean).join(' · ') }),
      h('div', { class: 'muted', text: t('visits.started', { t: started }) }),
      h('div', { class: 'actions' },
        noteSelect('end_note', t('visits.note'), val('end_note', '')),
        h('button', { type: 'button', 'data-visit-action': 'end', text: t('visits.end') })),
      h('div', { class: 'actions' },
        h('input', { name: 'epr_system', maxlength: 64, placeholder: t('visits.epr_system'), 'aria-label': t('visits.epr_system'), value: val('epr_system', localStorage.getItem('vakt.epr') || '') }),
        eprSent.has(v.id)
          ? h('span', { class: 'done', text: t('visits.epr_done') })
          : h('button', { type: 'button', 'data-visit-action': 'epr', text: t('visits.epr') }))));
  }
  $('#no-visits').hidden = visits.length > 0;
}

$('#visit-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const room = f.room.value.trim();
  const resident = f.resident.value.trim();
  if (!room && !resident) return;
  try {
    await api('POST', '/visits', { room, resident });
    f.reset();
    refresh();
  } catch (e) {
    failed(e);
  }
});

document.addEventListener('click', async (ev) => {
  const btn = ev.target.closest('button[data-visit-action]');
  if (!btn) return;
  const li = btn.closest('[data-visit-id]');
  const id = li.dataset.visitId;
  btn.disabled = true;
  try {
    if (btn.dataset.visitAction === 'end') {
      const sel = li.querySelector('[name=end_note]');
      const note = sel ? sel.value : '';
      await api('POST', `/visits/${encodeURIComponent(id)}/end`, note ? { note } : undefined);
    } else {
      const system = li.querySelector('input[name=epr_system]').value.trim();
      if (!system) {
        li.querySelector('input[name=epr_system]').focus();
        btn.disabled = false;
        return;
      }
      await api('POST', `/visits/${encodeURIComponent(id)}/epr`, { system });
      localStorage.setItem('vakt.epr', system);
      eprSent.add(id);
    }
  } catch (e) {
    failed(e);
  }
  refresh();
});

// ---- start -----------------------------------------------------------------

// probe says whether the gateway answers while nobody is logged in, so the login
// screen does not fail silently either.
async function probe() {
  if (session) return;
  try {
    const r = await fetch('/healthz', { cache: 'no-store' });
    setOnline(!session && r.ok);
  } catch {
    if (!session) setOnline(false);
  }
}
setInterval(probe, 5000);

applyLang();
if (session) start();
else {
  $('#login').hidden = false;
  probe();
}
