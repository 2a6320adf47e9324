// SentinelStream live analyst console. Plain JS, no dependencies: it listens to
// /v1/stream (server-sent events), draws its own charts on <canvas>, and fetches a decision's
// reasons from /v1/decisions/{id} on demand.
"use strict";

// Authentication: the token arrives once in the URL fragment (#token=…, which browsers never
// send to the server), is kept in sessionStorage for this tab only, and goes out as a bearer
// header. The event stream cannot send headers, so it alone carries it as ?access_token=.
const TOKEN = (() => {
  const m = location.hash.match(/[#&]token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("sentinel_token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("sentinel_token") || "";
})();
const api = (path, init = {}) =>
  fetch(path, { ...init, headers: { ...(init.headers || {}), ...(TOKEN ? { Authorization: "Bearer " + TOKEN } : {}) } });

const HISTORY_SECS = 300; // chart span
const FEED_MAX = 400; // rows kept in the feed table
const LINK_WINDOW_MS = 15 * 60 * 1000; // linked-users look-back
const RECENT_MAX = 5000; // flagged decisions kept for linking

const $ = (id) => document.getElementById(id);
const el = (tag, attrs, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
};
const fmtInt = (n) => Math.round(n).toLocaleString("en-US");
const fmtMs = (ms) => (ms === null || ms === undefined ? "–" : ms < 10 ? ms.toFixed(2) + " ms" : ms < 100 ? ms.toFixed(1) + " ms" : fmtInt(ms) + " ms");
const fmtPct = (f) => (f === null || f === undefined ? "–" : (100 * f).toFixed(2) + "%");
const fmtTime = (ms) => new Date(ms).toLocaleTimeString("en-GB", { hour12: false });
const fmtAmount = (s) => {
  const n = Number(s);
  return Number.isFinite(n) ? n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }) : s;
};
const scoreColor = (s) => (s >= 0.8 ? "var(--decline)" : s >= 0.5 ? "var(--review)" : "var(--approve)");

// ---------------------------------------------------------------- state

const state = {
  opened: Date.now(),
  totals: { approve: 0, review: 0, decline: 0 },
  series: [], // {t, eps, review, decline, p50, p99}
  ruleHits: new Map(), // name -> {hits, recent: [per-second counts]}
  rules: new Map(), // name -> {action, mode}
  recent: [], // flagged summaries, oldest first
  filter: "all",
  paused: false,
  pending: [], // rows waiting for the next frame (or for un-pausing)
  selected: null,
  lastStats: null,
};

// ---------------------------------------------------------------- stream

function setStatus(kind, text) {
  const s = $("status");
  s.className = "status " + kind;
  $("status-text").textContent = text;
}

function connect() {
  if (!TOKEN) {
    setStatus("down", "no token: open the address the node printed (…/#token=…)");
    return;
  }
  const source = new EventSource("/v1/stream?access_token=" + encodeURIComponent(TOKEN));
  source.addEventListener("open", () => setStatus("live", "live"));
  source.addEventListener("error", () => setStatus(source.readyState === EventSource.CLOSED ? "down" : "connecting", "reconnecting…"));
  source.addEventListener("hello", (e) => {
    const hello = JSON.parse(e.data);
    $("node-version").textContent = hello.version;
    $("node-policy").textContent = "v" + hello.policy_version;
    setStatus("live", "live");
  });
  source.addEventListener("stats", (e) => onStats(JSON.parse(e.data)));
  source.addEventListener("decision", (e) => onDecision(JSON.parse(e.data)));
}

