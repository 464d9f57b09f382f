// Runs list: refresh the status, progress, best metric and duration of unfinished runs.
import { api } from "./api.js";

const table = document.getElementById("runs");
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

function clock(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function update(run) {
  const row = table.querySelector(`tr[data-run-id="${run.id}"]`);
  if (!row) return;
  const status = row.querySelector('[data-cell="status"]');
  status.textContent = run.status;
  status.className = `status status-${run.status}`;
  row.querySelector('[data-cell="progress"]').textContent = run.total_steps ? `${run.step} / ${run.total_steps}` : `${run.step}`;
  row.querySelector('[data-cell="best"]').textContent =
    run.best_metric_value === null ? "—" : `${run.best_metric_name} ${run.best_metric_value.toFixed(3)}`;
  row.querySelector('[data-cell="duration"]').textContent = clock(run.duration_seconds);
}

async function refresh(runs) {
  if (runs.every((r) => FINISHED.has(r.status))) return;
  try {
    runs = await api("GET", `/projects/${table.dataset.projectId}/runs`);
    runs.forEach(update);
  } catch {
    // keep the last figures; the next refresh tries again
  }
  setTimeout(() => refresh(runs), 3000);
}

if (table) refresh(JSON.parse(document.getElementById("runs-data").textContent));
