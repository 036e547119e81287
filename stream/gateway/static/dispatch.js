// Corridor dispatch map: draws routes, events, vehicles and ships from the gateway's data (no tiles),
// and lists live alerts from /dispatch/alerts. State is mirrored in <body data-*> for tests.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const K = 1000; // world units per degree of latitude
const COS = Math.cos((49 * Math.PI) / 180);
const state = {
  token: "", routes: new Map(), alerts: new Map(), feed: [], received: 0, view: null,
  vb: null, scene: null, focus: null, routeKey: "", socket: null, retry: 1000,
};
const $ = (id) => document.getElementById(id);

function project(lon, lat) { return [lon * COS * K, -lat * K]; }

function pathOf(coords) {
  let d = "";
  for (let i = 0; i < coords.length; i++) {
    const [x, y] = project(coords[i][0], coords[i][1]);
    d += (i ? "L" : "M") + x.toFixed(2) + " " + y.toFixed(2);
  }
  return d;
}

function geometryPath(g) {
  if (!g) return "";
  switch (g.type) {
    case "Point": { const [x, y] = project(g.coordinates[0], g.coordinates[1]); return `M${x} ${y}h0`; }
    case "LineString": return pathOf(g.coordinates);
    case "MultiLineString": return g.coordinates.map(pathOf).join("");
    case "Polygon": return g.coordinates.map((r) => pathOf(r) + "Z").join("");
    case "MultiPolygon": return g.coordinates.map((p) => p.map((r) => pathOf(r) + "Z").join("")).join("");
    default: return "";
  }
}

function el(name, attrs, text) {
  const node = document.createElementNS(SVGNS, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function html(name, cls, text) {
  const node = document.createElement(name);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- view: viewBox zoom and pan ----
function setView(bbox) {
  const [a, b] = [project(bbox[0], bbox[3]), project(bbox[2], bbox[1])];
  fit(a[0], a[1], b[0] - a[0], b[1] - a[1]);
}

function fit(x, y, w, h) {
  const svg = $("map");
  const ratio = svg.clientWidth / Math.max(1, svg.clientHeight);
  if (w / h < ratio) { const nw = h * ratio; x -= (nw - w) / 2; w = nw; } else { const nh = w / ratio; y -= (nh - h) / 2; h = nh; }
  state.vb = [x, y, w, h];
  applyView();
}

function applyView() {
  const [x, y, w, h] = state.vb;
  const svg = $("map");
  svg.setAttribute("viewBox", `${x} ${y} ${w} ${h}`);
  const perPixel = w / Math.max(1, svg.clientWidth);
  $("layer-labels").setAttribute("font-size", (12 * perPixel).toFixed(3));
  for (const t of $("layer-labels").children) t.setAttribute("dx", (6 * perPixel).toFixed(3));
}

function installZoom() {
  const svg = $("map");
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [x, y, w, h] = state.vb;
    const r = svg.getBoundingClientRect();
    const px = x + ((e.clientX - r.left) / r.width) * w, py = y + ((e.clientY - r.top) / r.height) * h;
    const f = e.deltaY > 0 ? 1.25 : 0.8;
    state.vb = [px - (px - x) * f, py - (py - y) * f, w * f, h * f];
    applyView();
  }, { passive: false });
  let drag = null;
  svg.addEventListener("pointerdown", (e) => { drag = [e.clientX, e.clientY, ...state.vb]; svg.classList.add("dragging"); });
  window.addEventListener("pointerup", () => { drag = null; svg.classList.remove("dragging"); });
  window.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const r = svg.getBoundingClientRect();
    const [sx, sy, x, y, w, h] = drag;
    state.vb = [x - ((e.clientX - sx) / r.width) * w, y - ((e.clientY - sy) / r.height) * h, w, h];
    applyView();
  });
  window.addEventListener("resize", () => state.vb && fit(...state.vb));
}

function renderViews(views) {
  const nav = $("views");
  nav.replaceChildren();
  for (const [name, bbox] of Object.entries(views)) {
    const button = html("button", "", name);
    button.type = "button";
    button.dataset.view = name;
    button.setAttribute("aria-pressed", String(name === state.view));
    button.addEventListener("click", () => {
      state.view = name;
      for (const b of nav.children) b.setAttribute("aria-pressed", String(b.dataset.view === name));
      setView(bbox);
    });
    nav.append(button);
  }
}

// ---- data ----
async function getJSON(path) {
  const response = await fetch(path, { headers: { Authorization: "Bearer " + state.token }, cache: "no-store" });
  if (response.status === 401 || response.status === 403) { askToken((await response.json()).error); throw new Error("unauthorized"); }
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response.json();
}