function onStats(s) {
  state.lastStats = s;
  state.totals.approve += s.approve;
  state.totals.review += s.review;
  state.totals.decline += s.decline;
  const total = state.totals.approve + state.totals.review + state.totals.decline;
  const n = s.events;
  // The fraud-rate chart plots a 5-second rolling rate: per-second shares of a few hundred
  // events are too jumpy to read.
  const last = state.series.slice(-4);
  const sum = (key) => last.reduce((a, p) => a + p[key], 0);
  const n5 = n + sum("n");
  state.series.push({
    t: Date.now(),
    eps: s.eps,
    review: n5 ? (s.review + sum("nReview")) / n5 : null,
    decline: n5 ? (s.decline + sum("nDecline")) / n5 : null,
    p50: s.p50_ms,
    p99: s.p99_ms,
    n,
    nReview: s.review,
    nDecline: s.decline,
    flagged: s.review + s.decline,
  });
  while (state.series.length > HISTORY_SECS) state.series.shift();

  // Rule hits: totals since the page opened, and the last minute's per-second counts.
  const seen = new Set();
  for (const [rule, count] of Object.entries(s.rules || {})) {
    const r = ruleEntry(rule);
    r.hits += count;
    r.recent.push(count);
    seen.add(rule);
  }
  for (const [rule, count] of Object.entries(s.shadow || {})) {
    const r = ruleEntry(rule);
    r.hits += count;
    r.recent.push(count);
    seen.add(rule);
  }
  for (const [rule, r] of state.ruleHits) {
    if (!seen.has(rule)) r.recent.push(0);
    while (r.recent.length > 60) r.recent.shift();
  }

  $("kpi-eps").textContent = fmtInt(s.eps);
  $("kpi-total").textContent = fmtInt(total);
  $("kpi-approve").textContent = fmtInt(state.totals.approve);
  $("kpi-review").textContent = fmtInt(state.totals.review);
  $("kpi-decline").textContent = fmtInt(state.totals.decline);
  $("kpi-p50").textContent = fmtMs(s.p50_ms);
  $("kpi-p99").textContent = fmtMs(s.p99_ms);
  $("kpi-skipped").textContent = fmtInt(s.skipped + s.held_back);
  $("kpi-fraud").textContent = fmtPct(lastMinuteFraudRate());
  if (s.policy_version) $("node-policy").textContent = "v" + s.policy_version;
  if (s.ready) setStatus("live", "live");
  else setStatus("draining", "not ready");

  renderRules();
  renderLinks();
  drawCharts();
}

function lastMinuteFraudRate() {
  let flagged = 0;
  let all = 0;
  for (const p of state.series.slice(-60)) {
    flagged += p.flagged;
    all += p.n;
  }
  return all ? flagged / all : null;
}

function ruleEntry(rule) {
  let r = state.ruleHits.get(rule);
  if (!r) {
    r = { hits: 0, recent: [] };
    state.ruleHits.set(rule, r);
  }
  return r;
}

function onDecision(d) {
  state.recent.push(d);
  if (state.recent.length > RECENT_MAX) state.recent.splice(0, state.recent.length - RECENT_MAX);
  state.pending.push(d);
  if (!state.paused) scheduleFlush();
}

// ---------------------------------------------------------------- feed

let flushQueued = false;
function scheduleFlush() {
  if (flushQueued) return;
  flushQueued = true;
  requestAnimationFrame(() => {
    flushQueued = false;
    flushFeed();
  });
}

function flushFeed() {
  const body = $("feed").tBodies[0];
  const batch = state.pending.splice(0).slice(-FEED_MAX);
  const frag = document.createDocumentFragment();
  for (let i = batch.length - 1; i >= 0; i--) frag.append(feedRow(batch[i]));
  body.prepend(frag);
  while (body.rows.length > FEED_MAX) body.deleteRow(-1);
  applyFilter();
}

function feedRow(d) {
  const row = el("tr", { "data-txn": d.id, "data-outcome": d.outcome, class: "fresh" },
    el("td", { class: "time", text: fmtTime(d.at) }),
    el("td", { class: "user", text: d.user }),
    el("td", { class: "num mono" }, fmtAmount(d.amount), el("span", { class: "ccy", text: d.currency })),
    el("td", {}, el("span", { class: "badge " + d.outcome, text: d.outcome })),
    el("td", {}, scoreView(d.score)),
    el("td", { class: "rules" }, ...(d.rules.length ? d.rules.map((r) => el("span", { class: "chip", text: r })) : [el("span", { class: "chip", text: "threshold" })])),
    el("td", { class: "merchant", text: [d.category, d.merchant].filter(Boolean).join(" · ") || "–", title: d.merchant || "" }),
    el("td", { class: "mono", text: d.country || "–" }),
  );
  row.addEventListener("click", () => openDetail(d.id, row));
  return row;
}

function scoreView(score) {
  return el("span", { class: "score" },
    el("span", { class: "bar" }, el("i", { style: `width:${Math.round(score * 100)}%;background:${scoreColor(score)}` })),
    score.toFixed(2));
}

