// Storage sources: add S3 / Azure (admins: folder) sources, sync one, poll its job for progress.
import { api, el, toast, showError, clearError } from "./api.js";

const config = JSON.parse(document.getElementById("sources-config").textContent);
const projectId = config.project_id;
const list = document.getElementById("sources");
const form = document.getElementById("source-form");
const formError = document.getElementById("source-error");
const kindSelect = document.getElementById("source-kind");
const POLL_MS = 1000;
const SETTINGS = { s3: ["bucket", "region", "endpoint_url"], azure: ["container", "account_url"], folder: ["path"] };
const SECRETS = { s3: ["access_key_id", "secret_access_key"], azure: ["connection_string", "account_key", "sas_token"], folder: [] };
let sources = config.sources;
const polling = new Set();

function describeJob(job) {
  if (!job) return "never synced";
  const counts = `${job.processed}/${job.total} objects · ${job.imported} new · ${job.updated} updated · ` +
    `${job.duplicates} duplicates · ${job.removed} removed · ${job.failed} failed`;
  if (job.status === "queued") return "waiting for a worker…";
  if (job.status === "running") return `syncing: ${counts}`;
  if (job.status === "failed") return `failed: ${job.error ?? "unknown error"}`;
  return `done ${new Date(job.finished_at).toLocaleString()}: ${counts}`;
}

function sourceCard(source) {
  const job = source.last_job;
  const percent = job && job.total ? Math.round((job.processed / job.total) * 100) : job?.status === "succeeded" ? 100 : 0;
  const details = Object.entries(source.settings).map(([key, value]) => [el("dt", {}, key), el("dd", {}, value)]);
  if (source.prefix) details.push([el("dt", {}, "prefix"), el("dd", {}, source.prefix)]);
  for (const [key, hint] of Object.entries(source.secret_hints)) details.push([el("dt", {}, key), el("dd", {}, hint)]);
  const running = job && (job.status === "queued" || job.status === "running");
  const problems = [...(job?.errors ?? []).slice(0, 20).map((e) => `${e.key}: ${e.message}`),
    ...(job?.removed_keys ?? []).slice(0, 20).map((key) => `${key}: gone from the source${source.remove_missing ? " (image deleted)" : ""}`)];
  return el("article", { class: "source", dataset: { sourceId: source.id } },
    el("div", { class: "source-head" },
      el("h3", {}, `${source.name} `, el("span", { class: "chip" }, source.kind)),
      el("div", { class: "row" },
        el("button", { class: "primary sync-button", disabled: running, onclick: () => startSync(source) }, running ? "Syncing…" : "Sync now"),
        el("button", { class: "link", onclick: () => removeSource(source) }, "Delete"))),
    el("dl", {}, details.flat()),
    el("div", { class: "sync-line" },
      el("div", { class: "progress", role: "progressbar", "aria-valuenow": percent, "aria-valuemin": 0, "aria-valuemax": 100 },
        el("div", { style: `width:${percent}%` })),
      el("span", { class: `sync-status ${job?.status ?? ""}` }, describeJob(job))),
    problems.length ? el("ul", { class: "sync-errors" }, problems.map((text) => el("li", {}, text))) : null);
}

function render() {
  document.getElementById("no-sources").hidden = sources.length > 0;
  list.replaceChildren(...sources.map(sourceCard));
  for (const source of sources) {
    const job = source.last_job;
    if (job && (job.status === "queued" || job.status === "running")) poll(source.id, job.id);
  }
}

function replaceSource(updated) {
  sources = sources.map((source) => (source.id === updated.id ? updated : source));
  render();
}

async function poll(sourceId, jobId) {
  if (polling.has(jobId)) return;
  polling.add(jobId);
  try {
    for (;;) {
      const job = await api("GET", `/projects/${projectId}/sources/${sourceId}/sync-jobs/${jobId}`);
      const source = sources.find((s) => s.id === sourceId);
      if (!source) return;
      replaceSource({ ...source, last_job: job });
      if (job.status === "succeeded" || job.status === "failed") {
        toast(job.status === "succeeded" ? `Sync of “${source.name}” finished` : `Sync of “${source.name}” failed`,
          job.status === "succeeded" ? "success" : "error");
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } catch (error) {
    toast(error.message, "error");
  } finally {
    polling.delete(jobId);
  }
}

async function startSync(source) {
  try {
    const job = await api("POST", `/projects/${projectId}/sources/${source.id}/sync`);
    replaceSource({ ...source, last_job: job });
  } catch (error) {
    toast(error.message, "error");
  }
}

async function removeSource(source) {
  if (!confirm(`Delete source “${source.name}”? Its images stay in the project.`)) return;
  try {
    await api("DELETE", `/projects/${projectId}/sources/${source.id}`);
    sources = sources.filter((s) => s.id !== source.id);
    render();
  } catch (error) {
    toast(error.message, "error");
  }
}

function showKindFields() {
  for (const block of form.querySelectorAll(".kind-fields")) block.hidden = block.dataset.kind !== kindSelect.value;
}
kindSelect.addEventListener("change", showKindFields);

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearError(formError);
  const data = new FormData(form);
  const kind = data.get("kind");
  const pick = (names) => Object.fromEntries(names.map((name) => [name, data.get(name)?.trim() || null]).filter(([, v]) => v));
  try {
    const created = await api("POST", `/projects/${projectId}/sources`, {
      kind,
      name: data.get("name") ?? "",
      prefix: data.get("prefix") ?? "",
      remove_missing: data.get("remove_missing") === "on",
      settings: pick(SETTINGS[kind]),
      secrets: pick(SECRETS[kind]),
    });
    sources.push(created);
    form.reset();
    showKindFields();
    render();
    toast(`Added “${created.name}”`, "success");
  } catch (error) {
    showError(formError, error);
  }
});

showKindFields();
render();
