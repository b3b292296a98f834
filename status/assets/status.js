// Vakt technician status page: log in through the phone API, keep the token in
// sessionStorage (gone when the tab closes), fetch /status/data with it every few
// seconds. No libraries, nothing from the internet.
"use strict";

const $ = (sel) => document.querySelector(sel);
const tokenKey = "vakt-status-token";
let data = null;
const sort = { transmitters: { key: "id", dir: 1 }, alarms: { key: "raised_at", dir: 1 }, staff: { key: "id", dir: 1 } };
let timer = null;
// Staff names come only with an audited load (?names=1): when the page opens and
// every namesEvery refreshes; in between the page keeps the names it has.
const namesEvery = 60; // × 5 s = 5 min
let polls = 0;
const names = new Map();

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}

function say(msg) { $("#message").textContent = msg || ""; }

function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((Date.parse(data.at) - Date.parse(iso)) / 1000));
  if (s < 90) return s + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  if (s < 172800) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

function time(iso) { return new Date(iso).toLocaleString(); }

function showLogin() {
  clearInterval(timer);
  $("#content").hidden = true;
  $("#logout").hidden = true;
  $("#login").hidden = false;
}

async function login(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  say("");
  const r = await fetch("/api/v1/sessions", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ staff_id: f.get("staff_id"), secret: f.get("secret") }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) { say((body.error && body.error.message) || "login failed"); return; }
  sessionStorage.setItem(tokenKey, body.token);
  ev.target.reset();
  start();
}

async function logout() {
  const tok = sessionStorage.getItem(tokenKey);
  sessionStorage.removeItem(tokenKey);
  names.clear();
  if (tok) await fetch("/api/v1/sessions/current", { method: "DELETE", headers: { Authorization: "Bearer " + tok } }).catch(() => {});
  say("logged out");
  showLogin();
}

async function load() {
  const tok = sessionStorage.getItem(tokenKey);
  if (!tok) { showLogin(); return; }
  let r;
  try {
    const withNames = polls++ % namesEvery === 0;
    r = await fetch("/status/data" + (withNames ? "?names=1" : ""), { headers: { Authorization: "Bearer " + tok } });
  } catch (e) { say("gateway not reachable: " + e.message); return; }
  const body = await r.json().catch(() => ({}));
  if (r.status === 401) { sessionStorage.removeItem(tokenKey); say("session expired: log in again"); showLogin(); return; }
  if (r.status === 403) { say("Forbidden: the status page is for technicians and admins."); $("#content").hidden = true; $("#login").hidden = true; $("#logout").hidden = false; clearInterval(timer); return; }
  if (!r.ok) { say((body.error && body.error.message) || ("error " + r.status)); return; }
  for (const s of body.staff) {
    if (s.name) names.set(s.id, s.name); else s.name = names.get(s.id) || "";
  }
  data = body;
  say("");
  render();
}

function start() {
  polls = 0;
  $("#login").hidden = true;
  $("#logout").hidden = false;
  load();
  clearInterval(timer);
  timer = setInterval(load, 5000);
}