function drawScene(scene) {
  const water = $("layer-water"), structures = $("layer-structures"), terminals = $("layer-terminals");
  water.replaceChildren(); structures.replaceChildren(); terminals.replaceChildren();
  const labels = $("layer-labels");
  labels.querySelectorAll(".place").forEach((n) => n.remove());
  if (!scene) return;
  for (const w of scene.waterways || []) water.append(el("path", { class: "water", d: pathOf(w.coordinates) }));
  for (const s of scene.structures || []) structures.append(el("path", { class: "structure", d: pathOf(s.coordinates) }));
  for (const t of scene.terminals || []) {
    const [x, y] = project(...t.coordinates);
    const mark = el("path", { class: "terminal", d: `M${x} ${y}h0`, "data-terminal": t.id });
    mark.append(el("title", {}, t.name));
    terminals.append(mark);
  }
  for (const p of scene.places || []) {
    const [x, y] = project(...p.coordinates);
    labels.append(el("text", { class: "label place", x, y }, p.name));
  }
  $("notes").textContent = (scene.notes || []).join(" ");
}

function drawSnapshot(snap) {
  if (JSON.stringify(snap.scene) !== JSON.stringify(state.scene)) {
    state.scene = snap.scene;
    drawScene(snap.scene);
    const views = (snap.scene && snap.scene.views) || {};
    if (!state.view) {
      state.view = Object.keys(views)[0] || null;
      if (state.view) setView(views[state.view]); else fitData(snap);
    }
    renderViews(views);
  }
  const key = snap.routes.map((r) => r.route_id).join(",");
  if (key !== state.routeKey) {
    state.routeKey = key;
    const layer = $("layer-routes");
    layer.replaceChildren();
    state.routes.clear();
    for (const r of snap.routes) {
      const path = el("path", { class: "route", d: pathOf(r.coordinates), "data-route": r.route_id, "data-driver": r.driver_id });
      path.append(el("title", {}, `${r.driver_id} · ${r.route_id}${r.destination ? " → " + r.destination : ""}`));
      layer.append(path);
      state.routes.set(r.route_id, { ...r, path, dot: null });
    }
  }
  const perimeters = $("layer-perimeters"), events = $("layer-events");
  perimeters.replaceChildren(); events.replaceChildren();
  for (const e of snap.events) {
    const polygon = e.geometry.type.endsWith("Polygon");
    const zone = polygon ? " " + ((e.title || "").split("périmètre ")[1] || "").toLowerCase() : "";
    const cls = polygon ? "perimeter" + zone : `event ${e.kind}${e.geometry.type === "Point" ? " point" : ""}`;
    const path = el("path", { class: cls, d: geometryPath(e.geometry), "data-event": e.id, "data-kind": e.kind });
    path.append(el("title", {}, `${e.kind}: ${e.title || e.street || e.id}`));
    (polygon ? perimeters : events).append(path);
  }
  const vessels = $("layer-vessels"), labels = $("layer-labels");
  vessels.replaceChildren();
  labels.querySelectorAll(".ship").forEach((n) => n.remove());
  for (const v of snap.vessels) {
    const [x, y] = project(...v.geometry.coordinates);
    const dot = el("path", { class: "vessel", d: `M${x} ${y}h0`, "data-vessel": v.id });
    dot.append(el("title", {}, v.name || v.id));
    vessels.append(dot);
    labels.append(el("text", { class: "label ship", x, y }, v.name || v.id));
  }
  applyView();
  document.body.dataset.routes = String(snap.routes.length);
  document.body.dataset.events = String(snap.events.length);
  document.body.dataset.vessels = String(snap.vessels.length);
  paintAlerts();
}

function fitData(snap) {
  let minx = 180, miny = 90, maxx = -180, maxy = -90;
  for (const r of snap.routes) for (const [x, y] of r.coordinates) {
    minx = Math.min(minx, x); maxx = Math.max(maxx, x); miny = Math.min(miny, y); maxy = Math.max(maxy, y);
  }
  if (minx > maxx) { minx = -5; maxx = 10; miny = 41; maxy = 51; }
  const pad = Math.max(maxx - minx, maxy - miny) * 0.05 + 0.005;
  setView([minx - pad, miny - pad, maxx + pad, maxy + pad]);
}

function drawPositions(data) {
  const layer = $("layer-vehicles");
  let count = 0;
  for (const [routeId, [lon, lat]] of Object.entries(data.vehicles)) {
    const route = state.routes.get(routeId);
    if (!route) continue;
    const [x, y] = project(lon, lat);
    if (!route.dot) {
      route.dot = el("path", { class: "vehicle", "data-route": routeId });
      route.dot.append(el("title", {}, route.driver_id));
      layer.append(route.dot);
    }
    route.dot.setAttribute("d", `M${x.toFixed(2)} ${y.toFixed(2)}h0`);
    count++;
  }
  document.body.dataset.vehicles = String(count);
  paintAlerts();
}

// ---- alerts ----
function onAlert(message) {
  const a = message.alert;
  state.received++;
  if (a.state === "cleared") state.alerts.delete(a.alert_id); else state.alerts.set(a.alert_id, a);
  state.feed.unshift(message);
  if (state.feed.length > 80) state.feed.pop();
  scheduleRender();
}

