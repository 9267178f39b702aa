// meshwave web UI: the Istio dashboards, a metrics browser and a trace
// view over the server's query API. Plain JavaScript, no build step; the
// charts use uPlot (vendor/). The page comes from location.pathname and
// its state (range, refresh, variables) lives in the query string.
"use strict";

// ---------- API ----------

const params = new URLSearchParams(location.search);
if (params.get("token")) localStorage.setItem("meshwave.token", params.get("token"));

async function api(path) {
  const headers = {};
  const t = localStorage.getItem("meshwave.token");
  if (t) headers["X-AUTH-TOKEN"] = t;
  const r = await fetch(path, { headers });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || r.status + " " + r.statusText);
  return body;
}

// ---------- helpers ----------

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids.flat()) if (k != null) e.append(k.nodeType ? k : String(k));
  return e;
}

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

function binary(v, digits) {
  const units = ["", "Ki", "Mi", "Gi", "Ti", "Pi"];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return v.toFixed(digits) + units[i];
}

function duration(sec) {
  const a = Math.abs(sec);
  const u = [[31557600, "yr"], [86400, "d"], [3600, "h"], [60, "min"], [1, "s"], [1e-3, "ms"]];
  for (const [n, name] of u) if (a >= n) return (sec / n).toFixed(3) + " " + name;
  return sec.toFixed(3) + " s";
}

// fmt formats a value by unit: bytes (binary prefixes), s, pct, dur, ops.
function fmt(v, unit, digits) {
  if (v == null || Number.isNaN(v)) return "-";
  const d = digits ?? 2;
  switch (unit) {
    case "bytes": return binary(v, d) + "B";
    case "s": return v.toFixed(digits ?? 3) + "s";
    case "pct": return v.toFixed(1) + "%";
    case "dur": return duration(v);
    case "ops": return v.toFixed(d) + " ops";
    default:
      if (Math.abs(v) >= 1e6) return binary(v, d).replace("Ki", "k").replace("Mi", "M");
      return Number.isInteger(v) ? String(v) : v.toFixed(d);
  }
}

// ---------- time range, refresh, variables ----------

const RANGES = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400 };
const REFRESH = { off: 0, "30s": 30, "1m": 60 };
let refreshTimer = null;

function state(name, def) { return params.get(name) || def; }
function setState(name, value) {
  params.set(name, value);
  history.replaceState(null, "", location.pathname + "?" + params.toString());
}

function window_() {
  const end = Math.floor(Date.now() / 1000);
  const span = RANGES[state("range", "1h")] || 3600;
  return { s: end - span, e: end, g: "m" };
}

function picker(label, name, options, def, onchange) {
  const sel = el("select", { onchange: () => { setState(name, sel.value); onchange(); } },
    options.map((o) => el("option", { value: o }, o)));
  sel.value = state(name, def);
  return el("label", {}, label, sel);
}

function timeControls(render) {
  return [
    el("span", { class: "spacer" }),
    picker("Time range", "range", Object.keys(RANGES), "1h", render),
    picker("Auto-refresh", "refresh", Object.keys(REFRESH), "off", () => schedule(render)),
    el("button", { onclick: render }, "Refresh"),
  ];
}

function schedule(render) {
  clearInterval(refreshTimer);
  const sec = REFRESH[state("refresh", "off")];
  if (sec) refreshTimer = setInterval(render, sec * 1000);
}

// Variable drop-downs: values of a tag on a metric, from /api/v2/metrics.
async function variableBar(vars, metric, render) {
  const bar = document.getElementById("bar");
  bar.replaceChildren();
  let tags = {};
  try {
    const w = window_();
    const r = await api("/api/v2/metrics?match=" + encodeURIComponent(metric) + "&start=" + (w.e - 86400) + "&end=" + w.e);
    for (const m of r.metrics) for (const [k, vs] of Object.entries(m.tags || {})) tags[k] = [...new Set([...(tags[k] || []), ...vs])];
  } catch (e) { /* dropdowns keep "*" only */ }
  for (const v of vars) {
    const values = ["*", ...(tags[v.tag] || []).sort()];
    const def = v.name === "cluster" && values.length > 1 ? values[1] : "*";
    if (!values.includes(state("var." + v.name, def))) setState("var." + v.name, def);
    bar.append(picker(v.label, "var." + v.name, values, def, render));
  }
  bar.append(...timeControls(render));
}

function varParams(vars) {
  return vars.map((v) => "&var." + v.name + "=" + encodeURIComponent(state("var." + v.name, "*"))).join("");
}

// ---------- dashboards ----------

const F_DP = 'cluster="${cluster}" and reporter="${reporter}" and source_workload_namespace="${src_ns}"' +
  ' and source_workload="${src_wl}" and destination_workload_namespace="${dst_ns}" and destination_workload="${dst_wl}"';
