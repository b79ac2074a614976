// The wsgi2asgi migration dashboard: draws api/snapshot, then every message of api/live.
// No framework, no build step: DOM and SVG built by hand; data only ever set as text.
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const WINDOW = 300; // seconds shown by the charts
  const state = { previous: null, rates: new Map(), updates: 0, signatures: new Map(), splits: new Map() };

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child != null) node.append(child);
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    return node;
  }

  const number = (n) => (n == null ? "–" : Number(n).toLocaleString("en-US", { maximumFractionDigits: 1 }));
  const percent = (x) => (x == null ? "–" : `${(100 * x).toFixed(1)} %`);

  // -- the timeline: one entry per second, gaps filled with zeros; from the first second with
  // traffic (at least a minute, at most WINDOW), so a young server's chart is not one spike ---
  function seconds(snap) {
    const byTime = new Map(snap.timeline.map((row) => [row[0], row]));
    const end = Math.floor(snap.now);
    const first = snap.timeline.length ? snap.timeline[0][0] : end;
    const span = Math.min(WINDOW, Math.max(60, end - first + 10));
    const out = [];
    for (let t = end - span + 1; t <= end; t++) out.push(byTime.get(t) || [t, 0, 0, 0, 0]);
    return out;
  }

  const ago = (span) => (span >= 120 ? `-${Math.round(span / 60)} min` : `-${span} s`);

  function niceMax(value) {
    if (value <= 1) return 1;
    const power = 10 ** Math.floor(Math.log10(value));
    for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
    return 10 * power;
  }

  function frame(box, top, label, span) {
    const [w, h] = box;
    const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: "none", role: "img" });
    for (const f of [0, 0.5, 1]) {
      const y = 8 + (h - 24) * (1 - f);
      root.append(svg("line", { class: "axis", x1: 36, x2: w, y1: y, y2: y }));
      const tick = svg("text", { class: "tick", x: 32, y: y + 3, "text-anchor": "end" });
      tick.textContent = label(top * f);
      root.append(tick);
    }
    for (const [x, text] of [[36, ago(span)], [w - 2, "now"]]) {
      const tick = svg("text", { class: "tick", x, y: h - 2, "text-anchor": x > 36 ? "end" : "start" });
      tick.textContent = text;
      root.append(tick);
    }
    return root;
  }

  function scale(box, top, span) {
    const [w, h] = box;
    return {
      x: (i) => (36 + ((w - 36) * i) / (span - 1)).toFixed(1),
      y: (v) => (8 + (h - 24) * (1 - v / top)).toFixed(1),
    };
  }

  function area(points, s, low, high) {
    const upper = points.map((p, i) => `${s.x(i)},${s.y(high(p))}`);
    const lower = points.map((p, i) => `${s.x(i)},${s.y(low(p))}`).reverse();
    return `M${upper.join("L")}L${lower.join("L")}Z`;
  }

  function drawTraffic(snap) {
    const box = [600, 180];
    const points = seconds(snap);
    const top = niceMax(Math.max(...points.map((p) => p[1])));
    const root = frame(box, top, (v) => number(v), points.length);
    const s = scale(box, top, points.length);
    root.append(svg("path", { class: "area-sync", d: area(points, s, (p) => p[2], (p) => p[1]) }));
    root.append(svg("path", { class: "area-async", d: area(points, s, () => 0, (p) => p[2]) }));
    document.getElementById("chart-traffic").replaceChildren(root);
  }

  function drawShare(snap) {
    const box = [600, 180];
    const points = seconds(snap);
    const root = frame(box, 100, (v) => `${v}%`, points.length);
    const s = scale(box, 100, points.length);
    let line = "", fill = "", start = null, last = null;
    points.forEach((p, i) => {
      // A 10 s window per point, so one slow second does not make the line jump.
      const recent = points.slice(Math.max(0, i - 9), i + 1);
      const asyncCount = recent.reduce((sum, q) => sum + q[2], 0);
      const known = recent.reduce((sum, q) => sum + q[2] + q[3], 0);
      if (!known) { start = null; return; }
      const share = (100 * asyncCount) / known;
      line += `${start === null ? "M" : "L"}${s.x(i)},${s.y(share)}`;
      if (start === null) { if (last !== null) fill += `L${s.x(last)},${s.y(0)}Z`; fill += `M${s.x(i)},${s.y(0)}`; start = i; }
      fill += `L${s.x(i)},${s.y(share)}`;
      last = i;
    });
    if (last !== null) fill += `L${s.x(last)},${s.y(0)}Z`;
    root.append(svg("path", { class: "fill-share", d: fill }));
    root.append(svg("path", { class: "line-share", d: line }));
    document.getElementById("chart-share").replaceChildren(root);
  }

  // -- the numbers ---------------------------------------------------------------------------
  function drawTotals(snap) {
    const points = seconds(snap);
    const last10 = points.slice(-10), last60 = points.slice(-60);
    const asyncCount = last60.reduce((sum, p) => sum + p[2], 0);
    const known = last60.reduce((sum, p) => sum + p[2] + p[3], 0);
    document.getElementById("total-requests").textContent = number(snap.totals.requests);
    document.getElementById("total-rate").textContent = number(last10.reduce((sum, p) => sum + p[1], 0) / 10);
    document.getElementById("async-share").textContent = known ? percent(asyncCount / known) : "–";
    document.getElementById("total-errors").textContent = number(snap.totals.errors);
    const asyncRoutes = snap.routes.filter((r) => r.is_async).length;
    document.getElementById("route-count").textContent = `${asyncRoutes} / ${snap.routes.length}`;
  }

  function rate(key, requests, snap) {
    const previous = state.previous;
    const before = previous && previous.byKey.get(key);
    const value = before == null ? 0 : Math.max(0, (requests - before) / Math.max(0.001, snap.now - previous.now));
    const history = state.rates.get(key) || [];
    history.push(value);
    if (history.length > 60) history.shift();
    state.rates.set(key, history);
    return [value, history];
  }

  function sparkline(history) {
    const root = svg("svg", { class: "spark", viewBox: "0 0 90 18", preserveAspectRatio: "none" });
    const top = Math.max(1, ...history);
    const d = history.map((v, i) => `${i ? "L" : "M"}${((90 * i) / 59).toFixed(1)},${(17 - (16 * v) / top).toFixed(1)}`);
    root.append(svg("path", { d: d.join("") }));
    return root;
  }

  function drawRoutes(snap) {
    const rows = [...snap.routes.map((r, i) => [`${i} ${r.path}`, r]), ["other", { ...snap.other, path: "(other)", methods: [], framework: "", endpoint: "no route matched", is_async: null, role: "" }]];
    const body = rows.map(([key, r]) => {
      const [perSecond, history] = rate(key, r.requests, snap);
      const mode = r.is_async == null ? "" : el("span", { class: `badge ${r.is_async ? "async" : "sync"}`, text: r.is_async ? "async" : "sync" });
      const latency = r.latency_ms || {};
      return el("tr", {},
        el("td", { class: "path", text: r.path }),
        el("td", { text: r.kind === "websocket" ? "WS" : (r.methods || []).join(",") || "–" }),
        el("td", { text: r.framework }),
        el("td", {}, mode, r.role ? " " : null, r.role ? el("span", { class: "badge role", text: r.role }) : null),
        el("td", { text: r.endpoint }),
        el("td", { class: "num", text: number(r.requests) }),
        el("td", { class: "num", text: number(perSecond) }),
        el("td", {}, sparkline(history)),
        el("td", { class: `num${r.errors ? " error" : ""}`, text: number(r.errors) }),
        el("td", { class: "num", text: number(latency.p50) }),
        el("td", { class: "num", text: number(latency.p95) }),
        el("td", { class: "num", text: number(latency.p99) }),
      );
    });
    document.querySelector("#routes tbody").replaceChildren(...body);
    state.previous = { now: snap.now, byKey: new Map(rows.map(([key, r]) => [key, r.requests])) };
  }

  // -- Split: per-arm numbers and the percentage control -------------------------------------
  async function setPercent(id, value, note) {
    note.textContent = "saving…";
    try {
      const response = await fetch(`api/splits/${id}`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-Wsgi2asgi-Dashboard": "1" },
        body: JSON.stringify({ percent: Number(value) }),
      });
      note.textContent = response.ok ? `set to ${value} %` : `refused: ${await response.text()}`;
    } catch (error) {
      note.textContent = `failed: ${error}`;
    }
  }

  function splitPanel(split) {
    const range = el("input", { type: "range", min: "0", max: "100", step: "1" });
    const exact = el("input", { type: "number", min: "0", max: "100", step: "0.01" });
    const note = el("span", { class: "muted" });
    range.addEventListener("input", () => { exact.value = range.value; });
    exact.addEventListener("input", () => { range.value = exact.value; });
    const button = el("button", { type: "button", text: "Set", onclick: () => setPercent(split.id, exact.value, note) });
    const heading = el("h3");
    const summary = el("div");
    const table = el("table", {}, el("thead", {}, el("tr", {}, ...["arm", "requests", "errors", "error rate", "error rate (window)", "p50 ms", "p90 ms", "p99 ms", "in flight"].map((t) => el("th", { text: t })))), el("tbody"));
    const panel = el("div", { class: "panel split" }, heading, summary, el("div", { class: "control" }, el("span", { text: "migrated arm:" }), range, exact, el("span", { text: "%" }), button, note), table);
    const parts = { panel, heading, summary, range, exact, table };
    state.splits.set(split.id, parts);
    range.value = exact.value = split.percent;
    return parts;
  }

  function drawSplits(snap) {
    const host = document.getElementById("splits");
    if (!snap.splits.length) return;
    if (!state.splits.size) host.replaceChildren();
    for (const split of snap.splits) {
      const parts = state.splits.get(split.id) || splitPanel(split);
      if (!parts.panel.isConnected) host.append(parts.panel);
      parts.heading.textContent = `Split at ${split.where} · key ${split.key}`;
      const rolled = split.rolled_back ? el("span", { class: "rolled-back", text: ` rolled back: ${split.rollback.reason}` }) : null;
      parts.summary.replaceChildren(`${split.percent} % of users to the migrated arm (effective ${split.effective_percent} %), ${number(split.unkeyed)} requests without a key`, rolled || "");
      if (document.activeElement !== parts.range && document.activeElement !== parts.exact && parts.exact.dataset.shown !== String(split.percent)) {
        parts.range.value = parts.exact.value = parts.exact.dataset.shown = split.percent;
      }
      const rows = Object.entries(split.arms).map(([arm, a]) => el("tr", {},
        el("td", { text: arm }), el("td", { class: "num", text: number(a.requests) }),
        el("td", { class: `num${a.errors ? " error" : ""}`, text: number(a.errors) }),
        el("td", { class: "num", text: percent(a.error_rate) }), el("td", { class: "num", text: percent(a.window.error_rate) }),
        el("td", { class: "num", text: number(a.latency_ms.p50) }), el("td", { class: "num", text: number(a.latency_ms.p90) }),
        el("td", { class: "num", text: number(a.latency_ms.p99) }), el("td", { class: "num", text: number(a.in_flight) })));
      parts.table.tBodies[0].replaceChildren(...rows);
    }
  }

  // -- Shadow and blocking calls: redrawn only when they change (keeps <details> open) -------
  function changed(key, value) {
    const signature = JSON.stringify(value);
    if (state.signatures.get(key) === signature) return false;
    state.signatures.set(key, signature);
    return true;
  }

  function diffBlock(text) {
    const pre = el("pre", { class: "diff" });
    for (const line of text.split("\n")) {
      const kind = line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : "";
      pre.append(el("span", { class: kind, text: `${line}\n` }));
    }
    return pre;
  }

  function drawShadows(snap) {
    if (!snap.shadows.length || !changed("shadows", snap.shadows)) return;
    const panels = snap.shadows.map((shadow) => {
      const counts = `compared ${number(shadow.compared)} · equal ${number(shadow.equal)} · different ${number(shadow.different)} · candidate errors ${number(shadow.candidate_errors)} · skipped ${number(shadow.skipped)}`;
      const routes = Object.entries(shadow.routes).map(([route, c]) => el("tr", {},
        el("td", { class: "path", text: route }), el("td", { class: "num", text: number(c.equal) }),
        el("td", { class: `num${c.different ? " error" : ""}`, text: number(c.different) }),
        el("td", { class: "num", text: number(c.candidate_errors) }), el("td", { class: "num", text: number(c.skipped) })));
      const table = el("table", {}, el("thead", {}, el("tr", {}, ...["route", "equal", "different", "errors", "skipped"].map((t) => el("th", { text: t })))), el("tbody", {}, ...routes));
      const differences = [...shadow.differences].reverse().map((d) => el("div", { class: "difference" },
        el("div", {}, el("strong", { text: d.route }), ` · ${new Date(d.at * 1000).toLocaleTimeString()} · `, el("span", { class: "error", text: d.problems.join("; ") })),
        d.diff ? diffBlock(d.diff) : null));
      return el("div", { class: "panel shadow" }, el("h3", { text: `Shadow at ${shadow.where}` }), el("div", { class: "muted", text: counts }), table, ...differences);
    });
    document.getElementById("shadows").replaceChildren(...panels);
  }

  function drawBlocking(snap) {
    const report = snap.blocking;
    if (!report || !changed("blocking", [report.count, report.episodes.length])) return;
    const summary = el("p", { text: `${number(report.count)} episode${report.count === 1 ? "" : "s"} over ${number(report.threshold_ms)} ms; the longest ${number(report.max_ms)} ms.` });
    const episodes = report.episodes.map((e) => el("details", { class: "episode" },
      el("summary", {}, el("strong", { text: `${number(e.duration_ms)} ms` }), ` while serving ${e.request || "an unknown request"}`),
      el("pre", { class: "stack", text: e.stack })));
    document.getElementById("blocking").replaceChildren(summary, ...episodes);
  }

  // -- the live connection --------------------------------------------------------------------
  function render(snap) {
    drawTotals(snap);
    drawTraffic(snap);
    drawShare(snap);
    drawRoutes(snap);
    drawSplits(snap);
    drawShadows(snap);
    drawBlocking(snap);
    document.getElementById("footer").textContent = `wsgi2asgi ${snap.version} · process ${snap.pid} · up ${number((snap.now - snap.started) / 60)} min · updated ${new Date(snap.now * 1000).toLocaleTimeString()}`;
    state.updates += 1;
    document.body.dataset.updates = String(state.updates);
    document.dispatchEvent(new CustomEvent("dashboard:update", { detail: state.updates }));
  }

  function status(text, kind) {
    const node = document.getElementById("status");
    node.textContent = text;
    node.className = `status ${kind}`;
  }

  async function poll() {
    const response = await fetch("api/snapshot", { credentials: "same-origin" });
    if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
    render(await response.json());
  }

  function connect() {
    const url = new URL("api/live", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.search = "";
    const socket = new WebSocket(url);
    socket.addEventListener("open", () => status("live", "live"));
    socket.addEventListener("message", (event) => render(JSON.parse(event.data)));
    socket.addEventListener("close", () => {
      status("reconnecting…", "down");
      setTimeout(() => poll().then(connect, () => setTimeout(connect, 3000)), 2000);
    });
  }

  poll().then(connect, (error) => status(`cannot load: ${error.message}`, "down"));
})();
