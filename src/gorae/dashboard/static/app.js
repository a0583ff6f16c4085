// gorae dashboard: the Engine API under ./api/ and the Prometheus text at ./metrics, nothing else.
"use strict";

const API = "api";
const HEADERS = { "X-Gorae-Dashboard": "1" }; // the server refuses state changes without it (CSRF)
const SAMPLE_MS = 2000;
const HISTORY = 150; // points per series: 5 minutes at one per 2 s
const SPARK = 60; // points in a card's sparkline

const state = { containers: [], sig: "", hist: {}, prev: null, detail: null, logCtl: null, tab: "containers", nodeId: "" };

const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

async function api(path, opts = {}) {
  const r = await fetch(API + path, { ...opts, headers: { ...HEADERS, ...(opts.headers || {}) }, credentials: "same-origin" });
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).message || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return r;
}
const getJSON = async (path) => (await api(path)).json();

function status(text, bad = false) {
  const s = $("#status");
  s.textContent = text;
  s.classList.toggle("bad", bad);
}

function human(n) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(n < 10 ? 2 : 1) : String(Math.round(n))) + units[i];
}

function ago(seconds) {
  const d = Date.now() / 1000 - seconds;
  if (d < 60) return "just now";
  if (d < 3600) return Math.floor(d / 60) + " min ago";
  if (d < 86400) return Math.floor(d / 3600) + " h ago";
  return Math.floor(d / 86400) + " days ago";
}

function ports(list) {
  return (list || []).map((p) => (p.PublicPort ? `${p.IP && p.IP !== "0.0.0.0" ? p.IP + ":" : ""}${p.PublicPort}→` : "") + `${p.PrivatePort}/${p.Type}`).join(", ");
}

// ---- metrics ---------------------------------------------------------------------------------------

const WANTED = /^(container_cpu_usage_seconds_total|container_memory_working_set_bytes|container_network_receive_bytes_total|container_network_transmit_bytes_total)\{(.*)\} (\S+)$/;
const NAME = /(?:^|,)name="((?:[^"\\]|\\.)*)"/;

function parseMetrics(text) {
  const out = {};
  for (const line of text.split("\n")) {
    const m = WANTED.exec(line);
    if (!m) continue;
    const n = NAME.exec(m[2]);
    if (!n) continue;
    const slot = (out[n[1]] ||= { cpu: 0, mem: 0, rx: 0, tx: 0 });
    const v = parseFloat(m[3]);
    if (m[1] === "container_cpu_usage_seconds_total") slot.cpu += v;
    else if (m[1] === "container_memory_working_set_bytes") slot.mem = v;
    else if (m[1] === "container_network_receive_bytes_total") slot.rx += v;
    else slot.tx += v;
  }
  return out;
}

async function sample() {
  try {
    const r = await fetch("metrics", { credentials: "same-origin" });
    if (!r.ok) throw new Error("metrics: " + r.status);
    const now = performance.now() / 1000;
    const cur = parseMetrics(await r.text());
    const prev = state.prev;
    if (prev) {
      const dt = now - prev.t;
      for (const [name, v] of Object.entries(cur)) {
        const p = prev.v[name];
        if (!p) continue;
        const h = (state.hist[name] ||= { cpu: [], mem: [], rx: [], tx: [] });
        h.cpu.push(Math.max(0, ((v.cpu - p.cpu) / dt) * 100));
        h.mem.push(v.mem);
        h.rx.push(Math.max(0, (v.rx - p.rx) / dt));
        h.tx.push(Math.max(0, (v.tx - p.tx) / dt));
        for (const k of ["cpu", "mem", "rx", "tx"]) if (h[k].length > HISTORY) h[k].splice(0, h[k].length - HISTORY);
      }
    }
    state.prev = { t: now, v: cur };
    drawSparks();
    drawDetail();
  } catch (e) {
    status(String(e.message || e), true);
  }
}

function line(values, max, w, h) {
  if (!values.length) return "";
  const step = values.length > 1 ? w / (values.length - 1) : 0;
  return values.map((v, i) => `${(i * step).toFixed(1)},${(h - (max > 0 ? (v / max) * (h - 2) : 0) - 1).toFixed(1)}`).join(" ");
}

