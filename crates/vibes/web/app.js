// The vibes web page: plain JS, no build step, everything from this server's /api.
"use strict";

const WINDOW = 500;        // firehose rows kept in the page
const HISTORY = 200;       // records of history the firehose starts with
const SESSIONS_PAGE = 50;
const TIMELINE_PAGE = 500;

// A token given once as ?token=... (a server bound beyond loopback) is kept for the tab.
const params = new URLSearchParams(location.search);
if (params.get("token")) sessionStorage.setItem("vibes-token", params.get("token"));
const token = sessionStorage.getItem("vibes-token");

async function api(path) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const response = await fetch("/api" + path, { headers });
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

// The display line of `vibes tail` arrives with its ANSI colours; they become classes.
const SGR = { 2: "s-dim", 1: "s-bold", 31: "s-red", 32: "s-green", 33: "s-yellow", 34: "s-blue", 35: "s-magenta", 36: "s-cyan" };
function ansi(line) {
  const out = document.createDocumentFragment();
  let classes = [];
  const parts = line.split(/\x1b\[([0-9;]*)m/);
  parts.forEach((part, i) => {
    if (i % 2 === 1) {
      for (const code of part.split(";").map(Number)) {
        if (code === 0) classes = []; else if (SGR[code]) classes.push(SGR[code]);
      }
    } else if (part) {
      out.append(classes.length ? el("span", { class: classes.join(" "), text: part }) : document.createTextNode(part));
    }
  });
  return out;
}

// One event row; a click shows its JSON. Tool calls and failures can start expanded.
function eventRow(item, expand) {
  const row = el("div", { class: "event", "data-offset": item.offset, "data-type": item.event.type }, ansi(item.line));
  const detail = () => {
    const e = item.event;
    if (e.type === "claude.tool_use") return el("pre", { text: JSON.stringify(e.input, null, 2) });
    if (e.type === "claude.tool_result" && e.is_error) return el("pre", { class: "failure", text: e.content || "" });
    return el("pre", { text: JSON.stringify(e, null, 2) });
  };
  const wrap = el("div", {}, row);
  const expandable = item.event.type === "claude.tool_use" || (item.event.type === "claude.tool_result" && item.event.is_error);
  if (expand && expandable) wrap.append(detail());
  row.addEventListener("click", () => {
    if (wrap.children.length > 1) wrap.lastChild.remove(); else wrap.append(detail());
  });
  return wrap;
}

// ---- firehose ----
const fire = { source: null, paused: false, lastId: null, shown: 0 };

function filterQuery() {
  const q = new URLSearchParams();
  for (const t of $("filter-type").value.split(",").map((s) => s.trim()).filter(Boolean)) q.append("type", t);
  for (const s of $("filter-source").value.split(",").map((s) => s.trim()).filter(Boolean)) q.append("source", s);
  const session = $("filter-session").value.trim();
  if (session) q.append("session", session);
  if (token) q.append("token", token);
  return q;
}

async function recentCursor() {
  const health = await api("/health");
  const topics = await api("/topics");
  const topic = topics.topics.find((t) => t.topic === health.topic);
  if (!topic) return null;
  return topic.partitions.map((p) => Math.max(p.low, p.high - HISTORY)).join(",");
}

async function startFirehose(cursor) {
  stopFirehose();
  const q = filterQuery();
  const start = cursor || (await recentCursor().catch(() => null));
  if (start) q.set("cursor", start); else q.set("from", "end");
  const source = new EventSource("/api/stream?" + q.toString());
  fire.source = source;
  $("firehose-status").textContent = "live";
  source.onmessage = (message) => {
    fire.lastId = message.lastEventId;
    addFirehoseRow(eventRow(JSON.parse(message.data), false));
  };
  source.addEventListener("lagged", (message) => {
    const skipped = JSON.parse(message.data).skipped;
    addFirehoseRow(el("div", { class: "event s-yellow", text: `… ${skipped} records skipped: this page read too slowly` }));
  });
  source.onerror = () => { $("firehose-status").textContent = "reconnecting…"; };
  source.onopen = () => { $("firehose-status").textContent = "live"; };
}

function stopFirehose() {
  if (fire.source) fire.source.close();
  fire.source = null;
}

function addFirehoseRow(row) {
  const list = $("firehose");
  list.prepend(row);
  while (list.children.length > WINDOW) list.lastChild.remove();
  fire.shown++;
}

$("filters").addEventListener("submit", (e) => {
  e.preventDefault();
  $("firehose").replaceChildren();
  fire.paused = false;
  $("pause").textContent = "Pause";
  startFirehose(null);
});

// Pausing closes the stream; resuming reopens it after the last event shown, so
// nothing is missed and nothing piles up in the page meanwhile.
$("pause").addEventListener("click", () => {
  fire.paused = !fire.paused;
  $("pause").textContent = fire.paused ? "Resume" : "Pause";
  if (fire.paused) {
    stopFirehose();
    $("firehose-status").textContent = "paused";
  } else {
    startFirehose(fire.lastId);
  }
});

// ---- sessions ----
const sess = { offset: 0, id: null, skip: 0 };

const money = (usd) => "$" + Number(usd || 0).toFixed(4);
function duration(ms) {
  if (!ms) return "-";
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}
const when = (t) => (t ? t.replace("T", " ").replace(/\.\d+Z$/, "Z") : "-");

async function loadSessions() {
  try {
    const page = await api(`/sessions?limit=${SESSIONS_PAGE}&offset=${sess.offset}`);
    const body = $("sessions-table").tBodies[0];
    body.replaceChildren(...page.sessions.map((s) => {
      const row = el("tr", { "data-session": s.session_id },
        el("td", { text: when(s.start) }),
        el("td", { text: s.name ? `${s.session_id.slice(0, 8)} (${s.name})` : s.session_id.slice(0, 8) }),
        el("td", { text: s.model || "unknown" }),
        el("td", { class: "status-" + s.outcome, text: s.outcome }),
        el("td", { class: "num", text: s.turns }),
        el("td", { class: "num", text: s.tool_calls_total }),
        el("td", { class: "num", text: s.tool_errors }),
        el("td", { class: "num", text: money(s.cost_usd) }),
        el("td", { class: "num", text: duration(s.duration_ms) }));
      row.addEventListener("click", () => { location.hash = "#session/" + encodeURIComponent(s.session_id); });
      return row;
    }));
    const t = page.totals || {};
    $("sessions-status").textContent = `${sess.offset + 1}–${sess.offset + page.sessions.length} of ${page.count} sessions · ${t.succeeded || 0} succeeded, ${t.failed || 0} failed, ${t.running || 0} running · ${money(t.cost_usd)}`;
    $("sessions-prev").disabled = sess.offset === 0;
    $("sessions-next").disabled = sess.offset + SESSIONS_PAGE >= page.count;
  } catch (e) {
    $("sessions-status").textContent = e.message;
  }
}
$("sessions-prev").addEventListener("click", () => { sess.offset = Math.max(0, sess.offset - SESSIONS_PAGE); loadSessions(); });
$("sessions-next").addEventListener("click", () => { sess.offset += SESSIONS_PAGE; loadSessions(); });

async function loadSession(id, more) {
  if (!more) { sess.id = id; sess.skip = 0; $("timeline").replaceChildren(); }
  $("session-detail").hidden = false;
  try {
    const page = await api(`/sessions/${encodeURIComponent(id)}?skip=${sess.skip}&limit=${TIMELINE_PAGE}`);
    const s = page.session;
    $("session-title").textContent = `session ${s.session_id}${s.name ? " (" + s.name + ")" : ""}`;
    const tools = Object.entries(s.tool_calls || {}).sort((a, b) => b[1] - a[1]).map(([t, n]) => `${t} ${n}`).join(", ");
    $("session-summary").textContent = `${s.model || "unknown"} · ${s.outcome}${s.outcome_reason ? ": " + s.outcome_reason : ""} · ${s.turns} turns · ${s.tool_calls_total} tool calls (${tools}) · ${s.tool_errors} errors · ${money(s.cost_usd)} · ${duration(s.duration_ms)}`;
    for (const item of page.timeline) $("timeline").append(eventRow(item, true));
    sess.skip += page.timeline.length;
    $("timeline-more").hidden = !page.more;
    $("session-detail").scrollIntoView();
  } catch (e) {
    $("session-summary").textContent = e.message;
  }
}
$("timeline-more").addEventListener("click", () => loadSession(sess.id, true));

// ---- groove gaps ----
async function loadGaps() {
  try {
    const all = $("gaps-all").checked ? "?all=true" : "";
    const answer = await api("/plugins/groove/gaps" + all);
    $("gaps-table").tBodies[0].replaceChildren(...answer.gaps.map((g) => {
      const row = el("tr", { "data-gap": g.id },
        el("td", { text: g.severity }), el("td", { text: typeof g.status === "string" ? g.status : JSON.stringify(g.status) }),
        el("td", { text: g.tool || "" }), el("td", { text: g.head || g.kind || "" }),
        el("td", { class: "num", text: g.sessions }), el("td", { class: "num", text: g.failures }),
        el("td", { class: "num", text: g.solutions }));
      row.addEventListener("click", () => { location.hash = "#gap/" + encodeURIComponent(g.id); });
      return row;
    }));
    $("gaps-status").textContent = `${answer.gaps.length} gap${answer.gaps.length === 1 ? "" : "s"}`;
  } catch (e) {
    $("gaps-status").textContent = e.message;
  }
}
$("gaps-all").addEventListener("change", loadGaps);

async function loadGap(id) {
  const box = $("gap-detail");
  box.hidden = false;
  try {
    const gap = await api("/plugins/groove/gap?id=" + encodeURIComponent(id));
    const solutions = (gap.solutions || []).map((s) => el("div", { class: "card" },
      el("div", { class: "s-cyan", text: `${s.kind} → ${s.target}: ${s.title}` }),
      el("div", { class: "dim", text: `confidence ${Number(s.confidence).toFixed(2)}${s.status ? " · " + s.status : ""}${s.decision ? " · decision: " + JSON.stringify(s.decision) : ""}` }),
      el("pre", { text: s.text || "" })));
    const applied = gap.applied ? el("p", { class: "s-green", text: `applied ${gap.applied.solution_id} at ${when(gap.applied.at)}` }) : el("p", { class: "dim", text: "no solution applied yet" });
    box.replaceChildren(
      el("h2", { text: `gap ${gap.id}: ${gap.tool || ""} ${gap.head || ""}` }),
      el("p", { class: "dim", text: `${gap.kind} · severity ${gap.severity} · ${gap.sessions} sessions · ${gap.failures} failures · ${gap.unrecovered} unrecovered · clean streak ${gap.clean_streak}` }),
      gap.example ? el("pre", { class: "failure", text: typeof gap.example === "string" ? gap.example : JSON.stringify(gap.example, null, 2) }) : "",
      applied,
      el("h2", { text: `solutions (${solutions.length})` }), ...solutions);
  } catch (e) {
    box.textContent = e.message;
  }
}

// ---- AI coder (when that plugin runs) ----
// A list of objects as a table (the first row's keys as columns); anything else as JSON.
function table(value) {
  const rows = Array.isArray(value) ? value : Object.values(value || {}).find(Array.isArray);
  if (!rows || rows.length === 0 || typeof rows[0] !== "object") return el("pre", { text: JSON.stringify(value, null, 2) });
  const keys = Object.keys(rows[0]).slice(0, 10);
  const cell = (v) => (v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
  return el("table", {}, el("thead", {}, el("tr", {}, ...keys.map((k) => el("th", { text: k })))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...keys.map((k) => el("td", { text: cell(r[k]) }))))));
}