function applyFilter() {
  const rows = $("feed").tBodies[0].rows;
  let shown = 0;
  for (const row of rows) {
    const show = state.filter === "all" || row.dataset.outcome === state.filter;
    row.hidden = !show;
    if (show) shown++;
  }
  $("feed-count").textContent = state.paused ? `${shown} shown · ${state.pending.length} new` : `${shown} shown`;
  $("feed-empty").hidden = rows.length > 0;
}

for (const b of document.querySelectorAll("[data-filter]")) {
  b.addEventListener("click", () => {
    state.filter = b.dataset.filter;
    for (const o of document.querySelectorAll("[data-filter]")) o.classList.toggle("on", o === b);
    applyFilter();
  });
}
function togglePause() {
  state.paused = !state.paused;
  $("pause").classList.toggle("on", state.paused);
  $("pause").textContent = state.paused ? "resume" : "pause";
  if (!state.paused) scheduleFlush();
  applyFilter();
}
$("pause").addEventListener("click", togglePause);

// ---------------------------------------------------------------- rules

async function loadRules() {
  try {
    const r = await api("/v1/rules");
    if (!r.ok) return;
    const list = await r.json();
    state.rules.clear();
    for (const rule of list.rules) if (!rule.deleted) state.rules.set(rule.name, rule);
    $("node-policy").textContent = "v" + list.policy_version;
    renderRules();
  } catch (_) { /* the next refresh tries again */ }
}

function actionText(a) {
  if (a && typeof a === "object" && "add_score" in a) return "+" + Number(a.add_score).toFixed(2);
  return String(a ?? "–");
}

function renderRules() {
  const names = new Set([...state.rules.keys(), ...state.ruleHits.keys()]);
  const rows = [...names].map((name) => {
    const hits = state.ruleHits.get(name);
    return {
      name,
      rule: state.rules.get(name),
      hits: hits ? hits.hits : 0,
      perMin: hits ? hits.recent.reduce((a, b) => a + b, 0) : 0,
    };
  });
  rows.sort((a, b) => b.hits - a.hits || a.name.localeCompare(b.name));
  const max = Math.max(1, ...rows.map((r) => r.hits));
  const body = $("rules").tBodies[0];
  body.replaceChildren(...rows.map((r) => el("tr", { class: [r.rule && r.rule.mode === "shadow" ? "shadow" : "", r.hits ? "" : "idle"].join(" ").trim() || null, title: r.rule ? r.rule.expression : "" },
    el("td", { class: "name", text: r.name }),
    el("td", { class: "action", text: r.rule ? (r.rule.mode === "disabled" ? "disabled" : actionText(r.rule.action)) : "–" }),
    el("td", { class: "num mono", text: fmtInt(r.hits) }),
    el("td", { class: "num mono", text: fmtInt(r.perMin) }),
    el("td", { class: "share" }, el("div", { class: "bar" }, el("i", { style: `width:${(100 * r.hits) / max}%` }))),
  )));
}

// ---------------------------------------------------------------- linked users

function renderLinks() {
  const now = Date.now();
  const cutoff = now - LINK_WINDOW_MS;
  let start = 0;
  while (start < state.recent.length && state.recent[start].at < cutoff) start++;
  if (start) state.recent.splice(0, start);
  const groups = new Map();
  const add = (kind, key, d) => {
    if (!key) return;
    const id = kind + "\u0000" + key;
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { kind, key, users: new Map(), ids: new Set(), txns: 0, last: 0 }));
    if (g.ids.has(d.id)) return; // a linked decision can come with several flagged ones
    g.ids.add(d.id);
    g.txns++;
    g.last = Math.max(g.last, d.at);
    const prev = g.users.get(d.user);
    if (!prev || prev.at <= d.at) g.users.set(d.user, d);
  };
  for (const d of state.recent) {
    add("device", d.device, d);
    add("card", d.card, d);
    // The other users of its device or card, approved ones included: the first of a pair.
    for (const l of d.linked || []) {
      if (l.at < cutoff) continue;
      if (l.device === d.device) add("device", l.device, l);
      if (l.card === d.card) add("card", l.card, l);
    }
  }
  const rings = [...groups.values()].filter((g) => g.users.size > 1);
  rings.sort((a, b) => b.users.size - a.users.size || b.last - a.last);
  const box = $("links");
  if (!rings.length) {
    box.replaceChildren(el("p", { class: "empty", text: "No device or card shared by several users among recent flagged traffic." }));
    return;
  }
  box.replaceChildren(...rings.slice(0, 40).map((g) => el("div", { class: "ring " + g.kind, "data-key": g.key },
    el("div", { class: "head" },
      el("span", { class: "kind", text: g.kind }),
      el("span", { class: "key", text: g.key }),
      el("span", { class: "n", text: `${g.users.size} users · ${g.txns} txns · last ${fmtTime(g.last)}` })),
    el("div", { class: "users" }, ...[...g.users.values()].map((d) => el("button", {
      class: d.outcome, title: `${d.outcome} ${d.score.toFixed(2)} · ${d.rules.join(", ") || "threshold"}`,
      onclick: () => openDetail(d.id, null),
    }, d.user))),
  )));
}