function plot(svg, series, { fixedMax } = {}) {
  const [w, h] = [300, 80];
  const max = fixedMax || Math.max(1, ...series.flatMap((s) => s.values));
  svg.replaceChildren(...series.map((s, i) => {
    const pl = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    pl.setAttribute("points", line(s.values, max, w, h));
    pl.setAttribute("class", "series s" + i);
    return pl;
  }));
  svg.dataset.points = String(series[0].values.length);
}

function drawSparks() {
  for (const card of document.querySelectorAll("#container-list .card")) {
    const h = state.hist[card.dataset.name];
    if (!h || !$("svg.cpu", card)) continue; // a stopped container's card has no sparklines (its history may remain)
    const cpu = h.cpu.slice(-SPARK), mem = h.mem.slice(-SPARK);
    plot($("svg.cpu", card), [{ values: cpu }], { fixedMax: Math.max(100, ...cpu) });
    plot($("svg.mem", card), [{ values: mem }]);
    $(".cpu-v", card).textContent = cpu.length ? cpu[cpu.length - 1].toFixed(1) + "%" : "";
    $(".mem-v", card).textContent = mem.length ? human(mem[mem.length - 1]) : "";
  }
}

function drawDetail() {
  const d = state.detail;
  if (!d) return;
  const h = state.hist[d.name] || { cpu: [], mem: [], rx: [], tx: [] };
  plot($("#g-cpu"), [{ values: h.cpu }], { fixedMax: Math.max(100, ...h.cpu) });
  plot($("#g-mem"), [{ values: h.mem }]);
  plot($("#g-net"), [{ values: h.rx }, { values: h.tx }]);
  const last = (a) => (a.length ? a[a.length - 1] : 0);
  $("#g-cpu-v").textContent = last(h.cpu).toFixed(1) + "%";
  $("#g-mem-v").textContent = human(last(h.mem));
  $("#g-net-v").textContent = `${human(last(h.rx))}/s in, ${human(last(h.tx))}/s out`;
}

// ---- containers ------------------------------------------------------------------------------------

async function act(id, action) {
  try {
    if (action === "remove") {
      if (!confirm("Remove this container (and stop it first if running)?")) return;
      await api(`/containers/${id}?force=1`, { method: "DELETE" });
    } else {
      await api(`/containers/${id}/${action}`, { method: "POST" });
    }
    status(`${action}: done`);
  } catch (e) {
    status(`${action}: ${e.message}`, true);
  }
  refreshContainers();
}