const F_CP = 'cluster="${cluster}"';
const dp = (q) => q.replaceAll("F_dp", F_DP);
const cp = (q) => q.replaceAll("F_cp", F_CP);
const q1 = (q) => [{ name: "Value", q }];

const DATA_PLANE = {
  title: "Istio Data Plane",
  vars: [
    { label: "Cluster", name: "cluster", tag: "cluster" },
    { label: "Reporter", name: "reporter", tag: "reporter" },
    { label: "Source WL NS", name: "src_ns", tag: "source_workload_namespace" },
    { label: "Source Workload", name: "src_wl", tag: "source_workload" },
    { label: "Destination WL NS", name: "dst_ns", tag: "destination_workload_namespace" },
    { label: "Destination Workload", name: "dst_wl", tag: "destination_workload" },
  ],
  varMetric: "istio.requests.total.value",
  sections: [
    { title: "Overview", rows: [
      [{ type: "markdown", text: "Real-time visibility into the Istio Data Plane. The drop-downs filter by Cluster, Reporter, Namespace and Workload. Data: federated Prometheus → meshwave collector → proxy → server. See also the Istio Control Plane dashboard.", link: "/control-plane" }],
      [
        { title: "Success Rate", type: "gauge", unit: "pct", agg: "mean",
          desc: "Requests that are neither 5xx nor 4xx over all requests, averaged over the window.",
          queries: q1(dp('100 * sum(rate(ts(istio.requests.total.value, F_dp and not response_code="5*" and not response_code="4*"))) / sum(rate(ts(istio.requests.total.value, F_dp)))')) },
        { title: "Operations per Sec", type: "stat", color: "blue", queries: q1(dp("sum(rate(ts(istio.requests.total.value, F_dp)))")) },
        { title: "4xx's", type: "stat", color: "green", unit: "ops", queries: q1(dp('sum(rate(ts(istio.requests.total.value, F_dp and response_code="4*")))')) },
        { title: "5xx's", type: "stat", color: "green", unit: "ops", queries: q1(dp('sum(rate(ts(istio.requests.total.value, F_dp and response_code="5*")))')) },
      ],
    ] },
    { title: "Request/Response", rows: [
      [
        { title: "Avg. Request Size", type: "stat", color: "blue", unit: "bytes", queries: q1(dp("sum(rate(ts(istio.request.bytes.sum.value, F_dp))) / sum(rate(ts(istio.request.bytes.count.value, F_dp)))")) },
        { title: "Avg. Response Size", type: "stat", color: "blue", unit: "bytes", queries: q1(dp("sum(rate(ts(istio.response.bytes.sum.value, F_dp))) / sum(rate(ts(istio.response.bytes.count.value, F_dp)))")) },
        { title: "Avg. Response Time", type: "stat", color: "blue", unit: "s", queries: q1(dp("(sum(rate(ts(istio.request.duration.milliseconds.sum.value, F_dp))) / sum(rate(ts(istio.request.duration.milliseconds.count.value, F_dp)))) / 1000")) },
      ],
      [
        { title: "Request Size (P50/P95/P99)", type: "line", unit: "bytes", queries: ["p50", "p95", "p99"].map((p) => ({ name: p, q: dp(`ts(istio.request.bytes.bucket.${p}.value, F_dp)`) })) },
        { title: "Response Size (P50/P95/P99)", type: "line", unit: "bytes", queries: ["p50", "p95", "p99"].map((p) => ({ name: p, q: dp(`ts(istio.response.bytes.bucket.${p}.value, F_dp)`) })) },
        { title: "Response Time (P50/P95/P99)", type: "line", unit: "s", queries: ["p50", "p95", "p99"].map((p) => ({ name: p, q: dp(`ts(istio.request.duration.milliseconds.bucket.${p}.value, F_dp) / 1000`) })) },
      ],
      [{ title: "Overview of Applications using HTTP", type: "table", digits: 3,
        cols: ["app", "source_workload", "destination_workload", "response_code", "response_flags", "le"],
        queries: q1(dp("ts(istio.request.duration.milliseconds.bucket.value, F_dp)")) }],
    ] },
    { title: "TCP", rows: [
      [
        { title: "Avg. TCP Sent Bytes", type: "stat", color: "blue", unit: "bytes", queries: q1(dp("avg(rate(ts(istio.tcp.sent.bytes.total.value, F_dp)))")) },
        { title: "Avg. TCP Received Bytes", type: "stat", color: "blue", unit: "bytes", queries: q1(dp("avg(rate(ts(istio.tcp.received.bytes.total.value, F_dp)))")) },
        { title: "Avg. TCP Connections Opened", type: "stat", color: "blue", queries: q1(dp("avg(rate(ts(istio.tcp.connections.opened.total.value, F_dp)))")) },
        { title: "Avg. TCP Connections Closed", type: "stat", color: "blue", queries: q1(dp("avg(rate(ts(istio.tcp.connections.closed.total.value, F_dp)))")) },
      ],
      [{ title: "Overview of Applications using TCP", type: "table", unit: "bytes", digits: 3,
        cols: ["app", "source_workload", "destination_workload", "response_flags"],
        queries: [
          { name: "Sent Bytes", q: dp("rate(ts(istio.tcp.sent.bytes.total.value, F_dp))") },
          { name: "Received Bytes", q: dp("rate(ts(istio.tcp.received.bytes.total.value, F_dp))") },
        ] }],
    ] },
  ],
};

