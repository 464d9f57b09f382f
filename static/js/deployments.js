// Deployments page: deploy a checkpoint, watch exports go live, manage deployments, and run
// batch predictions with downloadable results.
import { api, el, toast, showError, clearError } from "./api.js";

const root = document.getElementById("deployments-page");
const projectId = root.dataset.projectId;
let deployments = JSON.parse(document.getElementById("deployments-data").textContent);
let jobs = [];
const busy = new Set(["pending", "exporting", "queued", "running"]);

function int8Cell(d) {
  const report = d.int8_report;
  if (d.has_int8 && report?.status === "ready") {
    const parts = [el("a", { href: `/api/v1/deployments/${d.id}/bundle?variant=int8` }, "bundle (INT8)")];
    const metrics = report.metrics || {};
    const change = (key, label) => metrics[key]
      ? ` ${label} ${metrics[key].fp32?.toFixed(3)} → ${metrics[key].int8?.toFixed(3)} (${metrics[key].change >= 0 ? "+" : ""}${metrics[key].change?.toFixed(4)})`
      : "";
    parts.push(el("div", { class: "muted int8" },
      `${(report.bytes.int8 / 1e6).toFixed(1)} MB vs ${(report.bytes.fp32 / 1e6).toFixed(1)} MB;` +
      change("map", "mAP") + change("micro_f1", "micro F1") +
      `; max score change ${report.max_abs_score_diff.toFixed(4)} on ${report.images} images`));
    return parts;
  }
  if (report?.status === "queued") return "building…";
  if (report?.status === "failed") return el("span", { class: "error" }, report.error || "failed");
  if (d.status !== "live") return "—";
  return el("button", { class: "link", onclick: () => act(d, "POST", `/deployments/${d.id}/int8`) }, "Build INT8");
}

async function act(d, method, path, body) {
  try {
    await api(method, path, body);
    await refresh();
  } catch (error) {
    toast(error.message, "error");
  }
}

function renderDeployments() {
  const tbody = document.querySelector("#deployments tbody");
  tbody.replaceChildren();
  document.getElementById("no-deployments").hidden = deployments.length > 0;
  for (const d of deployments) {
    const tags = d.labels.map((label, i) => `${label.name} ≥ ${Number(d.thresholds[i] ?? 0.5).toFixed(2)}`).join(", ");
    const status = [el("span", { class: `status status-${d.status}` }, d.status)];
    if (d.is_default) status.push(" ", el("span", { class: "chip" }, "default"));
    if (d.status === "live" && !d.active) status.push(" ", el("span", { class: "chip" }, "off"));
    if (d.error) status.push(el("div", { class: "error" }, d.error));
    if (d.verify_max_diff !== null && d.status === "live") {
      status.push(el("div", { class: "muted" }, `ONNX vs PyTorch max diff ${d.verify_max_diff.toExponential(1)}`));
    }
    const actions = [];
    if (d.status === "live") {
      actions.push(el("a", { href: `/projects/${projectId}/deployments/${d.id}/try` }, "Try it"));
      actions.push(el("a", { href: `/api/v1/deployments/${d.id}/bundle` }, "Download bundle"));
      if (!d.is_default) actions.push(el("button", { class: "link", onclick: () => act(d, "PATCH", `/deployments/${d.id}`, { is_default: true }) }, "Make default"));
      actions.push(el("button", { class: "link", onclick: () => act(d, "PATCH", `/deployments/${d.id}`, { active: !d.active }) }, d.active ? "Switch off" : "Switch on"));
    }
    actions.push(el("button", { class: "link", onclick: () => {
      if (confirm(`Delete deployment “${d.name}”?`)) act(d, "DELETE", `/deployments/${d.id}`);
    } }, "Delete"));
    tbody.append(el("tr", { dataset: { deploymentId: d.id } },
      el("td", {}, d.name), el("td", {}, `v${d.version}`), el("td", {}, status),
      el("td", { class: "muted" }, tags || "—"), el("td", {}, int8Cell(d)),
      el("td", {}, el("div", { class: "actions" }, actions))));
  }
  const select = document.querySelector("#batch-form select");
  const current = select.value;
  select.replaceChildren(...deployments.filter((d) => d.status === "live" && d.active)
    .map((d) => el("option", { value: d.id }, `${d.name} (v${d.version})`)));
  if (current) select.value = current;
}

function renderJobs() {
  const tbody = document.querySelector("#jobs tbody");
  tbody.replaceChildren(...jobs.map((job) => {
    const name = deployments.find((d) => d.id === job.deployment_id)?.name ?? "—";
    const results = job.status === "succeeded"
      ? ["csv", "json", "zip"].map((format) => el("a", { href: `/api/v1/prediction-jobs/${job.id}/results?format=${format}` }, format.toUpperCase()))
      : [job.error ? el("span", { class: "error" }, job.error) : "—"];
    return el("tr", { dataset: { jobId: job.id } },
      el("td", {}, `#${job.id}`), el("td", {}, name),
      el("td", {}, el("span", { class: `status status-${job.status}` }, job.status)),
      el("td", {}, `${job.processed} / ${job.total}${job.failed ? ` (${job.failed} unreadable)` : ""}`),
      el("td", { class: "actions" }, results));
  }));
}

let timer = null;
async function refresh() {
  try {
    [deployments, jobs] = await Promise.all([
      api("GET", `/projects/${projectId}/deployments`),
      api("GET", `/projects/${projectId}/prediction-jobs`),
    ]);
  } catch (error) {
    toast(error.message, "error");
  }
  renderDeployments();
  renderJobs();
  clearTimeout(timer);
  const waiting = deployments.some((d) => busy.has(d.status) || d.int8_report?.status === "queued")
    || jobs.some((j) => busy.has(j.status));
  if (waiting) timer = setTimeout(refresh, 2000);
}

document.getElementById("deploy-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.currentTarget);
  const [runId, kind] = String(form.get("checkpoint")).split(":");
  const errorBox = document.getElementById("deploy-error");
  clearError(errorBox);
  try {
    await api("POST", `/projects/${projectId}/deployments`, {
      run_id: Number(runId), checkpoint: kind, name: form.get("name") || "",
      make_default: form.get("make_default") === "on", quantize: form.get("quantize") === "on",
    });
    toast("Exporting… it goes live once verified", "success");
    refresh();
  } catch (error) {
    showError(errorBox, error);
  }
});

document.getElementById("batch-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const errorBox = document.getElementById("batch-error");
  clearError(errorBox);
  const deploymentId = form.querySelector("select").value;
  if (!deploymentId) { showError(errorBox, "No live deployment to predict with."); return; }
  const body = new FormData();
  for (const file of form.querySelector("input[type=file]").files) body.append("files", file, file.name);
  try {
    await api("POST", `/deployments/${deploymentId}/prediction-jobs`, body);
    form.reset();
    refresh();
  } catch (error) {
    showError(errorBox, error);
  }
});

renderDeployments();
refresh();