function card(c) {
  const name = (c.Names && c.Names[0] || c.Id).replace(/^\//, "");
  const running = c.State === "running" || c.State === "paused" || c.State === "restarting";
  const svg = (cls) => { const s = document.createElementNS("http://www.w3.org/2000/svg", "svg"); s.setAttribute("class", cls); s.setAttribute("viewBox", "0 0 300 80"); s.setAttribute("preserveAspectRatio", "none"); return s; };
  const btn = (label, action, show) => show ? el("button", { "data-action": action, onclick: () => act(c.Id, action) }, label) : "";
  return el("div", { class: "card", "data-name": name, "data-id": c.Id, "data-state": c.State },
    el("div", { class: "top" },
      el("span", { class: "state " + c.State }, c.State),
      el("b", { class: "name" }, name),
      el("span", { class: "muted image" }, c.Image)),
    el("div", { class: "muted small" }, el("span", { class: "status-text" }, c.Status), c.Ports && c.Ports.length ? " · " + ports(c.Ports) : ""),
    running ? el("div", { class: "sparks" },
      el("span", { class: "small" }, "CPU ", el("span", { class: "cpu-v" })), svg("cpu"),
      el("span", { class: "small" }, "Mem ", el("span", { class: "mem-v" })), svg("mem")) : "",
    el("div", { class: "actions" },
      btn("start", "start", !running),
      btn("stop", "stop", running),
      btn("restart", "restart", true),
      btn("remove", "remove", true),
      el("button", { "data-action": "open", onclick: () => openDetail(c.Id, name) }, "logs & graphs")));
}

async function refreshContainers() {
  try {
    const all = $("#show-all").checked ? 1 : 0;
    const list = await getJSON(`/containers/json?all=${all}`);
    const sig = JSON.stringify(list.map((c) => [c.Id, c.Names, c.Image, c.State, c.Ports]));
    state.containers = list;
    if (sig !== state.sig) {
      state.sig = sig;
      const box = $("#container-list");
      box.replaceChildren(...list.map(card));
      if (!list.length) box.append(el("p", { class: "muted" }, "No containers."));
      drawSparks();
    }
    for (const c of list) { // the status text ("Up 5 minutes") changes without a re-render
      const t = document.querySelector(`#container-list .card[data-id="${c.Id}"] .status-text`);
      if (t && t.textContent !== c.Status) t.textContent = c.Status;
    }
    status("updated " + new Date().toLocaleTimeString());
  } catch (e) {
    status("containers: " + e.message, true);
  }
}

async function openDetail(id, name) {
  state.detail = { id, name };
  $("#detail").hidden = false;
  $("#detail-name").textContent = name;
  $("#logs").textContent = "";
  drawDetail();
  followLogs();
  $("#detail").scrollIntoView({ behavior: "smooth" });
}

function closeDetail() {
  state.detail = null;
  if (state.logCtl) state.logCtl.abort();
  $("#detail").hidden = true;
}

function appendLog(text) {
  const pre = $("#logs");
  pre.textContent += text;
  if (pre.textContent.length > 200000) pre.textContent = pre.textContent.slice(-150000);
  pre.scrollTop = pre.scrollHeight;
}

async function followLogs() {
  const d = state.detail;
  if (!d) return;
  if (state.logCtl) state.logCtl.abort();
  const ctl = (state.logCtl = new AbortController());
  try {
    const info = await getJSON(`/containers/${d.id}/json`);
    const follow = $("#log-follow").checked ? 1 : 0;
    const r = await api(`/containers/${d.id}/logs?stdout=1&stderr=1&tail=200&follow=${follow}`, { signal: ctl.signal });
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = new Uint8Array(0);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (info.Config.Tty) { appendLog(dec.decode(value, { stream: true })); continue; }
      const joined = new Uint8Array(buf.length + value.length);
      joined.set(buf); joined.set(value, buf.length); buf = joined;
      while (buf.length >= 8) { // docker's multiplexed stream: 8-byte header, then the frame
        const len = ((buf[4] << 24) | (buf[5] << 16) | (buf[6] << 8) | buf[7]) >>> 0;
        if (buf.length < 8 + len) break;
        appendLog(dec.decode(buf.subarray(8, 8 + len)));
        buf = buf.slice(8 + len);
      }
    }
  } catch (e) {
    if (e.name !== "AbortError") appendLog(`\n[logs: ${e.message}]\n`);
  }
}

// ---- images, volumes, networks, swarm, events ------------------------------------------------------

function fill(tbody, rows) {
  tbody.replaceChildren(...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c)))));
  const cols = tbody.parentElement.querySelectorAll("thead th").length || 1;
  if (!rows.length) tbody.append(el("tr", { class: "none" }, el("td", { colspan: String(cols), class: "muted" }, "None.")));
}

// docker node ls's columns: STATUS and AVAILABILITY capitalised, MANAGER STATUS Leader/Reachable/Unreachable
const title = (s) => (s ? s[0].toUpperCase() + s.slice(1) : "");

function nodeRow(n) {
  const d = n.Description || {}, ms = n.ManagerStatus;
  const self = n.ID === state.nodeId ? " *" : "";
  return [(d.Hostname || n.ID) + self, title(n.Status && n.Status.State), title(n.Spec && n.Spec.Availability),
    (n.Spec && n.Spec.Role) || "", ms ? (ms.Leader ? "Leader" : title(ms.Reachability)) : "", (d.Engine && d.Engine.EngineVersion) || ""];
}

function serviceRow(s, tasks) {
  const mine = tasks.filter((t) => t.ServiceID === s.ID && t.DesiredState !== "shutdown");
  const mode = (s.Spec && s.Spec.Mode) || {};
  // docker service ls's REPLICAS: the manager's own count (status=true) of running tasks on live nodes
  const st = s.ServiceStatus;
  const running = st ? st.RunningTasks : mine.filter((t) => t.Status && t.Status.State === "running").length;
  const want = st ? st.DesiredTasks : mode.Replicated ? mode.Replicated.Replicas : mode.Global ? mine.length : "?";
  const states = {};
  for (const t of mine) { const st = (t.Status && t.Status.State) || "?"; states[st] = (states[st] || 0) + 1; }
  const image = ((s.Spec.TaskTemplate && s.Spec.TaskTemplate.ContainerSpec && s.Spec.TaskTemplate.ContainerSpec.Image) || "").split("@")[0];
  return [s.Spec.Name, mode.Replicated ? "replicated" : mode.Global ? "global" : "", `${running}/${want}`, image,
    Object.entries(states).map(([k, v]) => `${k}: ${v}`).join(", ")];
}