const named = (names, f) => names.map(([name, m]) => ({ name, q: cp(f(m)) }));

const CONTROL_PLANE = {
  title: "Istio Control Plane",
  vars: [{ label: "Cluster", name: "cluster", tag: "cluster" }],
  varMetric: "istio.build.value",
  sections: [
    { title: "Overview", rows: [
      [{ type: "markdown", text: "Real-time visibility into the Istio Control Plane (istiod: Pilot for service discovery, Galley for configuration, Citadel for certificates). The drop-down filters by Cluster.", link: "/data-plane" }],
      [{ title: "Component Build Info", type: "table", cols: ["app", "instance", "version", "_tag"], queries: q1(cp("ts(istio.build.value, F_cp)")) }],
      [
        { title: "#Services known to Pilot", type: "stat", color: "teal", digits: 0, queries: q1(cp("ts(pilot.services.value, F_cp)")) },
        { title: "Pilot Rejected CDS/EDS/LDS/RDS", type: "nv", queries: named([["eds", "eds"], ["cds_configs", "cds"], ["lds", "lds"], ["rds", "rds"]], (m) => `sum(ts(pilot.xds.${m}.reject.value, F_cp)).orElse(0)`) },
        { title: "XDS Push Context Errors", type: "line", queries: q1(cp("ts(pilot.xds.push.context.errors.value, F_cp)")) },
        { title: "Sidecar Injection (requests/success/failed/skip)", type: "nv",
          queries: named([["total_requests", "requests"], ["success", "success"], ["failed", "failure"], ["skip", "skip"]], (m) => `sum(ts(sidecar.injection.${m}.total.value, F_cp))`) },
      ],
      [
        { title: "CPU", type: "line", unit: "s", fill: true, queries: q1(cp('rate(ts(process.cpu.seconds.total.value, F_cp and app="istiod"))')) },
        { title: "Resident Memory", type: "line", unit: "bytes", fill: true, queries: q1(cp('ts(process.resident.memory.bytes.value, F_cp and app="istiod")')) },
        { title: "Virtual Memory", type: "line", unit: "bytes", fill: true, queries: q1(cp('ts(process.virtual.memory.bytes.value, F_cp and app="istiod")')) },
        { title: "Go Routines", type: "stat", color: "teal", digits: 0, queries: q1(cp('ts(go.goroutines.value, F_cp and app="istiod")')) },
      ],
    ] },
    { title: "Pilot Traffic Management", rows: [
      [
        { title: "XDS Pushes", type: "table", cols: ["app", "instance", "type"], queries: q1(cp("ts(pilot.xds.pushes.value, F_cp)")) },
        { title: "Total XDS Responses Rejected by Proxy", type: "line", queries: q1(cp("ts(pilot.total.xds.rejects.value, F_cp)")) },
        { title: "XDS Write Timeout", type: "line", unit: "s", queries: q1(cp("ts(pilot.xds.write.timeout.value, F_cp)")) },
        { title: "Total XDS Internal Errors", type: "line", queries: q1(cp("ts(pilot.total.xds.internal.errors.value, F_cp)")) },
      ],
      [
        { title: "Virtual Services known to Pilot", type: "stat", color: "blue", digits: 0, queries: q1(cp("ts(pilot.virt.services.value, F_cp)")) },
        { title: "Conflicting Inbound/Outbound Listeners", type: "table", width: 3, cols: [],
          queries: [
            { name: "Inbound", q: cp("sum(ts(pilot.conflict.inbound.listener.value, F_cp))") },
            { name: "HTTP over current TCP", q: cp("sum(ts(pilot.conflict.outbound.listener.http.over.current.tcp.value, F_cp))") },
            { name: "TCP over current HTTP", q: cp("sum(ts(pilot.conflict.outbound.listener.tcp.over.current.http.value, F_cp))") },
            { name: "TCP over current TCP", q: cp("sum(ts(pilot.conflict.outbound.listener.tcp.over.current.tcp.value, F_cp))") },
          ] },
      ],
      [
        { title: "Proxy Convergence Time", type: "histogram", unit: "dur",
          desc: "As the reference renders it: the point values of the cumulative bucket series, binned (istio.md §10.2).",
          queries: q1(cp("ts(pilot.proxy.convergence.time.bucket.value, F_cp)")) },
        { title: "Proxy Queue Time", type: "histogram", unit: "dur", queries: q1(cp("ts(pilot.proxy.queue.time.bucket.value, F_cp)")) },
      ],
      [{ title: "Proxy Convergence Time p50/p90/p99 (from le deltas)", type: "line", unit: "s",
        queries: [50, 90, 99].map((p) => ({ name: "p" + p, q: cp(`percentile(${p}, rate(ts(pilot.proxy.convergence.time.bucket.value, F_cp)))`) })) }],
    ] },
    { title: "Galley", rows: [[
      { title: "Configuration Validation (Pass/Fail/HTTP Error)", type: "table", cols: ["app", "instance"],
        queries: named([["Validation Passed", "passed"], ["Validation Failed", "failed"], ["HTTP Error", "http.error"]], (m) => `sum(rate(ts(galley.validation.${m}.value, F_cp)), app, instance)`) },
      { title: "K8s Webhook Configuration (Update/Load/Delete)", type: "table", cols: ["app", "instance"],
        queries: named([["Config Updates", "config.updates"], ["Config Load", "config.load"], ["Delete Error", "config.delete.error"]], (m) => `sum(rate(ts(galley.validation.${m}.value, F_cp)), app, instance)`) },
    ]] },
    { title: "Citadel", rows: [[
      { title: "Root Certificate Expiry", type: "table", unit: "dur", cols: ["app", "instance"], queries: q1(cp("ts(citadel.server.root.cert.expiry.timestamp.value, F_cp) - time()")) },
      { title: "CSRs Status (Received/Success/Error)", type: "table", width: 2, cols: ["app", "instance"],
        queries: named([["CSRs Received", "csr.count"], ["CSRs Success", "success.cert.issuance.count"], ["CSRs Error", "csr.sign.err*.count"]], (m) => `sum(rate(ts(citadel.server.${m}.value, F_cp)), app, instance)`) },
    ]] },
    { title: "Go Memory Stats", rows: [[
      { title: "Allocated Bytes", type: "line", unit: "bytes", queries: q1(cp('ts(go.memstats.alloc.bytes.value, F_cp and app="istiod")')) },
      { title: "Stack Inuse", type: "line", unit: "bytes", fill: true, queries: q1(cp('ts(go.memstats.stack.inuse.bytes.value, F_cp and app="istiod")')) },
      { title: "Heap Memstats", type: "nv", unit: "bytes", digits: 3, cols: ["instance"],
        queries: named([["heap_sys_bytes", "sys"], ["heap_inuse_bytes", "inuse"], ["heap_alloc_bytes", "alloc"]], (m) => `ts(go.memstats.heap.${m}.bytes.value, F_cp and app="istiod")`) },
    ]] },
  ],
};