// ---------------------------------------------------------------- detail

async function openDetail(id, row) {
  for (const r of document.querySelectorAll("#feed tr.selected")) r.classList.remove("selected");
  if (row) row.classList.add("selected");
  state.selected = id;
  const drawer = $("detail");
  drawer.classList.add("open");
  drawer.setAttribute("aria-hidden", "false");
  $("detail-title").textContent = id;
  $("detail-outcome").className = "badge";
  $("detail-outcome").textContent = "…";
  $("detail-body").replaceChildren(el("p", { class: "empty", text: "Loading the decision…" }));
  let decision;
  try {
    const r = await api("/v1/decisions/" + encodeURIComponent(id));
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    decision = await r.json();
  } catch (e) {
    if (state.selected === id) $("detail-body").replaceChildren(el("p", { class: "error", text: "Could not load the decision: " + e.message }));
    return;
  }
  if (state.selected !== id) return;
  renderDetail(decision);
  loadLabel(id);
}

function closeDetail() {
  $("detail").classList.remove("open");
  $("detail").setAttribute("aria-hidden", "true");
  state.selected = null;
  for (const r of document.querySelectorAll("#feed tr.selected")) r.classList.remove("selected");
}
$("detail-close").addEventListener("click", closeDetail);
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape") closeDetail();
  if (e.key === "p" && !e.ctrlKey && !e.metaKey && e.target === document.body) togglePause();
});

function valueText(v) {
  if (v === null || v === undefined) return "missing";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(4).replace(/0+$/, "").replace(/\.$/, "");
  return String(v);
}

function reasonView(reason, shadow) {
  const rule = state.rules.get(reason.rule);
  return el("div", { class: "reason" + (shadow ? " shadow" : "") },
    el("div", { class: "rhead" },
      el("span", { class: "reason-name", text: reason.rule }),
      shadow ? el("span", { class: "chip", text: "shadow" }) : null,
      el("span", { class: "act", text: actionText(reason.action) })),
    rule ? el("div", { class: "expr", text: rule.expression }) : null,
    el("table", {}, el("tbody", {}, ...(reason.values.length ? reason.values.map(([label, v]) => el("tr", {},
      el("td", { text: label }), el("td", { text: valueText(v) }))) : [el("tr", {}, el("td", { text: "no values" }), el("td", {}))]))),
  );
}