let pending = false;
function scheduleRender() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; renderAlerts(); });
}

function describe(a) {
  const ahead = a.state !== "cleared" && a.distance_ahead_m != null ? ` · ${(a.distance_ahead_m / 1000).toFixed(1)} km ahead` : "";
  return (a.title || a.street || a.event_id) + ahead;
}

function renderAlerts() {
  const byDriver = new Map();
  for (const a of state.alerts.values()) {
    if (!byDriver.has(a.driver_id)) byDriver.set(a.driver_id, []);
    byDriver.get(a.driver_id).push(a);
  }
  const drivers = $("drivers");
  drivers.replaceChildren();
  const sorted = [...byDriver.entries()].sort((x, y) => x[0].localeCompare(y[0]));
  for (const [driver, alerts] of sorted.slice(0, 300)) {
    const li = html("li");
    li.dataset.driver = driver;
    li.append(html("span", "driver", driver));
    for (const a of alerts) {
      const why = html("span", "why");
      why.append(html("span", "kind " + a.kind, a.kind), document.createTextNode(describe(a)));
      li.append(why);
    }
    li.addEventListener("click", () => focusRoute(alerts[0].route_id));
    drivers.append(li);
  }
  $("affected-count").textContent = String(byDriver.size);
  const feed = $("feed");
  feed.replaceChildren();
  for (const m of state.feed.slice(0, 60)) {
    const a = m.alert;
    const li = html("li");
    li.dataset.alertId = a.alert_id;
    li.dataset.eventId = a.event_id;
    li.dataset.driver = a.driver_id;
    li.dataset.state = a.state;
    const t = html("time", "", (a.created_at || "").slice(11, 19));
    li.append(t, html("span", "state " + a.state, a.state), html("span", "kind " + a.kind, a.kind),
      document.createTextNode(`${a.driver_id} — ${describe(a)}`));
    feed.append(li);
  }
  const kinds = {};
  for (const a of state.alerts.values()) kinds[a.kind] = (kinds[a.kind] || 0) + 1;
  const parts = Object.entries(kinds).sort().map(([k, n]) => `${k} ${n}`);
  $("counters").textContent = `${state.routes.size} routes · ${byDriver.size} drivers affected · ` +
    `${state.alerts.size} open alerts${parts.length ? " (" + parts.join(", ") + ")" : ""} · ${state.received} received`;
  document.body.dataset.alerts = String(state.received);
  document.body.dataset.open = String(state.alerts.size);
  document.body.dataset.affected = String(byDriver.size);
  paintAlerts();
}

function paintAlerts() {
  const hit = new Set([...state.alerts.values()].map((a) => a.route_id));
  for (const [id, r] of state.routes) {
    r.path.classList.toggle("hit", hit.has(id));
    r.path.classList.toggle("focus", id === state.focus);
    if (r.dot) r.dot.classList.toggle("hit", hit.has(id));
  }
  const focused = state.routes.get(state.focus);
  if (focused) focused.path.parentNode.append(focused.path);
}

function focusRoute(routeId) {
  state.focus = state.focus === routeId ? null : routeId;
  paintAlerts();
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const last = state.feed.length ? `&last_id=${encodeURIComponent(state.feed[0].id)}` : "";
  const ws = new WebSocket(`${scheme}//${location.host}/dispatch/alerts?token=${encodeURIComponent(state.token)}${last}`);
  state.socket = ws;
  ws.onopen = () => { state.retry = 1000; };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === "hello") setStatus("live", "live");
    else if (m.type === "alert") onAlert(m);
  };
  ws.onclose = (e) => {
    if (e.code === 4401 || e.code === 4403) { askToken(e.reason); return; }
    setStatus("reconnecting…", "error");
    setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 15000);
  };
}

function setStatus(text, cls) {
  const s = $("status");
  s.textContent = text;
  s.className = "status " + (cls || "");
  document.body.dataset.status = cls || text;
}

function askToken(reason) {
  setStatus(reason || "token needed", "error");
  $("login").hidden = false;
}

async function refresh() {
  try { drawSnapshot(await getJSON("/dispatch/snapshot")); } catch (err) { console.warn(err); }
}

async function refreshPositions() {
  try { drawPositions(await getJSON("/dispatch/positions")); } catch (err) { console.warn(err); }
}

function start() {
  installZoom();
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  state.token = fromHash || sessionStorage.getItem("corridor-token") || "";
  if (fromHash) { sessionStorage.setItem("corridor-token", fromHash); history.replaceState(null, "", location.pathname); }
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("corridor-token", $("token-input").value.trim());
    location.reload();
  });
  if (!state.token) { askToken("token needed"); return; }
  refresh().then(refreshPositions).then(connect);
  setInterval(refresh, 5000);
  setInterval(refreshPositions, 2000);
}

document.addEventListener("DOMContentLoaded", start);