async function refreshTab(tab) {
  try {
    if (tab === "images" || tab === "volumes") {
      const df = await getJSON("/system/df");
      fill($("#images tbody"), (df.Images || []).map((i) => [
        (i.RepoTags || []).join(", ") || "<none>", i.Id.replace("sha256:", "").slice(0, 12), human(i.Size), ago(i.Created), i.Containers]));
      fill($("#volumes tbody"), (df.Volumes || []).map((v) => [
        v.Name, v.Driver, v.UsageData && v.UsageData.Size >= 0 ? human(v.UsageData.Size) : "-", v.UsageData ? v.UsageData.RefCount : ""]));
    } else if (tab === "networks") {
      const nets = await getJSON("/networks");
      fill($("#networks tbody"), nets.map((n) => [
        n.Name, n.Driver, ((n.IPAM && n.IPAM.Config) || []).map((c) => c.Subnet).join(", "), Object.keys(n.Containers || {}).length]));
    } else if (tab === "swarm") {
      const [nodes, services, tasks] = await Promise.all([getJSON("/nodes"), getJSON("/services?status=true"), getJSON("/tasks")]);
      nodes.sort((a, b) => ((a.Description || {}).Hostname || "").localeCompare((b.Description || {}).Hostname || ""));
      fill($("#nodes tbody"), nodes.map(nodeRow));
      services.sort((a, b) => a.Spec.Name.localeCompare(b.Spec.Name));
      fill($("#services tbody"), services.map((s) => serviceRow(s, tasks)));
    }
  } catch (e) {
    status(`${tab}: ${e.message}`, true);
  }
}

async function engineInfo() {
  try {
    const info = await getJSON("/info");
    $("#engine").textContent = `${info.Name || ""} · ${info.ContainersRunning}/${info.Containers} running · ${info.Images} images`;
    const swarm = !!(info.Swarm && info.Swarm.LocalNodeState === "active" && info.Swarm.ControlAvailable);
    state.nodeId = swarm ? info.Swarm.NodeID : "";
    $('#tabs [data-tab="swarm"]').hidden = !swarm; // nodes, services and tasks answer on managers only
    if (state.tab === "swarm") { if (swarm) refreshTab("swarm"); else showTab("containers"); }
  } catch (e) {
    status("info: " + e.message, true);
  }
}

let refreshSoon = null;
function scheduleRefresh() {
  if (refreshSoon) return;
  refreshSoon = setTimeout(() => { refreshSoon = null; refreshContainers(); engineInfo(); if (state.tab !== "containers") refreshTab(state.tab); }, 300);
}

async function followEvents() {
  for (;;) {
    try {
      const r = await api(`/events?since=${Math.floor(Date.now() / 1000) - 600}`);
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const ev = JSON.parse(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
          const a = ev.Actor || {};
          const who = (a.Attributes && a.Attributes.name) || (a.ID || "").slice(0, 12);
          const list = $("#event-list");
          list.prepend(el("li", {}, el("span", { class: "muted" }, new Date(ev.time * 1000).toLocaleTimeString()), ` ${ev.Type} ${ev.Action} `, el("b", {}, who)));
          while (list.children.length > 200) list.lastChild.remove();
          if (["container", "image", "volume", "network", "node", "service"].includes(ev.Type)) scheduleRefresh();
        }
      }
    } catch (e) {
      status("events: " + e.message, true);
    }
    await new Promise((res) => setTimeout(res, 3000));
  }
}

function showTab(tab) {
  state.tab = tab;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === tab);
  for (const s of document.querySelectorAll("section.tab")) s.classList.toggle("active", s.id === tab);
  if (tab !== "containers") closeDetail();
  refreshTab(tab);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("#detail-close").addEventListener("click", closeDetail);
  $("#log-follow").addEventListener("change", () => { $("#logs").textContent = ""; followLogs(); });
  $("#show-all").addEventListener("change", () => { state.sig = ""; refreshContainers(); });
  engineInfo();
  refreshContainers();
  sample();
  followEvents();
  setInterval(sample, SAMPLE_MS);
  setInterval(refreshContainers, 5000);
  setInterval(engineInfo, 10000);
});