function renderDetail(d) {
  const e = d.event || {};
  $("detail-outcome").className = "badge " + d.outcome;
  $("detail-outcome").textContent = d.outcome;
  const loc = e.location ? [e.location.city, e.location.country].filter(Boolean).join(", ") : null;
  const kv = [
    ["user", d.user_id],
    ["amount", `${fmtAmount(e.amount)} ${e.currency || ""}`],
    ["merchant", [e.merchant_id, e.merchant_category].filter(Boolean).join(" · ")],
    ["channel / type", [e.channel, e.type].filter(Boolean).join(" / ")],
    ["card", e.card_id],
    ["device", e.device_id],
    ["ip", e.ip],
    ["location", loc],
    ["event time", e.timestamp],
    ["decided at", d.decided_at],
    ["latency", d.latency_us !== undefined ? fmtMs(d.latency_us / 1000) : null],
    ["policy / user seq", `v${d.rule_set_version} / #${d.user_seq}`],
  ];
  const body = $("detail-body");
  body.replaceChildren(
    el("div", { class: "scoreline" },
      el("span", { class: "big", text: d.score.toFixed(2), style: `color:${scoreColor(d.score)}` }),
      el("span", { class: "dim", text: "risk score" + (d.late ? " · late event" : "") })),
    el("h3", { text: `Reasons (${d.reasons.length})` }),
    ...(d.reasons.length ? d.reasons.map((r) => reasonView(r, false)) : [el("p", { class: "empty", text: "No rule fired." })]),
    ...(d.shadow_hits && d.shadow_hits.length ? [el("h3", { text: `Shadow rules (${d.shadow_hits.length})` }), ...d.shadow_hits.map((r) => reasonView(r, true))] : []),
    el("h3", { text: "Transaction" }),
    el("dl", { class: "kv" }, ...kv.filter(([, v]) => v).flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })])),
    el("h3", { text: "Analyst label" }),
    el("div", { class: "labels", id: "labels" },
      el("span", { class: "current", id: "label-current", text: "…" }),
      el("button", { class: "fraud", onclick: () => setLabel(d.transaction_id, "fraud") }, "mark fraud"),
      el("button", { class: "legit", onclick: () => setLabel(d.transaction_id, "legit") }, "mark legit")),
    el("h3", { text: "More" }),
    el("p", { class: "more" },
      jsonLink("user history", `/v1/users/${encodeURIComponent(d.user_id)}/decisions?limit=100`), " · ",
      jsonLink("live profile", `/v1/users/${encodeURIComponent(d.user_id)}/profile`), " · ",
      jsonLink("raw JSON", `/v1/decisions/${encodeURIComponent(d.transaction_id)}`)),
    el("div", { id: "json-view", class: "json-view", hidden: "" }),
  );
}

// The API answers only requests that carry the token in their Authorization header, and a
// token in a link's address would end up in logs and history: these "links" fetch with the
// header and show the answer in the drawer instead of navigating.
function jsonLink(name, path) {
  return el("button", { class: "link", "data-path": path, onclick: () => showJson(name, path) }, name);
}

async function showJson(name, path) {
  const view = $("json-view");
  view.hidden = false;
  view.dataset.path = path;
  view.dataset.state = "loading";
  const body = el("pre", { class: "mono", text: "Loading…" });
  view.replaceChildren(
    el("div", { class: "json-head" },
      el("span", { class: "json-name", text: name }),
      el("span", { class: "mono dim", text: path }),
      el("button", { class: "json-close", title: "Close", onclick: () => { view.hidden = true; } }, "×")),
    body);
  let state = "error";
  let text;
  try {
    const r = await api(path);
    const answer = await r.text();
    try { text = JSON.stringify(JSON.parse(answer), null, 2); } catch (_) { text = answer; }
    if (r.ok) state = "ok";
    else text = `HTTP ${r.status}\n${text}`;
  } catch (e) {
    text = "Could not load: " + e.message;
  }
  if (view.dataset.path !== path) return; // another link was clicked meanwhile
  view.dataset.state = state;
  body.textContent = text;
}

async function loadLabel(id) {
  try {
    const r = await api(`/v1/decisions/${encodeURIComponent(id)}/label`);
    const current = $("label-current");
    if (!current || state.selected !== id) return;
    if (r.ok) {
      const l = await r.json();
      current.textContent = `labelled ${l.label}` + (l.note ? ` — ${l.note}` : "");
    } else current.textContent = "not labelled";
  } catch (_) { /* leave as is */ }
}

async function setLabel(id, label) {
  const r = await api(`/v1/decisions/${encodeURIComponent(id)}/label`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ label, note: "from the live console" }),
  });
  const current = $("label-current");
  if (current) current.textContent = r.ok ? `labelled ${label}` : `labelling failed (HTTP ${r.status})`;
}

// ---------------------------------------------------------------- charts

