// Run dashboard: progress, live charts, log and checkpoints from the run's event stream (SSE).
import uPlot from "/static/vendor/uPlot-1.6.32.esm.js";
import { api, el, toast, showError } from "./api.js";

const page = document.getElementById("run-page");
const runId = page.dataset.runId;
const projectId = page.dataset.projectId;
const data = JSON.parse(document.getElementById("run-data").textContent);
const tags = data.run.dataset.tags || [];
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
const errorBox = document.getElementById("run-error");
const logBox = document.getElementById("run-log");
const cancelButton = document.getElementById("cancel-run");

// A chart draws some metrics (split + name) against the step; values arrive in any order.
class Chart {
  constructor(id, series, { unitRange = false } = {}) {
    this.box = document.getElementById(id);
    this.series = series;
    this.rows = new Map(); // step -> values, one per series
    this.pending = false;
    this.plot = new uPlot({
      width: this.width(),
      height: 230,
      // Metrics live in [0, 1]; a fixed range keeps an all-zero early F1 from looking like 0-100.
      scales: unitRange ? { x: { time: false }, y: { range: [0, 1] } } : { x: { time: false } },
      axes: [{ label: "step" }, {}],
      series: [{ label: "step" }, ...series.map((s) => ({
        label: s.label, stroke: s.color, width: 2, spanGaps: true,
        points: { show: s.split === "val" },
      }))],
      legend: { live: false },
    }, [[], ...series.map(() => [])], this.box);
  }

  width() {
    return Math.max(300, this.box.clientWidth || 400);
  }

  add(metric) {
    const index = this.series.findIndex((s) => s.split === metric.split && s.name === metric.name);
    if (index < 0) return;
    if (!this.rows.has(metric.step)) this.rows.set(metric.step, this.series.map(() => null));
    this.rows.get(metric.step)[index] = metric.value;
    if (!this.pending) {
      this.pending = true;
      requestAnimationFrame(() => this.draw());
    }
  }

  draw() {
    this.pending = false;
    const steps = [...this.rows.keys()].sort((a, b) => a - b);
    const columns = this.series.map((_, i) => steps.map((step) => this.rows.get(step)[i]));
    this.plot.setData([steps, ...columns]);
    this.box.dataset.points = String(steps.length);
  }
}

const palette = ["#3e63dd", "#e5484d", "#30a46c", "#f5a524", "#8e4ec6", "#12a594"];
const charts = [
  new Chart("chart-loss", [
    { split: "train", name: "loss", label: "train loss", color: palette[0] },
    { split: "val", name: "loss", label: "validation loss", color: palette[1] },
  ]),
  new Chart("chart-map", [{ split: "val", name: "map", label: "mAP", color: palette[2] }],
    { unitRange: true }),
  new Chart("chart-f1", [
    { split: "val", name: "micro_f1", label: "micro F1", color: palette[3] },
    { split: "val", name: "macro_f1", label: "macro F1", color: palette[4] },
  ], { unitRange: true }),
  new Chart("chart-tags", tags.map((tag, i) => ({
    split: "val", name: `f1/${tag.id}`, label: tag.name, color: tag.color || palette[i % palette.length],
  })), { unitRange: true }),
];
window.addEventListener("resize", () => {
  for (const chart of charts) chart.plot.setSize({ width: chart.width(), height: 230 });
});

function clock(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

function showStatus(run) {
  const badge = document.getElementById("run-status");
  badge.textContent = run.cancel_requested && run.status === "running" ? "cancelling" : run.status;
  badge.className = `status status-${run.status}`;
  const total = run.total_steps || 0;
  const share = run.status === "succeeded" ? 1 : total ? Math.min(1, run.step / total) : 0;
  const bar = document.getElementById("run-progress");
  bar.firstElementChild.style.width = `${(share * 100).toFixed(1)}%`;
  bar.setAttribute("aria-valuenow", String(Math.round(share * 100)));
  const parts = [total ? `step ${run.step} of ${total}` : `step ${run.step}`];
  if (run.status === "running" && run.eta_seconds !== null) parts.push(`about ${clock(run.eta_seconds)} left`);
  if (run.duration_seconds !== null) parts.push(`${clock(run.duration_seconds)} elapsed`);
  if (run.attempts > 1) parts.push(`attempt ${run.attempts}`);
  if (run.best_metric_value !== null) parts.push(`best ${run.best_metric_name} ${run.best_metric_value.toFixed(4)}`);
  document.getElementById("run-progress-text").textContent = parts.join(" · ");
  cancelButton.hidden = FINISHED.has(run.status) || run.cancel_requested;
  document.getElementById("evaluation-link").hidden = run.status !== "succeeded";
  if (run.error) showError(errorBox, run.error);
}

function showLog(lines) {
  const atBottom = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 8;
  for (const line of lines) {
    const time = new Date(line.created_at).toLocaleTimeString();
    const row = el("div", { class: line.level === "error" ? "error" : "" }, `[${time}] ${line.message}`);
    logBox.append(row);
  }
  if (atBottom) logBox.scrollTop = logBox.scrollHeight;
}

function showCheckpoints(rows) {
  const tbody = document.querySelector("#checkpoints tbody");
  const number = (v) => (v === null || v === undefined ? "—" : v.toFixed(4));
  tbody.replaceChildren(...rows.map((c) => el("tr", { dataset: { kind: c.kind } },
    el("td", {}, c.kind),
    el("td", { class: "num" }, c.step),
    el("td", { class: "num" }, `${c.metric_name ?? ""} ${number(c.metric_value)}`),
    el("td", { class: "num" }, number(c.metrics.map)),
    el("td", { class: "num" }, number(c.metrics.macro_f1)),
    el("td", { class: "num", title: c.sha256 }, `${(c.bytes / 1e6).toFixed(1)} MB`))));
  document.getElementById("no-checkpoints").hidden = rows.length > 0;
}

cancelButton.addEventListener("click", async () => {
  cancelButton.disabled = true;
  try {
    showStatus(await api("POST", `/projects/${projectId}/runs/${runId}/cancel`));
    toast("Cancel requested: the run stops at its next step", "success");
  } catch (error) {
    showError(errorBox, error);
  } finally {
    cancelButton.disabled = false;
  }
});

showStatus(data.run);
showCheckpoints(data.checkpoints);
const source = new EventSource(`/api/v1/runs/${runId}/events`);
const parse = (event) => JSON.parse(event.data);
source.addEventListener("metrics", (event) => {
  for (const metric of parse(event)) for (const chart of charts) chart.add(metric);
});
source.addEventListener("log", (event) => showLog(parse(event)));
source.addEventListener("status", (event) => showStatus(parse(event)));
source.addEventListener("checkpoints", (event) => showCheckpoints(parse(event)));
source.addEventListener("end", (event) => {
  source.close(); // the run is over; without this EventSource would reconnect
  const run = parse(event);
  if (run.status) showStatus(run);
});