function seriesName(s) {
  const tags = Object.entries(s.tags || {}).map(([k, v]) => k + "=" + v).join(" ");
  return s.label + (s.host ? " @" + s.host : "") + (tags ? " " + tags : "");
}

const lastValue = (s) => (s && s.data.length ? s.data[s.data.length - 1][1] : null);
const meanValue = (s) => (s && s.data.length ? s.data.reduce((a, p) => a + p[1], 0) / s.data.length : null);

// renderChart fills box with chart c, given results[i] for c.queries[i]
// ({timeseries} or {error}).
//
// The box's data-* attributes say, machine-readably, what it shows:
// data-state is "data" (every query returned points), "partial" (some
// did not), "empty" (none did) or "error" (a query failed), with
// data-series, data-points and, on error, data-error.
function renderChart(box, c, results) {
  const all = results.flatMap((r) => r.timeseries || []);
  const errors = results.map((r) => r.error).filter(Boolean).join("; ");
  const emptyQueries = results.filter((r) => !r.error && !(r.timeseries || []).some((s) => s.data.length)).length;
  const points = all.reduce((n, s) => n + s.data.length, 0);
  box.dataset.state = errors ? "error" : !points ? "empty" : emptyQueries ? "partial" : "data";
  box.dataset.series = all.length;
  box.dataset.points = points;
  if (errors) box.dataset.error = errors; else delete box.dataset.error;
  const failed = errors || emptyQueries;
  const head = el("h3", {}, c.title, failed ? el("span", { class: "warn", title: errors || "a query returned no data" }, "⚠") : null,
    c.desc ? el("span", { class: "info", title: c.desc }, "i") : null);
  if (!points && c.type !== "nv") {
    box.replaceChildren(head, el("div", { class: "nodata", title: errors }, "NO DATA"));
    return;
  }
  switch (c.type) {
    case "stat": case "gauge": {
      const s = all[0];
      const v = c.agg === "mean" ? meanValue(s) : lastValue(s);
      box.className = "chart stat " + (c.type === "gauge" ? "gauge" + (v < 50 ? " bad" : v < 90 ? " mid" : "") : c.color || "blue");
      box.replaceChildren(sparkline(s.data), el("div", { class: "value" }, fmt(v, c.unit, c.digits)), el("div", { class: "title" }, c.title));
      break;
    }
    case "line":
      box.replaceChildren(head);
      lineChart(box, c, results);
      break;
    case "table":
      box.replaceChildren(head, table(c, results));
      break;
    case "histogram":
      box.replaceChildren(head, histogram(c, all));
      break;
    case "nv": {
      const cols = c.cols || [];
      const rows = [];
      results.forEach((r, i) => {
        const ts = r.timeseries || [];
        if (!ts.length) rows.push([c.queries[i].name, ...cols.map(() => "-"), null]);
        for (const s of ts) rows.push([c.queries[i].name, ...cols.map((k) => s.tags[k] ?? "-"), lastValue(s)]);
      });
      rows.sort((a, b) => (b.at(-1) ?? -Infinity) - (a.at(-1) ?? -Infinity));
      box.replaceChildren(head, el("div", { class: "tablewrap" }, el("table", {},
        el("tr", {}, el("th", {}, "Name"), cols.map((k) => el("th", {}, k)), el("th", {}, "Value")),
        rows.map((r) => el("tr", {}, r.slice(0, -1).map((x) => el("td", {}, x)), el("td", { class: "num" }, fmt(r.at(-1), c.unit, c.digits)))))));
      break;
    }
  }
}