async function loadAiCoder(name) {
  const box = $("ai-coder");
  try {
    const plugins = await api("/plugins");
    const plugin = plugins.plugins.find((p) => p.name === name);
    const has = (q) => plugin.queries.some((x) => x.name === q);
    const cards = [];
    // Live status, failures and cost first, then any other parameterless query.
    const wanted = ["coders", "alerts", "stats"].filter(has);
    const others = plugin.queries.filter((q) => !wanted.includes(q.name) && q.params.length === 0).map((q) => q.name);
    for (const q of [...wanted, ...others]) {
      const about = plugin.queries.find((x) => x.name === q).about;
      // Ended coders too: the table says each one's status.
      const answer = await api(`/plugins/${name}/${q}${q === "coders" ? "?all=true" : ""}`);
      cards.push(el("div", { class: "card", "data-query": q }, el("h2", { text: `${q}: ${about}` }), q === "stats" ? el("pre", { text: JSON.stringify(answer, null, 2) }) : table(answer)));
    }
    box.replaceChildren(el("p", { class: "dim", text: `${plugin.state} · lag ${plugin.total_lag} · ${plugin.processed} events` }), ...cards);
  } catch (e) {
    box.textContent = e.message;
  }
}

// ---- health and routing ----
let aiCoder = null;
async function loadHealth() {
  try {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    const response = await fetch("/api/health", { headers });
    const h = await response.json();
    $("health").textContent = h.error ? h.error : (h.ok ? "● live" : "● degraded") + " · " + h.plugins.map((p) => `${p.name} ${p.state}${p.lag ? " (lag " + p.lag + ")" : ""}`).join(", ");
    $("health").className = h.ok ? "s-green" : "s-yellow";
    aiCoder = (h.plugins || []).map((p) => p.name).find((n) => n.startsWith("ai-coder")) || null;
    $("nav-ai-coder").hidden = !aiCoder;
  } catch (e) {
    $("health").textContent = e.message;
  }
}

function route() {
  const hash = location.hash.slice(1) || "firehose";
  const [view, arg] = hash.split(/\/(.*)/s);
  const name = { session: "sessions", gap: "gaps" }[view] || view;
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== "view-" + name;
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.id === "nav-" + name);
  if (name === "sessions") {
    loadSessions();
    if (view === "session" && arg) loadSession(decodeURIComponent(arg), false); else $("session-detail").hidden = true;
  } else if (name === "gaps") {
    loadGaps();
    if (view === "gap" && arg) loadGap(decodeURIComponent(arg)); else $("gap-detail").hidden = true;
  } else if (name === "ai-coder" && aiCoder) {
    loadAiCoder(aiCoder);
  }
}

window.addEventListener("hashchange", route);
loadHealth().then(route);
setInterval(loadHealth, 5000);
startFirehose(null);