function prepare(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 4, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// series: [{key, color, fill}]; fmt formats axis values.
function lineChart(canvas, series, fmt, opts = {}) {
  const { ctx, w, h } = prepare(canvas);
  const pad = { l: 52, r: 10, t: 8, b: 18 };
  const pw = w - pad.l - pad.r;
  const ph = h - pad.t - pad.b;
  const now = Date.now();
  const x = (t) => pad.l + pw * (1 - (now - t) / (HISTORY_SECS * 1000));
  let max = 0;
  for (const p of state.series) for (const s of series) if (p[s.key] !== null && p[s.key] !== undefined) max = Math.max(max, opts.stacked ? series.reduce((a, z) => a + (p[z.key] || 0), 0) : p[s.key]);
  max = niceMax(Math.max(max * 1.1, opts.floor || 0));
  const y = (v) => pad.t + ph * (1 - v / max);

  ctx.font = "10.5px ui-monospace, Menlo, Consolas, monospace";
  ctx.textBaseline = "middle";
  ctx.strokeStyle = "#1c2733";
  ctx.fillStyle = "#6b7886";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    const yy = Math.round(y(v)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(pad.l, yy);
    ctx.lineTo(w - pad.r, yy);
    ctx.stroke();
    ctx.textAlign = "right";
    ctx.fillText(fmt(v), pad.l - 6, yy);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "alphabetic";
  for (let m = 0; m <= HISTORY_SECS / 60; m++) {
    const xx = x(now - m * 60000);
    ctx.fillText(m === 0 ? "now" : `-${m}m`, Math.min(Math.max(xx, pad.l + 10), w - pad.r - 12), h - 4);
  }
  if (!state.series.length) return;

  let base = state.series.map(() => 0);
  for (const s of series) {
    const pts = [];
    state.series.forEach((p, i) => {
      const v = p[s.key];
      if (v === null || v === undefined) return;
      const top = opts.stacked ? base[i] + v : v;
      pts.push([x(p.t), y(top), opts.stacked ? y(base[i]) : y(0)]);
      if (opts.stacked) base[i] = top;
    });
    if (!pts.length) continue;
    if (s.fill) {
      ctx.beginPath();
      pts.forEach(([px, py], i) => (i ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
      for (let i = pts.length - 1; i >= 0; i--) ctx.lineTo(pts[i][0], pts[i][2]);
      ctx.closePath();
      const g = ctx.createLinearGradient(0, pad.t, 0, pad.t + ph);
      g.addColorStop(0, s.fill);
      g.addColorStop(1, "rgba(0,0,0,0)");
      ctx.fillStyle = g;
      ctx.fill();
    }
    ctx.beginPath();
    pts.forEach(([px, py], i) => (i ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.6;
    ctx.lineJoin = "round";
    ctx.stroke();
    const [lx, ly] = pts[pts.length - 1];
    ctx.fillStyle = s.color;
    ctx.beginPath();
    ctx.arc(lx, ly, 2.5, 0, Math.PI * 2);
    ctx.fill();
  }
}

const css = getComputedStyle(document.documentElement);
const color = (name) => css.getPropertyValue(name).trim();
function drawCharts() {
  lineChart($("chart-eps"), [{ key: "eps", color: color("--accent"), fill: "rgba(61,139,253,.28)" }], (v) => fmtInt(v), { floor: 10 });
  lineChart($("chart-fraud"), [
    { key: "decline", color: color("--decline"), fill: "rgba(248,81,73,.30)" },
    { key: "review", color: color("--review"), fill: "rgba(227,179,65,.22)" },
  ], (v) => (v === 0 ? "0" : (100 * v).toFixed(v < 0.01 ? 2 : 1)) + "%", { stacked: true, floor: 0.01 });
  lineChart($("chart-latency"), [
    { key: "p99", color: color("--p99"), fill: "rgba(210,168,255,.14)" },
    { key: "p50", color: color("--p50"), fill: "rgba(88,166,255,.18)" },
  ], (v) => (v === 0 ? "0" : v < 10 ? v.toFixed(1) : fmtInt(v)) + " ms", { floor: 1 });
}
window.addEventListener("resize", drawCharts);

// ---------------------------------------------------------------- node status

async function pollNode() {
  try {
    const r = await api("/metrics");
    if (r.ok) {
      const text = await r.text();
      const value = (name) => {
        const m = text.match(new RegExp("^" + name + " ([0-9.e+-]+)$", "m"));
        return m ? Number(m[1]) : null;
      };
      const actors = value("sentinel_user_actors_live");
      const inflight = value("sentinel_events_in_flight");
      $("node-actors").textContent = actors === null ? "–" : fmtInt(actors);
      $("node-inflight").textContent = inflight === null ? "–" : fmtInt(inflight);
    }
  } catch (_) { /* shown by the stream state */ }
}

function tickClock() {
  const secs = Math.floor((Date.now() - state.opened) / 1000);
  const h = Math.floor(secs / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = String(secs % 60).padStart(2, "0");
  $("node-since").textContent = h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

$("node-host").textContent = location.host;
connect();
loadRules();
pollNode();
drawCharts();
setInterval(loadRules, 15000);
setInterval(pollNode, 5000);
setInterval(tickClock, 1000);