function sparkline(data) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 100 100");
  svg.setAttribute("preserveAspectRatio", "none");
  if (data.length > 1) {
    const xs = data.map((p) => p[0]), ys = data.map((p) => p[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
    const pts = data.map((p) => ((p[0] - x0) / (x1 - x0 || 1)) * 100 + "," + (95 - ((p[1] - y0) / (y1 - y0 || 1)) * 60)).join(" ");
    const pl = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    pl.setAttribute("points", pts);
    pl.setAttribute("fill", "none");
    pl.setAttribute("stroke", "#fff");
    pl.setAttribute("stroke-width", "2");
    pl.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(pl);
  }
  return svg;
}

const MAX_ROWS = 300;

// histogram bins every point value of every series into 30 bars, with a
// log-scale count and the 25th/50th/75th percentile marked.
function histogram(c, all) {
  const vs = all.flatMap((s) => s.data.map((p) => p[1])).sort((a, b) => a - b);
  const lo = vs[0], hi = vs[vs.length - 1], n = 30, w = (hi - lo) / n || 1;
  const counts = new Array(n).fill(0);
  for (const v of vs) counts[Math.min(Math.floor((v - lo) / w), n - 1)]++;
  const top = Math.log10(Math.max(...counts) + 1);
  const pct = (p) => vs[Math.min(vs.length - 1, Math.floor((p / 100) * vs.length))];
  const bars = el("div", { class: "hist" }, counts.map((k, i) => el("div", {
    class: "bin", title: `${fmt(lo + i * w, c.unit)} – ${fmt(lo + (i + 1) * w, c.unit)}: ${k}`,
    style: `height:${(Math.log10(k + 1) / top) * 100}%;background:hsl(${220 + (i * 60) / n},60%,55%)`,
  })));
  return el("div", {}, el("div", { class: "muted" }, [25, 50, 75].map((p) => `p${p} ${fmt(pct(p), c.unit)}`).join(" · "), ` · ${vs.length} points, count on a log scale`), bars,
    el("div", { class: "hist-x" }, el("span", {}, fmt(lo, c.unit)), el("span", {}, fmt(hi, c.unit))));
}

// table: columns are c.cols, then one value column per query (last value);
// rows join series of all queries by those tags and sort by the first value.
function table(c, results) {
  const cols = c.cols || [];
  const rows = new Map();
  let color = 0;
  results.forEach((r, i) => {
    for (const s of r.timeseries || []) {
      const key = cols.map((k) => s.tags[k] ?? (k === "source" ? s.host : "-"));
      const id = JSON.stringify(key);
      if (!rows.has(id)) rows.set(id, { key, values: [], color: COLORS[color++ % COLORS.length] });
      rows.get(id).values[i] = lastValue(s);
    }
  });
  const all = [...rows.values()].sort((a, b) => (b.values[0] ?? -Infinity) - (a.values[0] ?? -Infinity));
  const sorted = all.slice(0, MAX_ROWS);
  return el("div", { class: "tablewrap" }, all.length > MAX_ROWS ? el("p", { class: "muted" }, `first ${MAX_ROWS} of ${all.length} rows`) : null, el("table", {},
    el("tr", {}, cols.map((k) => el("th", {}, k)), c.queries.map((q, i) => el("th", {}, q.name + (i === 0 ? " ↓" : "")))),
    sorted.map((row) => el("tr", {},
      row.key.map((v, i) => el("td", {}, i === 0 ? el("span", { class: "swatch", style: "background:" + row.color }) : null, v)),
      c.queries.map((_, i) => el("td", { class: "num" }, fmt(row.values[i], c.unit, c.digits ?? 3)))))));
}

// lineChart draws every series of every query on one uPlot, timestamps
// aligned on their union; gaps are bridged.
function lineChart(box, c, results) {
  const series = [];
  results.forEach((r, i) => (r.timeseries || []).forEach((s) => series.push({ name: (results.length > 1 ? c.queries[i].name + " " : "") + seriesName(s), s })));
  const xs = [...new Set(series.flatMap(({ s }) => s.data.map((p) => p[0])))].sort((a, b) => a - b);
  const idx = new Map(xs.map((x, i) => [x, i]));
  const data = [xs];
  for (const { s } of series) {
    const ys = new Array(xs.length).fill(null);
    for (const [t, v] of s.data) ys[idx.get(t)] = v;
    data.push(ys);
  }
  const width = Math.max(box.clientWidth - 16, 200);
  const w = window_();
  const axisFmt = c.unit === "bytes" ? (u, vals) => vals.map((v) => binary(v, 2)) : undefined;
  const opts = {
    width, height: 180,
    legend: { show: false },
    cursor: { points: { show: false } },
    scales: { x: { time: true, range: () => [w.s, w.e] } },
    axes: [{ size: 30 }, { size: 80, values: axisFmt, label: c.unit === "bytes" ? "Bytes" : c.unit || "#", labelSize: 14 }],
    series: [{}, ...series.map(({ name }, i) => ({
      label: name, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true,
      fill: c.fill ? COLORS[i % COLORS.length] + "22" : undefined,
    }))],
  };
  // The legend is hidden (there can be hundreds of series); the readout
  // names the series nearest the cursor instead.
  const readout = el("div", { class: "readout muted" }, series.length + " series");
  opts.hooks = { setCursor: [(u) => {
    const i = u.cursor.idx;
    if (i == null || u.cursor.top == null || u.cursor.top < 0) return;
    let best = null, dist = Infinity;
    for (let k = 1; k < u.data.length; k++) {
      const v = u.data[k][i];
      if (v == null) continue;
      const d = Math.abs(u.valToPos(v, "y") - u.cursor.top);
      if (d < dist) { dist = d; best = k; }
    }
    readout.textContent = best == null ? "" : new Date(u.data[0][i] * 1000).toLocaleTimeString() + "  " +
      fmt(u.data[best][i], c.unit) + "  " + u.series[best].label;
  }] };
  const holder = el("div");
  box.append(holder, readout);
  new uPlot(opts, data, holder);
}

async function dashboard(d) {
  document.title = d.title + " · meshwave";
  const main = document.getElementById("main");
  main.dataset.state = "loading";
  // All charts query at once (the browser queues what exceeds its
  // connection limit). main's data-state is "ready" once the latest
  // render has drawn every chart, so a test can wait for it.
  let generation = 0;
  const render = async () => {
    const gen = ++generation;
    main.dataset.state = "loading";
    const w = window_();
    const vars = varParams(d.vars);
    await Promise.all(boxes.map(async ({ c, box }) => {
      const results = await Promise.all(c.queries.map((q) =>
        api(`/api/v2/chart/api?q=${encodeURIComponent(q.q)}&s=${w.s}&e=${w.e}&g=${w.g}${vars}`).catch((e) => ({ error: e.message }))));
      if (gen === generation) renderChart(box, c, results);
    }));
    if (gen === generation) main.dataset.state = "ready";
  };
  const boxes = [];
  main.replaceChildren(el("h1", {}, d.title));
  for (const sec of d.sections) {
    const rows = el("div", { class: "rows" });
    const s = el("section", {}, el("h2", { onclick: () => s.classList.toggle("collapsed") }, sec.title), rows);
    for (const row of sec.rows) {
      const r = el("div", { class: "row" });
      for (const c of row) {
        const box = el("div", { class: "chart", style: "flex:" + (c.width || 1) });
        if (c.type === "markdown") {
          box.classList.add("markdown");
          box.append(c.text + " ", el("a", { class: "link", href: c.link }, c.link === "/control-plane" ? "Istio Control Plane →" : "Istio Data Plane →"));
        } else {
          box.dataset.chart = c.title;
          box.dataset.kind = c.type;
          box.dataset.state = "loading";
          box.append(el("h3", {}, c.title), el("div", { class: "nodata" }, "…"));
          boxes.push({ c, box });
        }
        r.append(box);
      }
      rows.append(r);
    }
    main.append(s);
  }
  await variableBar(d.vars, d.varMetric, render);
  schedule(render);
  render();
}

// ---------- metrics browser ----------

async function metricsBrowser() {
  document.title = "Metrics · meshwave";
  const main = document.getElementById("main");
  const bar = document.getElementById("bar");
  const input = el("input", { value: state("match", "*"), size: 40, placeholder: "glob, e.g. istio.*" });
  const out = el("div");
  const chartBox = el("div", { class: "chart", style: "display:none" });
  const render = async () => {
    setState("match", input.value || "*");
    main.dataset.state = "loading";
    out.replaceChildren(el("p", { class: "muted" }, "loading…"));
    try {
      const w = window_();
      const r = await api("/api/v2/metrics?limit=1000&match=" + encodeURIComponent(input.value || "*") + "&start=" + w.s + "&end=" + w.e);
      out.dataset.metrics = r.metrics.length;
      out.replaceChildren(el("p", { class: "muted" }, r.metrics.length + " metrics (in the time range)"), el("table", {},
        el("tr", {}, el("th", {}, "name"), el("th", {}, "kind"), el("th", {}, "sources"), el("th", {}, "tags")),
        r.metrics.map((m) => el("tr", { "data-metric": m.name },
          el("td", {}, el("a", { class: "link", onclick: () => showMetric(m.name) }, m.name)),
          el("td", {}, m.kind),
          el("td", { class: "tags" }, (m.sources || []).slice(0, 5).join(", ") + ((m.sources || []).length > 5 ? ` (+${m.sources.length - 5})` : "")),
          el("td", { class: "tags" }, Object.entries(m.tags || {}).map(([k, vs]) => k + "=" + vs.slice(0, 4).join("|") + (vs.length > 4 ? `|…(${vs.length})` : "")).join("  "))))));
    } catch (e) {
      out.replaceChildren(el("p", { class: "err" }, e.message));
    }
    main.dataset.state = "ready";
  };
  const showMetric = async (name) => {
    const w = window_();
    const c = { title: `ts(${name})`, type: "line", queries: q1(`ts(${name})`) };
    chartBox.style.display = "";
    chartBox.dataset.chart = c.title;
    chartBox.dataset.state = "loading";
    const r = await api(`/api/v2/chart/api?q=${encodeURIComponent(c.queries[0].q)}&s=${w.s}&e=${w.e}&g=${w.g}`).catch((e) => ({ error: e.message }));
    chartBox.replaceChildren();
    renderChart(chartBox, c, [r]);
    chartBox.scrollIntoView({ behavior: "smooth" });
  };
  bar.replaceChildren(el("label", {}, "Metric name (glob)", input), el("button", { onclick: render }, "Search"), ...timeControls(render));
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") render(); });
  main.replaceChildren(el("h1", {}, "Metrics"), chartBox, out);
  schedule(render);
  render();
}

// ---------- traces ----------

async function traces() {
  document.title = "Traces · meshwave";
  const main = document.getElementById("main");
  const bar = document.getElementById("bar");
  const f = {
    service: el("input", { value: state("service", ""), placeholder: "any" }),
    operation: el("input", { value: state("operation", ""), placeholder: "any" }),
    minDuration: el("input", { value: state("minDuration", ""), size: 6, placeholder: "ms" }),
    maxDuration: el("input", { value: state("maxDuration", ""), size: 6, placeholder: "ms" }),
    error: el("select", {}, el("option", { value: "" }, "any"), el("option", { value: "true" }, "errors only"), el("option", { value: "false" }, "no errors")),
    limit: el("input", { value: state("limit", "50"), size: 4 }),
  };
  f.error.value = state("error", "");
  const list = el("div", { class: "trace-list" });
  const view = el("div");
  // main's data-state is "ready" when no search or trace load is in
  // flight; the list's data-state says what the last search found.
  let inFlight = 0;
  const busy = async (work) => {
    inFlight++;
    main.dataset.state = "loading";
    try { await work(); } finally { if (--inFlight === 0) main.dataset.state = "ready"; }
  };
  const search = () => busy(async () => {
    const w = window_();
    const q = new URLSearchParams({ start: w.s, end: w.e });
    for (const [k, input] of Object.entries(f)) if (input.value) { q.set(k, input.value); setState(k, input.value); } else params.delete(k);
    list.dataset.state = "loading";
    list.replaceChildren(el("p", { class: "muted" }, "searching…"));
    try {
      const r = await api("/api/v2/traces?" + q.toString());
      list.dataset.state = r.traces.length ? "data" : "empty";
      list.dataset.traces = r.traces.length;
      list.replaceChildren(r.traces.length ? el("table", {},
        el("tr", {}, ["start", "root", "services", "spans", "duration", ""].map((h) => el("th", {}, h))),
        r.traces.map((t) => el("tr", { "data-trace": t.traceId },
          el("td", {}, new Date(t.startMs).toLocaleString()),
          el("td", {}, el("a", { class: "link", onclick: () => showTrace(t.traceId) }, t.rootService + ": " + t.rootOperation)),
          el("td", { class: "tags" }, (t.services || []).join(", ")),
          el("td", { class: "num" }, t.spanCount),
          el("td", { class: "num" }, t.durationMs + " ms"),
          el("td", { class: "err" }, t.error ? "error" : "")))) : el("p", { class: "muted" }, "No traces match."));
    } catch (e) {
      list.dataset.state = "error";
      list.replaceChildren(el("p", { class: "err" }, e.message));
    }
  });
  const showTrace = (id) => busy(async () => {
    setState("trace", id);
    view.replaceChildren(el("p", { class: "muted" }, "loading trace…"));
    try {
      view.replaceChildren(waterfall(await api("/api/v2/traces/" + encodeURIComponent(id))));
      view.scrollIntoView({ behavior: "smooth" });
    } catch (e) {
      view.replaceChildren(el("p", { class: "err" }, e.message));
    }
  });
  bar.replaceChildren(...Object.entries(f).map(([k, input]) => el("label", {}, k, input)), el("button", { onclick: search }, "Search"), ...timeControls(search));
  main.replaceChildren(el("h1", {}, "Traces"), view, list);
  search();
  if (state("trace", "")) showTrace(state("trace", ""));
}

const tag = (sp, k) => (sp.annotations || []).find((a) => a.key === k)?.value;

// waterfall lays the spans out by start time under their parents; a
// click on a span (or "Expand all") shows its tags and span logs. The box
// carries data-trace and data-spans, each span row data-span.
function waterfall(tr) {
  const spans = tr.spans || [];
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const depth = (s, n = 0) => { const p = tag(s, "parent"); return p && byId.has(p) && n < 50 ? depth(byId.get(p), n + 1) : n; };
  const t0 = Math.min(...spans.map((s) => s.startMs));
  const t1 = Math.max(...spans.map((s) => s.startMs + s.durationMs));
  const total = Math.max(t1 - t0, 1);
  const details = [];
  const toggleAll = el("button", { onclick: () => {
    const show = details.some((d) => d.style.display);
    for (const d of details) d.style.display = show ? "" : "none";
    toggleAll.textContent = show ? "Collapse all" : "Expand all";
  } }, "Expand all");
  const box = el("div", { class: "chart", "data-trace": tr.traceId, "data-spans": spans.length },
    el("h3", {}, `Trace ${tr.traceId} · ${spans.length} spans · ${total} ms `, toggleAll));
  const wf = el("div", { class: "wf" });
  for (const s of spans) {
    const isErr = tag(s, "error") === "true";
    const left = ((s.startMs - t0) / total) * 100, width = (s.durationMs / total) * 100;
    const detail = el("div", { class: "detail", style: "display:none" },
      el("table", { class: "span-tags" }, (s.annotations || []).map((a) => el("tr", {}, el("th", {}, a.key), el("td", { class: "tags" }, a.value)))),
      (s.logs || []).length ? el("div", {}, el("h4", {}, "Span logs"), el("table", { class: "span-logs" }, s.logs.map((l) => el("tr", {},
        el("td", {}, new Date(l.timestamp / 1000).toISOString()),
        el("td", { class: "tags" }, Object.entries(l.fields || {}).map(([k, v]) => k + "=" + v).join("  ")))))) : null);
    details.push(detail);
    const row = el("div", { class: "span", "data-span": s.spanId, onclick: () => { detail.style.display = detail.style.display ? "" : "none"; } },
      el("div", { class: "lbl", style: "padding-left:" + (4 + depth(s) * 14) + "px", title: s.name },
        (tag(s, "service") || tag(s, "application") || s.source) + ": " + s.name),
      el("div", { class: "track" },
        el("div", { class: "barx" + (isErr ? " error" : ""), style: `left:${left}%;width:${width}%` }),
        el("span", { class: "dur", style: `left:${Math.min(left + width, 90)}%;padding-left:4px` }, s.durationMs + " ms")));
    wf.append(row, detail);
  }
  box.append(wf);
  return box;
}

// ---------- routing ----------

function route() {
  const path = location.pathname;
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.getAttribute("href") === path);
  document.getElementById("bar").replaceChildren();
  switch (path) {
    case "/control-plane": return dashboard(CONTROL_PLANE);
    case "/metrics-browser": return metricsBrowser();
    case "/traces": return traces();
    default:
      if (path === "/") document.querySelector('header nav a[href="/data-plane"]').classList.add("active");
      return dashboard(DATA_PLANE);
  }
}

route();