function cmp(a, b) {
  if (a == null && b == null) return 0;
  if (a == null) return 1;
  if (b == null) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

function sorted(table, rows, val) {
  const s = sort[table];
  return rows.slice().sort((x, y) => s.dir * cmp(val(x, s.key), val(y, s.key)));
}

function markSort(table) {
  for (const th of document.querySelectorAll("#" + table + " th[data-key]")) {
    th.classList.toggle("asc", th.dataset.key === sort[table].key && sort[table].dir > 0);
    th.classList.toggle("desc", th.dataset.key === sort[table].key && sort[table].dir < 0);
  }
}

function render() {
  $("#content").hidden = false;
  $("#walktest").hidden = !data.walk_test;
  $("#degraded").hidden = !data.degraded;
  const faulty = data.transmitters.filter((t) => t.technical.length > 0).length;
  const onDuty = data.staff.filter((s) => s.on_duty).length;
  $("#summary").textContent = `${data.alarms.length} open alarms · ${data.transmitters.length} transmitters, ${faulty} with faults · ${onDuty} staff on duty · as of ${time(data.at)}`;
  renderAlarms();
  renderTransmitters();
  renderStaff();
  renderPlan();
  renderDrivers();
  $("#sync").textContent = data.drivers && data.drivers.sync ? `backlog: ${data.drivers.sync.backlog} records` : "not configured";
}

function renderAlarms() {
  const rows = sorted("alarms", data.alarms, (a, k) => a[k]);
  const tb = $("#alarms tbody");
  tb.replaceChildren(...rows.map((a) => {
    const hist = el("details", {}, el("summary", {}, `${a.count}× · tier ${a.tier}`),
      el("ul", {}, ...(a.events || []).map((e) => el("li", {}, `${time(e.at)} ${e.kind} (${e.source})`)),
        ...(a.offers || []).map((o) => el("li", {}, `${time(o.offered_at)} offered to ${o.staff} (tier ${o.tier}): ${o.status}`))));
    return el("tr", { class: a.priority === 4 ? "technical" : "care" },
      el("td", {}, time(a.raised_at)), el("td", {}, a.room || a.transmitter), el("td", { class: a.priority <= 1 ? "bad" : "" }, a.kind),
      el("td", {}, a.priority), el("td", {}, a.state), el("td", {}, a.assignee || "—"), el("td", {}, hist));
  }));
  if (rows.length === 0) tb.append(el("tr", {}, el("td", { colspan: 7 }, "none")));
  markSort("alarms");
}

function txValue(t, k) {
  switch (k) {
    case "faults": return t.technical.length ? t.technical.map((a) => a.kind).join(",") : null;
    case "last_seen": return t.last_seen ? Date.parse(t.last_seen) : null;
    default: return t[k];
  }
}

function renderTransmitters() {
  const q = $("#filter").value.trim().toLowerCase();
  const onlyFaults = $("#faults").checked;
  let rows = data.transmitters.filter((t) =>
    (!onlyFaults || t.technical.length > 0 || t.supervision === "late") &&
    (!q || [t.id, t.room, t.zone, t.kind, t.driver, ...t.technical.map((a) => a.kind)].some((v) => v && v.toLowerCase().includes(q))));
  rows = sorted("transmitters", rows, txValue);
  const tb = $("#transmitters tbody");
  tb.replaceChildren(...rows.map((t) => {
    const sup = { off: ["—", ""], ok: ["ok", "ok"], late: ["late", "warn"], missed: ["missed check-in", "bad"] }[t.supervision];
    const bat = t.battery == null ? "—" : t.battery + " %";
    return el("tr", { "data-id": t.id },
      el("td", {}, t.id, t.configured ? "" : " (unknown)"), el("td", {}, t.room), el("td", {}, t.zone), el("td", {}, t.kind),
      el("td", { title: t.last_seen ? time(t.last_seen) : "" }, ago(t.last_seen)),
      el("td", { class: t.battery != null && t.battery < 20 ? "bad" : "" }, bat),
      el("td", {}, t.link == null ? "—" : t.link), el("td", { class: sup[1] }, sup[0]),
      el("td", {}, ...t.technical.map((a) => el("span", { class: "fault", title: "since " + time(a.raised_at) }, a.kind))));
  }));
  $("#txcount").textContent = `${rows.length} of ${data.transmitters.length} shown`;
  markSort("transmitters");
}

function renderStaff() {
  const rows = sorted("staff", data.staff.filter((s) => s.on_duty), (s, k) => k === "roles" ? s.roles.join(",") : s[k]);
  const tb = $("#staff tbody");
  tb.replaceChildren(...rows.map((s) => el("tr", {}, el("td", {}, s.id), el("td", {}, s.name), el("td", {}, s.roles.join(", ")),
    el("td", { class: s.availability === "available" ? "ok" : "warn" }, s.availability))));
  if (rows.length === 0) tb.append(el("tr", {}, el("td", { colspan: 4 }, "nobody on duty")));
  markSort("staff");
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function renderPlan() {
  const p = data.plan;
  const r = Math.max(p.width, p.height) / 80;
  const s = svg("svg", { viewBox: `0 0 ${p.width} ${p.height}`, role: "img", "aria-label": "plan view", id: "planview" });
  s.append(svg("rect", { x: 0, y: 0, width: p.width, height: p.height, fill: "#f4f4f4" }));
  for (const pt of p.points) {
    const g = svg("g", { class: "pt " + pt.type, "data-id": pt.id });
    const fill = pt.type === "staff" ? "#1b6e20" : pt.alert ? "#b00020" : "#1565c0";
    if (pt.type === "staff") g.append(svg("rect", { x: pt.x - r, y: pt.y - r, width: 2 * r, height: 2 * r, fill }));
    else g.append(svg("circle", { cx: pt.x, cy: pt.y, r: pt.alert ? 1.6 * r : r, fill }));
    g.append(svg("text", { x: pt.x + 1.4 * r, y: pt.y + r / 2, "font-size": 1.5 * r }, pt.label + (pt.floor ? " · " + pt.floor : "")));
    g.append(svg("title", {}, `${pt.type} ${pt.id}, floor ${pt.floor}`));
    s.append(g);
  }
  s.append(svg("text", { x: r, y: p.height - r, "font-size": 2 * r, fill: "#666" }, `${Math.round(p.width)} × ${Math.round(p.height)} m`));
  $("#plan").replaceChildren(s);
}

function dl(pairs) {
  return el("dl", {}, ...pairs.flatMap(([k, v, cls]) => [el("dt", {}, k), el("dd", { class: cls || "" }, v)]));
}

function renderDrivers() {
  const d = data.drivers || { serial: [] };
  const box = $("#drivers");
  const parts = [];
  if (d.mqtt) {
    const m = d.mqtt;
    parts.push(el("div", { class: "drv" }, el("strong", {}, "MQTT broker link"), dl([
      ["state", m.connected ? "connected" : "DISCONNECTED", m.connected ? "ok" : "bad"],
      ["reconnects", m.reconnects], ["received / acked", `${m.received} / ${m.acked}`],
      ["malformed / unknown / oversize", `${m.malformed} / ${m.unknown} / ${m.oversize}`], ["busy / retries", `${m.busy} / ${m.retries}`]])));
  }
  if (d.broker) {
    parts.push(el("div", { class: "drv" }, el("strong", {}, "Embedded broker"), dl([
      ["listening", d.broker.addr || "—"], ["clients", d.broker.clients && d.broker.clients.length ? d.broker.clients.join(", ") : "none"]])));
  }
  for (const p of d.serial || []) {
    parts.push(el("div", { class: "drv" }, el("strong", {}, "Serial " + p.name), dl([
      ["state", p.online ? "online" : p.open ? "open, line silent" : "CLOSED", p.online ? "ok" : "bad"],
      ["blocks", p.blocks], ["BCC errors", p.bad_bcc, p.bad_bcc ? "warn" : ""], ["NAKs", p.naks], ["reopens", p.reopens],
      ["sent / failed / dropped / queued", `${p.sent} / ${p.failed} / ${p.dropped} / ${p.queued}`]])));
  }
  if (parts.length === 0) parts.push(el("p", {}, "no drivers configured"));
  box.replaceChildren(...parts);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login").addEventListener("submit", (ev) => login(ev).catch((e) => say(e.message)));
  $("#logout").addEventListener("click", logout);
  $("#filter").addEventListener("input", () => data && renderTransmitters());
  $("#faults").addEventListener("change", () => data && renderTransmitters());
  for (const table of Object.keys(sort)) {
    for (const th of document.querySelectorAll("#" + table + " th[data-key]")) {
      th.addEventListener("click", () => {
        const s = sort[table];
        s.dir = s.key === th.dataset.key ? -s.dir : 1;
        s.key = th.dataset.key;
        if (data) render();
      });
    }
  }
  if (sessionStorage.getItem(tokenKey)) start(); else showLogin();
});
