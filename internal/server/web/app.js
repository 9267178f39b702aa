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

// The reference's quick ranges (2h … 8d) and two shorter ones for a
// freshly started demo.
const RANGES = { "15m": 900, "1h": 3600, "2h": 7200, "6h": 21600, "12h": 43200, "1d": 86400, "8d": 691200 };
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

// Tables show each series' last value, so they ask for the last minutes
// only: over a day, the HTTP table's bucket series alone would be hundreds
// of megabytes of points nobody sees.
const LAST_VALUE_WINDOW = 600;
// Charts ask for about as many points as they have pixels to draw them
// (Wavefront's p): the server averages wider buckets instead of sending a
// point a minute.
const CHART_POINTS = 300;

function rangeParams(c, w) {
  if (c.type === "table" || c.type === "nv") return `s=${Math.max(w.s, w.e - LAST_VALUE_WINDOW)}&e=${w.e}&g=${w.g}`;
  const p = c.type === "line" || c.type === "stat" || c.type === "gauge" ? `&p=${CHART_POINTS}` : "";
  return `s=${w.s}&e=${w.e}&g=${w.g}${p}`;
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
      [{ type: "markdown", text: ["This dashboard provides real-time visibility into the ", "*Istio Data Plane", ". Istio is an open, platform-independent service mesh that provides traffic management, policy enforcement and telemetry collection; the charts show its standard metrics. Use the drop-down menus on the top to filter by ",
        "*Cluster", ", ", "*Reporter", ", ", "*Namespace", " and ", "*Workload", ". This is made possible through ", "*Federated Prometheus", " and the ", "*meshwave collector", ". For the control plane, see the ", ["Istio Control Plane", "/control-plane"], " dashboard."] }],
      [
        { title: "Success Rate", type: "gauge", unit: "pct", agg: "mean",
          desc: "Requests that are neither 5xx nor 4xx over all requests, averaged over the window.",
          queries: q1(dp('100 * sum(rate(ts(istio.requests.total.value, F_dp and not response_code="5*" and not response_code="4*"))) / sum(rate(ts(istio.requests.total.value, F_dp)))')) },
        { title: "Operations per Sec", desc: "Requests per second over the selected workloads: the sum of the per-series rate of istio_requests_total.", type: "stat", color: "blue", queries: q1(dp("sum(rate(ts(istio.requests.total.value, F_dp)))")) },
        { title: "4xx's", desc: "Requests per second answered with a 4xx response code.", type: "stat", color: "green", unit: "ops", queries: q1(dp('sum(rate(ts(istio.requests.total.value, F_dp and response_code="4*")))')) },
        { title: "5xx's", desc: "Requests per second answered with a 5xx response code.", type: "stat", color: "green", unit: "ops", queries: q1(dp('sum(rate(ts(istio.requests.total.value, F_dp and response_code="5*")))')) },
      ],
    ] },
    { title: "Request/Response", rows: [
      [
        { title: "Avg. Request Size", desc: "Mean HTTP request body size: the rate of the size sum over the rate of its count.", type: "stat", color: "blue", unit: "bytes", queries: q1(dp("sum(rate(ts(istio.request.bytes.sum.value, F_dp))) / sum(rate(ts(istio.request.bytes.count.value, F_dp)))")) },
        { title: "Avg. Response Size", desc: "Mean HTTP response body size: the rate of the size sum over the rate of its count.", type: "stat", color: "blue", unit: "bytes", queries: q1(dp("sum(rate(ts(istio.response.bytes.sum.value, F_dp))) / sum(rate(ts(istio.response.bytes.count.value, F_dp)))")) },
        { title: "Avg. Response Time", desc: "Mean request duration in seconds: the rate of the duration sum over the rate of its count.", type: "stat", color: "blue", unit: "s", queries: q1(dp("(sum(rate(ts(istio.request.duration.milliseconds.sum.value, F_dp))) / sum(rate(ts(istio.request.duration.milliseconds.count.value, F_dp)))) / 1000")) },
      ],
      [
        { title: "Request Size (P50/P95/P99)", desc: "Request-size percentiles per series, as the Prometheus recording rules compute them.", type: "line", unit: "bytes", queries: ["p50", "p95", "p99"].map((p) => ({ name: p, q: dp(`ts(istio.request.bytes.bucket.${p}.value, F_dp)`) })) },
        { title: "Response Size (P50/P95/P99)", desc: "Response-size percentiles per series, as the Prometheus recording rules compute them.", type: "line", unit: "bytes", queries: ["p50", "p95", "p99"].map((p) => ({ name: p, q: dp(`ts(istio.response.bytes.bucket.${p}.value, F_dp)`) })) },
        { title: "Response Time (P50/P95/P99)", desc: "Request-duration percentiles per series, in seconds.", type: "line", unit: "s", queries: ["p50", "p95", "p99"].map((p) => ({ name: p, q: dp(`ts(istio.request.duration.milliseconds.bucket.${p}.value, F_dp) / 1000`) })) },
      ],
      [{ title: "Overview of Applications using HTTP", desc: "Request rate per duration bucket (le) for each workload pair; the federated bucket series are already rates.", type: "table", digits: 3,
        cols: ["app", "source_workload", "destination_workload", "response_code", "response_flags", "le"],
        queries: q1(dp("ts(istio.request.duration.milliseconds.bucket.value, F_dp)")) }],
    ] },
    { title: "TCP", rows: [
      [
        { title: "Avg. TCP Sent Bytes", desc: "Bytes sent per second over TCP, averaged over the series.", type: "stat", color: "blue", unit: "bytes", queries: q1(dp("avg(rate(ts(istio.tcp.sent.bytes.total.value, F_dp)))")) },
        { title: "Avg. TCP Received Bytes", desc: "Bytes received per second over TCP, averaged over the series.", type: "stat", color: "blue", unit: "bytes", queries: q1(dp("avg(rate(ts(istio.tcp.received.bytes.total.value, F_dp)))")) },
        { title: "Avg. TCP Connections Opened", desc: "TCP connections opened per second, averaged over the series.", type: "stat", color: "blue", queries: q1(dp("avg(rate(ts(istio.tcp.connections.opened.total.value, F_dp)))")) },
        { title: "Avg. TCP Connections Closed", desc: "TCP connections closed per second, averaged over the series.", type: "stat", color: "blue", queries: q1(dp("avg(rate(ts(istio.tcp.connections.closed.total.value, F_dp)))")) },
      ],
      [{ title: "Overview of Applications using TCP", desc: "Bytes sent and received per second for each TCP series.", type: "table", unit: "bytes", digits: 3,
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
      [{ type: "markdown", text: ["This dashboard provides real-time visibility into the ", "*Istio Control Plane", ". Istio's control plane is itself a cloud-native application: its components, service discovery (Pilot), configuration (Galley) and certificate generation (Citadel), are separate microservices that must communicate securely and be observable, so Istio drinks its own champagne. Use the drop-down menu on the top to filter by ",
        "*Cluster", ". This is made possible through ", "*Federated Prometheus", " and the ", "*meshwave collector", ". For the data plane, see the ", ["Istio Data Plane", "/data-plane"], " dashboard."] }],
      [{ title: "Component Build Info", desc: "The Istio version of every proxy and of istiod.", type: "table", cols: ["app", "instance", "version", "_tag"], queries: q1(cp("ts(istio.build.value, F_cp)")) }],
      [
        { title: "#Services known to Pilot", desc: "Services in istiod's registry.", type: "stat", color: "teal", digits: 0, queries: q1(cp("ts(pilot.services.value, F_cp)")) },
        { title: "Pilot Rejected CDS/EDS/LDS/RDS", desc: "Configurations rejected by proxies, per xDS type; 0 until the first rejection creates the series.", type: "nv", queries: named([["eds", "eds"], ["cds_configs", "cds"], ["lds", "lds"], ["rds", "rds"]], (m) => `sum(ts(pilot.xds.${m}.reject.value, F_cp)).orElse(0)`) },
        { title: "XDS Push Context Errors", desc: "Errors while istiod computed a push context.", type: "line", queries: q1(cp("ts(pilot.xds.push.context.errors.value, F_cp)")) },
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
        { title: "XDS Pushes", desc: "Cumulative xDS pushes per type.", type: "table", digits: 0, cols: ["app", "instance", "type"], queries: q1(cp("ts(pilot.xds.pushes.value, F_cp)")) },
        { title: "Total XDS Responses Rejected by Proxy", desc: "xDS responses that proxies rejected.", type: "line", queries: q1(cp("ts(pilot.total.xds.rejects.value, F_cp)")) },
        { title: "XDS Write Timeout", desc: "xDS writes that timed out.", type: "line", unit: "s", queries: q1(cp("ts(pilot.xds.write.timeout.value, F_cp)")) },
        { title: "Total XDS Internal Errors", desc: "Internal errors while istiod served xDS.", type: "line", queries: q1(cp("ts(pilot.total.xds.internal.errors.value, F_cp)")) },
      ],
      [
        { title: "Virtual Services known to Pilot", desc: "VirtualServices in istiod.", type: "stat", color: "blue", digits: 0, queries: q1(cp("ts(pilot.virt.services.value, F_cp)")) },
        { title: "Conflicting Inbound/Outbound Listeners", desc: "Listener conflicts istiod resolved.", type: "table", width: 3, cols: [],
          queries: [
            { name: "Inbound", q: cp("sum(ts(pilot.conflict.inbound.listener.value, F_cp))") },
            { name: "HTTP over current TCP", q: cp("sum(ts(pilot.conflict.outbound.listener.http.over.current.tcp.value, F_cp))") },
            { name: "TCP over current HTTP", q: cp("sum(ts(pilot.conflict.outbound.listener.tcp.over.current.http.value, F_cp))") },
            { name: "TCP over current TCP", q: cp("sum(ts(pilot.conflict.outbound.listener.tcp.over.current.tcp.value, F_cp))") },
          ] },
      ],
      [
        { title: "Proxy Convergence Time", type: "histogram", unit: "dur",
          desc: "As the reference renders it: the point values of the cumulative bucket series, binned. The line chart below shows the real latency percentiles.",
          queries: q1(cp("ts(pilot.proxy.convergence.time.bucket.value, F_cp)")) },
        { title: "Proxy Queue Time", emptyHint: "metric not collected; add pilot.proxy.queue.time.bucket.value to the collector's metricAllowList", desc: "As the reference renders it: the point values of the cumulative bucket series, binned. The reference's collector configuration drops this metric; meshwave's keeps it.", type: "histogram", unit: "dur", queries: q1(cp("ts(pilot.proxy.queue.time.bucket.value, F_cp)")) },
      ],
      [{ title: "Proxy Convergence Time p50/p90/p99 (from le deltas)", desc: "The convergence latency distribution the histogram above cannot show: percentiles of the per-bucket rates.", type: "line", unit: "s",
        queries: [50, 90, 99].map((p) => ({ name: "p" + p, q: cp(`percentile(${p}, rate(ts(pilot.proxy.convergence.time.bucket.value, F_cp)))`) })) }],
    ] },
    { title: "Galley", rows: [[
      { title: "Configuration Validation (Pass/Fail/HTTP Error)", desc: "Validation-webhook results per istiod, per second.", type: "table", cols: ["app", "instance"],
        queries: named([["Validation Passed", "passed"], ["Validation Failed", "failed"], ["HTTP Error", "http.error"]], (m) => `sum(rate(ts(galley.validation.${m}.value, F_cp)), app, instance)`) },
      { title: "K8s Webhook Configuration (Update/Load/Delete)", desc: "Webhook-configuration updates, loads and delete errors per istiod, per second.", type: "table", cols: ["app", "instance"],
        queries: named([["Config Updates", "config.updates"], ["Config Load", "config.load"], ["Delete Error", "config.delete.error"]], (m) => `sum(rate(ts(galley.validation.${m}.value, F_cp)), app, instance)`) },
    ]] },
    { title: "Citadel", rows: [[
      { title: "Root Certificate Expiry", type: "table", unit: "dur", cols: ["app", "instance"], queries: q1(cp("ts(citadel.server.root.cert.expiry.timestamp.value, F_cp) - time()")) },
      { title: "CSRs Status (Received/Success/Error)", desc: "Certificate signing requests per istiod, per second.", type: "table", width: 2, cols: ["app", "instance"],
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
  // The reference's header marks: ⚠ when a query failed or returned
  // nothing, ⓘ with the chart's description.
  const marks = () => [errors || emptyQueries ? el("span", { class: "warn", title: errors || "a query returned no data" }, "⚠") : null,
    c.desc ? el("span", { class: "info", title: c.desc }, "i") : null];
  const head = el("h3", {}, c.title, marks());
  if (!points && c.type !== "nv") {
    box.replaceChildren(head, el("div", { class: "nodata", title: errors }, "NO DATA", c.emptyHint && !errors ? el("div", { class: "hint" }, c.emptyHint) : null));
    return;
  }
  switch (c.type) {
    case "stat": {
      const s = all[0];
      box.className = "chart stat " + (c.color || "blue");
      box.replaceChildren(sparkline(s.data), el("div", { class: "marks" }, marks()),
        el("div", { class: "value" }, fmt(lastValue(s), c.unit, c.digits)), el("div", { class: "title" }, c.title));
      break;
    }
    case "gauge": {
      const s = all[0];
      box.className = "chart gauge";
      box.replaceChildren(el("div", { class: "marks" }, marks()), dial(c.agg === "mean" ? meanValue(s) : lastValue(s), c), el("div", { class: "title" }, c.title));
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
      box.replaceChildren(head);
      histogram(box, c, all);
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

const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}

function sparkline(data) {
  const svg = svgEl("svg", { viewBox: "0 0 100 100", preserveAspectRatio: "none" });
  if (data.length > 1) {
    const xs = data.map((p) => p[0]), ys = data.map((p) => p[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
    const pts = data.map((p) => ((p[0] - x0) / (x1 - x0 || 1)) * 100 + "," + (95 - ((p[1] - y0) / (y1 - y0 || 1)) * 60)).join(" ");
    svg.append(svgEl("polyline", { points: pts, fill: "none", stroke: "#fff", "stroke-width": 2, "vector-effect": "non-scaling-stroke" }));
  }
  return svg;
}

// dial is the reference's gauge: a 270° dial from 0 to 100 inside a
// threshold ring, red at the low end, orange up to the midpoint, green
// above; the value in the centre takes its band's colour.
function dial(v, c) {
  const band = (f) => (f < 0.25 ? "#d9534f" : f < 0.5 ? "#f0ad4e" : "#5cb85c");
  const f = Math.min(Math.max((v ?? 0) / 100, 0), 1);
  const pt = (r, x) => {
    const a = ((135 + 270 * x) * Math.PI) / 180;
    return (60 + r * Math.cos(a)).toFixed(2) + " " + (56 + r * Math.sin(a)).toFixed(2);
  };
  const arc = (r, x0, x1, stroke, width) => svgEl("path", {
    d: `M${pt(r, x0)} A${r} ${r} 0 ${(x1 - x0) * 270 > 180 ? 1 : 0} 1 ${pt(r, x1)}`, fill: "none", stroke, "stroke-width": width,
  });
  const svg = svgEl("svg", { viewBox: "0 0 120 100", class: "dial" });
  svg.append(arc(52, 0, 0.25, band(0), 3), arc(52, 0.25, 0.5, band(0.25), 3), arc(52, 0.5, 1, band(0.5), 3), arc(43, 0, 1, "#e4e8ec", 11));
  if (f > 0) svg.append(arc(43, 0, f, band(f), 11));
  svg.append(svgEl("text", { x: 60, y: 63, "text-anchor": "middle", "font-size": 19, "font-weight": 600, fill: band(f) }, fmt(v, c.unit, c.digits)));
  return svg;
}

const MAX_ROWS = 300;

// histogram bins every point value of every series into 30 bars on a
// log-scale count axis, as the reference does, with markers at the
// quartiles, the mean and the maximum along the top (coinciding ones
// merged, e.g. "50/avg").
function histogram(box, c, all) {
  const vs = all.flatMap((s) => s.data.map((p) => p[1])).sort((a, b) => a - b);
  const lo = vs[0], hi = vs[vs.length - 1], n = 30, w = (hi - lo) / n || 1;
  const counts = new Array(n).fill(0);
  for (const v of vs) counts[Math.min(Math.floor((v - lo) / w), n - 1)]++;
  const pct = (p) => vs[Math.min(vs.length - 1, Math.floor((p / 100) * vs.length))];
  const marks = [["25", pct(25)], ["50", pct(50)], ["avg", vs.reduce((a, b) => a + b, 0) / vs.length], ["75", pct(75)], ["max", hi]]
    .sort((a, b) => a[1] - b[1]);
  const label = (v, digits) => (c.unit === "dur" ? durShort(v, digits) : fmt(v, c.unit, digits));
  const readout = el("div", { class: "readout muted" }, `${vs.length} points; count on a log scale`);
  const drawMarks = (u) => {
    const ctx = u.ctx, dpr = devicePixelRatio, left = u.bbox.left, right = u.bbox.left + u.bbox.width;
    ctx.save();
    ctx.font = `${11 * dpr}px system-ui, sans-serif`;
    ctx.fillStyle = ctx.strokeStyle = "#6b7785";
    ctx.setLineDash([3 * dpr, 3 * dpr]);
    ctx.textAlign = "left";
    // A label sits centred on its marker, or grows inwards at the plot's
    // edges; labels that would touch merge, left to right, until none do.
    const box = (g) => {
      const w = ctx.measureText(g.name).width;
      const x0 = g.x + w / 2 > right ? g.x - w : g.x - w / 2 < left ? g.x : g.x - w / 2;
      return [x0, x0 + w];
    };
    let groups = marks.map(([name, v]) => ({ name, x: u.valToPos(v, "x", true) }));
    for (let merged = true; merged;) {
      merged = false;
      for (let i = 1; i < groups.length; i++) {
        if (box(groups[i])[0] < box(groups[i - 1])[1] + 6 * dpr) {
          groups[i - 1].name += "/" + groups[i].name;
          groups.splice(i, 1);
          merged = true;
          break;
        }
      }
    }
    for (const [, v] of marks) {
      const x = u.valToPos(v, "x", true);
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
    }
    for (const g of groups) ctx.fillText(g.name, box(g)[0], u.bbox.top - 4 * dpr);
    ctx.restore();
  };
  const opts = {
    width: Math.max(box.clientWidth - 16, 200), height: 180,
    padding: [18, 32, 0, 0], // room for the markers' labels and the last tick
    legend: { show: false },
    cursor: { y: false, points: { show: false } },
    scales: { x: { time: false, range: [lo, lo + n * w] }, y: { distr: 3, range: (u, mn, mx) => [0.8, Math.max(10, mx * 1.5)] } },
    axes: [{ size: 30, space: 70, values: (u, vals, axis, space, step) => vals.map((v) => label(v, decimalsFor(step, 1))) },
      { size: 50, label: "count", labelSize: 14 }],
    series: [{}, {
      label: "count", paths: uPlot.paths.bars({ size: [1, Infinity], gap: 1, align: 1 }), fillTo: (u) => u.scales.y.min,
      // The reference's blue-to-purple gradient across the bins.
      fill: (u) => {
        const g = u.ctx.createLinearGradient(u.bbox.left, 0, u.bbox.left + u.bbox.width, 0);
        g.addColorStop(0, "#4a90d9");
        g.addColorStop(1, "#a35fd0");
        return g;
      },
      stroke: "#3d5a99", width: 1, points: { show: false },
    }],
    hooks: {
      draw: [drawMarks],
      setCursor: [(u) => {
        const i = u.cursor.idx;
        const d = decimalsFor(w, 1);
        if (i != null) readout.textContent = `${label(lo + i * w, d)} – ${label(lo + (i + 1) * w, d)}: ${counts[i]} points`;
      }],
    },
  };
  const holder = el("div");
  box.append(holder, readout);
  new uPlot(opts, [counts.map((_, i) => lo + i * w), counts.map((k) => k || null)], holder);
}

// durShort formats seconds the way the reference's histogram axis does:
// "2m 22s", "1h 5m", "250ms"; digits are the seconds' decimals.
function durShort(sec, digits = 0) {
  const sign = sec < 0 ? "-" : "", abs = Math.abs(sec);
  if (abs < 1) return sign + (abs * 1000).toFixed(Math.max(digits - 3, 0)) + "ms";
  const f = 10 ** digits, a = Math.round(abs * f) / f;
  if (a < 60) return sign + a.toFixed(digits) + "s";
  if (a < 3600) {
    const m = Math.floor(a / 60);
    return sign + m + "m " + (a - m * 60).toFixed(digits) + "s";
  }
  const t = Math.round(a);
  if (t < 86400) return sign + Math.floor(t / 3600) + "h " + Math.floor((t % 3600) / 60) + "m";
  return sign + Math.floor(t / 86400) + "d " + Math.floor((t % 86400) / 3600) + "h";
}

// decimalsFor is how many decimals tell ticks step apart once divided by
// unit (0 to 6).
function decimalsFor(step, unit) {
  return Math.min(Math.max(Math.ceil(-Math.log10(step / unit) - 1e-9), 0), 6);
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
    // The series colour goes before the first tag in single-query tables
    // and after each value in multi-query ones, as in the reference.
    sorted.map((row) => {
      const swatch = () => el("span", { class: "swatch", style: "background:" + row.color });
      const multi = c.queries.length > 1 || !row.key.length;
      return el("tr", {},
        row.key.map((v, i) => el("td", {}, i === 0 && !multi ? swatch() : null, v)),
        c.queries.map((_, i) => el("td", { class: "num" }, fmt(row.values[i], c.unit, c.digits ?? 3), multi ? swatch() : null)));
    })));
}

// siTicks formats an axis's ticks with one SI prefix chosen by its largest
// tick (3.2m, 120k; none from 0.01 to 1000), as the reference does, with
// as many decimals as the tick step needs.
function siTicks(u, vals, axis, space, step) {
  const top = Math.max(...vals.map(Math.abs));
  const [n, p] = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"], [0.01, ""], [1e-3, "m"], [1e-6, "µ"], [0, "n"]].find(([n]) => top >= n);
  const unit = p === "n" ? 1e-9 : p ? n : 1;
  const decimals = decimalsFor(step, unit);
  return vals.map((v) => (v === 0 ? "0" : (v / unit).toFixed(decimals) + p));
}

// bytesTicks formats an axis's ticks with one binary prefix chosen by its
// largest tick (.98Ki … 4.88Ki, as the reference).
function bytesTicks(u, vals, axis, space, step) {
  const top = Math.max(...vals.map(Math.abs));
  let k = 0;
  while (k < 5 && top >= 1024 ** (k + 1)) k++;
  const unit = 1024 ** k, decimals = decimalsFor(step, unit);
  return vals.map((v) => (v / unit).toFixed(decimals) + ["", "Ki", "Mi", "Gi", "Ti", "Pi"][k]);
}

// flatRange centres a flat chart on its value (−1…1 for all zeros, as
// the reference draws its idle xDS error charts) instead of uPlot's 0…100.
function flatRange(u, min, max) {
  if (min == null) return [0, 1];
  if (min !== max) return uPlot.rangeNum(min, max, 0.1, true);
  const pad = Math.abs(min) * 0.1 || 1;
  return [min - pad, max + pad];
}

// bridgeGaps draws a dashed line across each series' missing points, as
// the reference does: the line stays readable and the gap stays visible.
function bridgeGaps(u) {
  const ctx = u.ctx, dpr = devicePixelRatio;
  ctx.save();
  ctx.beginPath();
  ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
  ctx.clip();
  ctx.setLineDash([4 * dpr, 4 * dpr]);
  ctx.lineWidth = dpr;
  const xs = u.data[0];
  for (let k = 1; k < u.data.length; k++) {
    const ys = u.data[k];
    ctx.strokeStyle = COLORS[(k - 1) % COLORS.length];
    ctx.beginPath();
    for (let i = 0, last = -1; i < ys.length; i++) {
      if (ys[i] == null) continue;
      if (last >= 0 && i > last + 1) {
        ctx.moveTo(u.valToPos(xs[last], "x", true), u.valToPos(ys[last], "y", true));
        ctx.lineTo(u.valToPos(xs[i], "x", true), u.valToPos(ys[i], "y", true));
      }
      last = i;
    }
    ctx.stroke();
  }
  ctx.restore();
}

// lineChart draws every series of every query on one uPlot, timestamps
// aligned on their union; gaps are bridged with dashes (bridgeGaps).
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
  const axisFmt = c.unit === "bytes" ? bytesTicks : siTicks;
  const opts = {
    width, height: 180,
    legend: { show: false },
    cursor: { points: { show: false } },
    scales: { x: { time: true, range: () => [w.s, w.e] }, y: { range: flatRange } },
    axes: [{ size: 30 }, { size: 80, values: axisFmt, label: c.unit === "bytes" ? "Bytes" : c.unit || "#", labelSize: 14 }],
    series: [{}, ...series.map(({ name }, i) => ({
      label: name, stroke: COLORS[i % COLORS.length], width: 1.5,
      fill: c.fill ? COLORS[i % COLORS.length] + "22" : undefined,
    }))],
  };
  // The legend is hidden (there can be hundreds of series); the readout
  // names the series nearest the cursor instead.
  const readout = el("div", { class: "readout muted" }, series.length + " series");
  opts.hooks = { draw: [bridgeGaps], setCursor: [(u) => {
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

// istioLogo is a drawing of Istio's sail for the dashboards' text panels,
// as the reference shows it (no remote image).
function istioLogo() {
  const svg = svgEl("svg", { viewBox: "0 0 40 60", class: "logo" });
  for (const points of ["17,2 17,45 3,45", "20,14 20,45 35,45", "3,48 37,48 31,56 9,56"]) svg.append(svgEl("polygon", { points, fill: "#466bb0" }));
  return svg;
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
        api(`/api/v2/chart/api?q=${encodeURIComponent(q.q)}&${rangeParams(c, w)}${vars}`).catch((e) => ({ error: e.message }))));
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
          box.append(istioLogo(), el("p", {}, c.text.map((t) => Array.isArray(t) ? el("a", { class: "link", href: t[1] }, t[0]) : t.startsWith("*") ? el("b", {}, t.slice(1)) : t)));
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
          // One line per metric; the tooltip has every tag's values.
          el("td", { class: "tags oneline", title: Object.entries(m.tags || {}).map(([k, vs]) => k + " = " + vs.slice(0, 50).join(" | ") + (vs.length > 50 ? ` … (${vs.length})` : "")).join("\n") },
            Object.entries(m.tags || {}).map(([k, vs]) => k + "=" + vs.slice(0, 3).join("|") + (vs.length > 3 ? `|…(${vs.length})` : "")).join("  "))))));
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

// waterfall lays the spans out as a tree, each under its parent and
// siblings by start time; a click on a span (or "Expand all") shows its
// tags and span logs. The box carries data-trace and data-spans, each span
// row data-span.
function waterfall(tr) {
  const spans = tr.spans || [];
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map();
  const roots = [];
  for (const s of spans) {
    const p = tag(s, "parent");
    if (p && p !== s.spanId && ids.has(p)) children.set(p, [...(children.get(p) || []), s]);
    else roots.push(s);
  }
  const rows = [], seen = new Set();
  const visit = (s, depth) => {
    if (seen.has(s)) return;
    seen.add(s);
    rows.push({ s, depth });
    for (const c of children.get(s.spanId) || []) visit(c, depth + 1);
  };
  for (const s of roots) visit(s, 0);
  for (const s of spans) visit(s, 0); // spans in a parent cycle, unreachable from a root
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
  for (const { s, depth } of rows) {
    const isErr = tag(s, "error") === "true";
    const left = ((s.startMs - t0) / total) * 100, width = (s.durationMs / total) * 100;
    const detail = el("div", { class: "detail", style: "display:none" },
      el("table", { class: "span-tags" }, (s.annotations || []).map((a) => el("tr", {}, el("th", {}, a.key), el("td", { class: "tags" }, a.value)))),
      (s.logs || []).length ? el("div", {}, el("h4", {}, "Span logs"), el("table", { class: "span-logs" }, s.logs.map((l) => el("tr", {},
        el("td", {}, new Date(l.timestamp / 1000).toISOString()),
        el("td", { class: "tags" }, Object.entries(l.fields || {}).map(([k, v]) => k + "=" + v).join("  ")))))) : null);
    details.push(detail);
    const row = el("div", { class: "span", "data-span": s.spanId, onclick: () => { detail.style.display = detail.style.display ? "" : "none"; } },
      el("div", { class: "lbl", style: "padding-left:" + (4 + depth * 14) + "px", title: s.name },
        (tag(s, "service") || tag(s, "application") || s.source) + ": " + s.name),
      el("div", { class: "track" },
        el("div", { class: "barx" + (isErr ? " error" : ""), style: `left:${left}%;width:${width}%` }),
        // The duration goes after the bar; near the right edge inside a
        // wide bar, or before a narrow one.
        el("span", left + width <= 88 ? { class: "dur", style: `left:${left + width}%` }
          : width >= 8 ? { class: "dur inside", style: `right:${100 - left - width}%` } : { class: "dur", style: `right:${100 - left}%` },
        s.durationMs + " ms")));
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
