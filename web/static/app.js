// Vigil's dashboard: reads the REST API and follows the journal's event stream.
// Plain DOM, no framework; every text from the API goes through textContent.
"use strict";

const incidents = new Map(); // id -> incident, as last fetched
const journal = [];          // newest first, the stream's events since the page opened
const JOURNAL_MAX = 200;
let policies = {};

// el builds an element: el("li", {class: "x"}, "text", child...).
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v; else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) {
    if (k === undefined || k === null || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

async function getJSON(path) {
  const r = await fetch(path, {headers: {Accept: "application/json"}});
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
    const err = new Error(path + ": " + msg);
    err.status = r.status;
    throw err;
  }
  return r.json();
}

// Times and durations.
const zero = t => !t || t.startsWith("0001-");
function clock(t) { return zero(t) ? "—" : new Date(t).toLocaleTimeString(); }
function span(ms) {
  if (ms < 0 || !isFinite(ms)) return "—";
  if (ms < 1000) return ms + " ms";
  const s = ms / 1000;
  if (s < 120) return s.toFixed(1) + " s";
  const m = Math.floor(s / 60);
  return m < 120 ? m + " min " + Math.round(s % 60) + " s" : Math.floor(m / 60) + " h " + (m % 60) + " min";
}
function between(a, b) {
  if (zero(a)) return "—";
  return span((zero(b) ? Date.now() : Date.parse(b)) - Date.parse(a));
}
const subj = s => s ? s.kind + "/" + s.id : "";

// Health words shown with a symbol and a color: the word carries the meaning.
const HEALTH = {Green: ["ok", "● Green"], Yellow: ["warn", "▲ Yellow"], Red: ["bad", "■ Red"]};
function healthBadge(h) {
  const [cls, text] = HEALTH[h] || ["idle", h || "unknown"];
  return el("span", {class: "badge " + cls}, text);
}
const STATE = {open: "warn", waiting: "warn", resolved: "ok", escalated: "bad", superseded: "idle",
  planned: "idle", intent: "warn", issued: "warn", succeeded: "ok", failed: "bad", skipped: "idle"};
const stateBadge = s => el("span", {class: "badge " + (STATE[s] || "idle")}, s || "unknown");
function hostClass(h) {
  switch (h.verdict && h.verdict.host_health) {
    case "up": return "ok";
    case "down": case "dead": return "bad";
    case "": case undefined: return "idle";
    default: return "warn"; // suspect, isolated, maintenance, partitioned
  }
}

// --- overview ---------------------------------------------------------------

function renderClusters(cs) {
  const body = document.querySelector("#clusters tbody");
  body.replaceChildren(...(cs.length ? cs.map(c => el("tr", {"data-cluster": c.name},
    el("th", {scope: "row"}, c.name), el("td", {}, healthBadge(c.health)),
    el("td", {}, c.healthy + " / " + c.desired), el("td", {}, c.policy), el("td", {}, c.reason || "")))
    : [el("tr", {}, el("td", {colspan: 5}, "No cluster is protected yet."))]));
}

function renderHosts(hosts, brakes) {
  const bySeg = new Map();
  for (const h of hosts) {
    const seg = h.segment || "(no segment)";
    if (!bySeg.has(seg)) bySeg.set(seg, []);
    bySeg.get(seg).push(h);
  }
  const cloudBrake = brakes.find(b => b.segment === "*");
  const sections = [...bySeg.keys()].sort().map(seg => {
    const b = cloudBrake || brakes.find(x => x.segment === seg);
    return el("section", {class: "segment", "data-segment": seg},
      el("h3", {}, "Segment " + seg),
      el("p", {class: "brake"}, b ? [el("span", {class: "badge bad"}, "Brake engaged"), " ", b.reason]
        : [el("span", {class: "badge ok"}, "Brake off"), " fencing and evacuation allowed"]),
      el("ul", {class: "grid"}, bySeg.get(seg).map(hostCard)));
  });
  document.getElementById("segments").replaceChildren(...(sections.length ? sections : [el("p", {}, "No host seen yet.")]));
}

function hostCard(h) {
  const v = h.verdict || {};
  const facts = ["service " + (h.service || "?"), h.power ? "power " + h.power : "power unknown"];
  if (h.forced_down) facts.push("forced down");
  if (h.maintenance) facts.push("maintenance");
  return el("li", {class: "host " + hostClass(h), "data-host": h.name, "data-verdict": v.host_health || ""},
    el("strong", {}, h.name),
    el("span", {}, "Verdict: " + (v.host_health || "not judged yet")),
    v.rule ? el("small", {}, "rule " + v.rule) : null,
    el("small", {}, facts.join(" · ")),
    h.fence_doubt ? el("small", {}, "fence doubted: " + h.fence_doubt) : null);
}

function renderCloud(c) {
  const p = document.getElementById("cloud");
  p.replaceChildren("Cloud: ", c.reachable ? el("span", {class: "badge ok"}, "reachable")
    : el("span", {class: "badge bad"}, "unreachable"), c.reachable ? "" : " " + (c.error || ""));
}

async function refreshOverview() {
  try {
    const [cs, hosts, cloud] = await Promise.all([getJSON("/v1/clusters"), getJSON("/v1/hosts"), getJSON("/v1/cloud")]);
    let brakes = [];
    try { brakes = await getJSON("/v1/brakes"); } catch (e) { if (e.status !== 404) throw e; }
    renderClusters(cs);
    renderHosts(hosts, brakes);
    renderCloud(cloud);
  } catch (e) {
    document.getElementById("cloud").textContent = "Cannot read Vigil's API: " + e.message;
  }
}

// --- incidents timeline -----------------------------------------------------

function stepLine(s) {
  const on = [s.server, s.host && "host " + s.host, s.target && "to " + s.target].filter(Boolean).join(" ");
  const took = zero(s.started) ? "not started" : (zero(s.finished) ? "running for " : "took ") + between(s.started, s.finished);
  return el("li", {"data-step": s.seq, "data-state": s.state},
    el("strong", {}, s.action + (s.hard ? " (hard)" : "")), on ? " " + on : "", " — ",
    stateBadge(s.state), " ", took, s.error ? " — " + s.error : "");
}

function incidentItem(inc) {
  const took = zero(inc.closed) ? "open for " + between(inc.opened, null) : "took " + between(inc.opened, inc.closed);
  return el("li", {"data-incident": inc.id, "data-state": inc.state, "data-subject": subj(inc.subject)},
    el("div", {class: "head"},
      el("a", {href: "#/incidents/" + inc.id}, "Incident " + inc.id),
      el("span", {}, subj(inc.subject)), stateBadge(inc.state),
      el("span", {}, "rule " + inc.rule), el("span", {}, "opened " + clock(inc.opened)), el("span", {}, took)),
    inc.reason ? el("div", {}, inc.reason) : null,
    (inc.steps || []).length ? el("ol", {class: "steps"}, inc.steps.map(stepLine)) : null);
}

function renderTimeline() {
  const list = [...incidents.values()].sort((a, b) => b.id - a.id).slice(0, 100);
  document.getElementById("timeline").replaceChildren(...(list.length ? list.map(incidentItem)
    : [el("li", {}, "No incident yet: nothing has failed.")]));
}

async function loadIncidents() {
  try {
    for (const inc of await getJSON("/v1/incidents?limit=100")) incidents.set(inc.id, inc);
    renderTimeline();
  } catch (e) {
    document.getElementById("timeline").replaceChildren(el("li", {}, "Cannot read the incidents: " + e.message));
  }
}

// Incidents named by the stream are fetched again, at most once per 250 ms each.
const pending = new Set();
let flushTimer = null;
function incidentChanged(id) {
  pending.add(id);
  if (!flushTimer) flushTimer = setTimeout(flushIncidents, 250);
}
async function flushIncidents() {
  flushTimer = null;
  const ids = [...pending];
  pending.clear();
  await Promise.all(ids.map(async id => {
    try { incidents.set(id, await getJSON("/v1/incidents/" + id)); } catch (_) { /* next event retries */ }
  }));
  renderTimeline();
  const shown = currentIncident();
  if (shown !== null && ids.includes(shown)) showIncident(shown);
}

let overviewTimer = null;
function overviewChanged() {
  if (!overviewTimer) overviewTimer = setTimeout(() => { overviewTimer = null; refreshOverview(); }, 300);
}

// --- journal stream ---------------------------------------------------------

function journalLine(ev) {
  return el("li", {"data-event": ev.id}, clock(ev.at) + "  " + ev.kind + "  " + ev.subject + "  " + ev.message);
}

function follow() {
  const live = document.getElementById("live");
  const es = new EventSource("/v1/stream");
  es.onopen = () => { live.textContent = "Live updates: connected"; };
  es.onerror = () => { live.textContent = "Live updates: reconnecting…"; };
  es.onmessage = m => {
    let ev;
    try { ev = JSON.parse(m.data); } catch (_) { return; }
    journal.unshift(ev);
    if (journal.length > JOURNAL_MAX) journal.pop();
    document.getElementById("journal").prepend(journalLine(ev));
    const j = document.getElementById("journal");
    while (j.children.length > JOURNAL_MAX) j.lastChild.remove();
    if (ev.incident) incidentChanged(ev.incident);
    if (ev.kind !== "step") overviewChanged();
  };
}

// --- one incident: its explanation ------------------------------------------

function currentIncident() {
  const m = location.hash.match(/^#\/incidents\/(\d+)$/);
  return m ? Number(m[1]) : null;
}

function fact(dl, term, value) {
  if (value === undefined || value === null || value === "") return;
  dl.append(el("dt", {}, term), el("dd", {}, value));
}

function ladderOf(inc) {
  const p = policies[inc.policy];
  if (!p) return null;
  return (inc.fault && p.ladders && p.ladders[inc.fault]) || p.ladder || null;
}

function explainChain(inc) {
  const items = [];
  const ev = inc.evidence || [];
  items.push(el("li", {"data-link": "evidence"}, el("strong", {}, "Observed: "),
    ev.length ? el("ul", {}, ev.map(e => el("li", {}, e))) : "no evidence recorded"));
  items.push(el("li", {"data-link": "rule"}, el("strong", {}, "Verdict: "),
    subj(inc.subject) + " judged failed by rule ", el("code", {}, inc.rule),
    inc.fault ? " (fault: " + inc.fault + ")" : ""));
  // A ladder is a server's; a host's recovery is fence, mark down, evacuate.
  const ladder = inc.subject && inc.subject.kind === "server" ? ladderOf(inc) : null;
  items.push(el("li", {"data-link": "policy"}, el("strong", {}, "Policy: "),
    "policy " + inc.policy + (inc.cluster ? " of cluster " + inc.cluster : ""),
    ladder ? "; its recovery ladder: " + ladder.join(" → ") : ""));
  for (const s of inc.steps || []) {
    const on = [s.server, s.host && "host " + s.host, s.target && "to " + s.target].filter(Boolean).join(" ");
    items.push(el("li", {"data-link": "step", "data-step": s.seq}, el("strong", {}, "Step " + s.seq + ": "),
      s.action + (on ? " " + on : ""), s.rule ? ", because " + s.rule : "", " — ", stateBadge(s.state),
      zero(s.started) ? "" : ", started " + clock(s.started),
      zero(s.finished) ? "" : ", finished " + clock(s.finished) + " (took " + between(s.started, s.finished) + ")",
      s.error ? "; result: " + s.error : (s.state === "succeeded" ? "; result: its effect was observed" : "")));
  }
  const closing = {resolved: "Resolved", escalated: "Escalated to an operator", superseded: "Superseded",
    waiting: "Waiting", open: "Under way"}[inc.state] || inc.state;
  items.push(el("li", {"data-link": "outcome"}, el("strong", {}, "Outcome: "), closing,
    inc.reason ? ": " + inc.reason : "", zero(inc.closed) ? "" : " (after " + between(inc.opened, inc.closed) + ")"));
  return items;
}

async function showIncident(id) {
  document.getElementById("overview").hidden = true;
  const art = document.getElementById("incident");
  art.hidden = false;
  let inc;
  try {
    inc = await getJSON("/v1/incidents/" + id);
  } catch (e) {
    document.getElementById("incident-h").textContent = "Incident " + id;
    document.getElementById("incident-facts").replaceChildren(el("dt", {}, "Error"), el("dd", {}, e.message));
    document.getElementById("chain").replaceChildren();
    document.querySelector("#steps tbody").replaceChildren();
    return;
  }
  if (currentIncident() !== id) return; // the reader moved on
  incidents.set(id, inc);
  document.getElementById("incident-h").textContent = "Incident " + id + ": " + subj(inc.subject);
  const dl = document.getElementById("incident-facts");
  dl.replaceChildren();
  fact(dl, "State", stateBadge(inc.state));
  fact(dl, "Subject", subj(inc.subject));
  fact(dl, "Cluster", inc.cluster);
  fact(dl, "Policy", inc.policy);
  fact(dl, "Rule", inc.rule);
  fact(dl, "Reason", inc.reason);
  fact(dl, "Opened", new Date(inc.opened).toLocaleString());
  if (!zero(inc.closed)) fact(dl, "Closed", new Date(inc.closed).toLocaleString() + " (took " + between(inc.opened, inc.closed) + ")");
  document.getElementById("chain").replaceChildren(...explainChain(inc));
  document.querySelector("#steps tbody").replaceChildren(...(inc.steps || []).map(s => el("tr", {"data-step": s.seq},
    el("td", {}, s.seq), el("td", {}, s.action + (s.hard ? " (hard)" : "")),
    el("td", {}, [s.server, s.host && "host " + s.host, s.target && "→ " + s.target].filter(Boolean).join(" ")),
    el("td", {}, s.rule), el("td", {}, stateBadge(s.state)), el("td", {}, clock(s.started)),
    el("td", {}, clock(s.finished)), el("td", {}, zero(s.started) ? "—" : between(s.started, s.finished)),
    el("td", {}, s.error || (s.state === "succeeded" ? "ok" : "")))));
}

// --- routing ----------------------------------------------------------------

function route() {
  const id = currentIncident();
  if (id !== null) {
    showIncident(id);
    return;
  }
  document.getElementById("incident").hidden = true;
  document.getElementById("overview").hidden = false;
  renderTimeline();
}

async function start() {
  window.addEventListener("hashchange", route);
  try { policies = await getJSON("/v1/policies"); } catch (_) { /* the chain shows no ladder */ }
  follow();
  await Promise.all([refreshOverview(), loadIncidents()]);
  route();
  // Levels, not edges: the overview is read again every few seconds whatever the
  // stream says, and open incidents' durations tick on.
  setInterval(refreshOverview, 5000);
  setInterval(() => {
    if (currentIncident() === null && [...incidents.values()].some(i => zero(i.closed))) renderTimeline();
  }, 2000);
}

start();
