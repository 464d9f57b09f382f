// Workflow builder: edit the four blocks, see the live check (counts, problems, estimates),
// save versions, preview augmentations and start a training run.
import { api, el, toast, showError, clearError } from "./api.js";

const data = JSON.parse(document.getElementById("page-data").textContent);
const projectId = data.project_id;
const base = `/projects/${projectId}/workflows`;
const builder = document.getElementById("builder");
const errorBox = document.getElementById("wf-error");
const nameInput = document.getElementById("wf-name");
const archSelect = document.getElementById("arch-select");
const inputSize = document.getElementById("input-size");
const preview = document.getElementById("augmentation-preview");

let workflows = data.workflows;
let current = null; // the selected saved workflow
let graph = null; // the graph being edited
let dirty = false;
let checkTimer = null;
let checkSeq = 0;

for (const arch of data.archs) {
  archSelect.append(el("option", { value: arch.name }, `${arch.name} (${arch.input_size}px)`));
}

function defaultSize(arch) {
  return data.archs.find((a) => a.name === arch)?.input_size ?? 224;
}

function fields() {
  return document.querySelectorAll("[data-field]");
}

function readValue(input) {
  const type = input.dataset.type;
  if (type === "bool") return input.checked;
  if (type === "int") return parseInt(input.value, 10);
  if (type === "float") return parseFloat(input.value);
  if (type === "int-or-null") return input.value === "" ? null : parseInt(input.value, 10);
  return input.value;
}

function writeForm() {
  for (const input of fields()) {
    const [block, key] = input.dataset.field.split(".");
    const value = graph[block][key];
    if (input.dataset.type === "bool") input.checked = Boolean(value);
    else input.value = value ?? "";
  }
  for (const box of document.querySelectorAll('input[name="split"]')) {
    box.checked = graph.dataset.splits.includes(box.value);
  }
  inputSize.placeholder = `${defaultSize(graph.model.arch)} (default)`;
  nameInput.value = current.name;
  document.getElementById("wf-version").textContent = `version ${current.version}`;
}

function readForm() {
  for (const input of fields()) {
    const [block, key] = input.dataset.field.split(".");
    graph[block][key] = readValue(input);
  }
  graph.dataset.splits = [...document.querySelectorAll('input[name="split"]:checked')].map((b) => b.value);
  inputSize.placeholder = `${defaultSize(graph.model.arch)} (default)`;
}

function renderList() {
  const list = document.getElementById("workflow-list");
  list.replaceChildren(...workflows.map((w) => el("li", {},
    el("a", { href: `?workflow=${w.id}`, class: current && w.id === current.id ? "active" : "",
              onclick: (e) => { e.preventDefault(); select(w.id); } },
      w.name, " ", el("span", { class: "muted" }, `v${w.version}`)))));
  document.getElementById("no-workflows").hidden = workflows.length > 0;
  builder.hidden = !current;
}

function select(id) {
  if (dirty && current && !confirm("Discard unsaved changes to this workflow?")) return;
  current = workflows.find((w) => w.id === id) || null;
  if (!current) { renderList(); return; }
  graph = structuredClone(current.graph);
  dirty = false;
  history.replaceState(null, "", `?workflow=${id}`);
  writeForm();
  renderList();
  scheduleCheck(0);
}

function changed() {
  dirty = true;
  readForm();
  scheduleCheck(300);
}

function scheduleCheck(delay) {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(runCheck, delay);
}

function duration(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

async function runCheck() {
  const seq = ++checkSeq;
  clearError(errorBox);
  let result;
  try {
    result = await api("POST", `${base}/check`, graph);
  } catch (error) {
    if (seq === checkSeq) showError(errorBox, error);
    return;
  }
  if (seq !== checkSeq) return; // a newer check is on its way
  renderTags(result.tags);
  const parts = [`${result.labeled_images} labeled images: ${result.train_images} train / ${result.val_images} validation`];
  if (result.estimated_steps) {
    const perEpoch = result.steps_per_epoch ? ` (${result.steps_per_epoch} per epoch)` : "";
    parts.push(`${result.estimated_steps} steps${perEpoch}`);
  }
  if (result.estimated_seconds) {
    parts.push(`about ${duration(result.estimated_seconds)} at the measured ${result.measured_images_per_second.toFixed(1)} images/s`);
  } else {
    parts.push("duration: estimated once a run of this backbone has finished here");
  }
  document.getElementById("wf-summary").textContent = parts.join(" · ");
  const list = (id, items) => document.getElementById(id).replaceChildren(...items.map((t) => el("li", {}, t)));
  list("wf-errors", result.errors);
  list("wf-warnings", result.warnings);
  document.getElementById("start-run").disabled = result.errors.length > 0;
}

function renderTags(tags) {
  const selected = new Set(graph.dataset.tag_ids);
  const boxes = document.getElementById("tag-boxes");
  if (!tags.length) {
    boxes.replaceChildren(el("span", { class: "muted" }, "This project has no tags yet."));
    return;
  }
  boxes.replaceChildren(...tags.map((tag) => {
    const box = el("input", { type: "checkbox", value: tag.id, checked: selected.has(tag.id),
                              "aria-label": `Train on ${tag.name}` });
    box.addEventListener("change", () => {
      const ids = new Set(graph.dataset.tag_ids);
      if (box.checked) ids.add(tag.id); else ids.delete(tag.id);
      graph.dataset.tag_ids = tags.filter((t) => ids.has(t.id)).map((t) => t.id);
      changed();
    });
    const counts = selected.has(tag.id) ? ` ${tag.train_positives}/${tag.val_positives}` : "";
    return el("label", { class: "check", title: "positives (train/validation)" }, box,
      el("span", { class: "chip" }, el("span", { class: "swatch", style: `background:${tag.color}` }), tag.name),
      el("span", { class: `count ${tag.positives === 0 ? "zero" : ""}` }, `${tag.positives}${counts ? " ·" + counts : ""}`));
  }));
}

async function save() {
  clearError(errorBox);
  const body = { name: nameInput.value.trim() || "Workflow", graph };
  const saved = await api("PUT", `${base}/${current.id}`, body);
  workflows = [saved, ...workflows.filter((w) => w.id !== saved.id)];
  current = saved;
  graph = structuredClone(saved.graph);
  dirty = false;
  writeForm();
  renderList();
  return saved;
}

async function createWorkflow() {
  clearError(errorBox);
  try {
    const created = await api("POST", base, { name: `Workflow ${workflows.length + 1}` });
    workflows = [created, ...workflows];
    dirty = false;
    select(created.id);
  } catch (error) {
    showError(errorBox, error);
  }
}

document.getElementById("save-workflow").addEventListener("click", async () => {
  try {
    const saved = await save();
    toast(`Saved “${saved.name}” as version ${saved.version}`, "success");
  } catch (error) {
    showError(errorBox, error);
  }
});

document.getElementById("start-run").addEventListener("click", async (event) => {
  const button = event.currentTarget;
  button.disabled = true;
  try {
    if (dirty || nameInput.value.trim() !== current.name) await save();
    const run = await api("POST", `/projects/${projectId}/runs`, { workflow_id: current.id });
    window.location.href = `/projects/${projectId}/runs/${run.id}`;
  } catch (error) {
    showError(errorBox, error);
    button.disabled = false;
  }
});

document.getElementById("preview-augmentations").addEventListener("click", async () => {
  clearError(errorBox);
  const size = Math.min(graph.model.input_size || defaultSize(graph.model.arch), 192);
  try {
    const response = await api("POST", `${base}/augmentation-preview`,
      { augmentations: graph.augmentations, input_size: size, images: 3, variants: 4,
        seed: Math.floor(Math.random() * 1e6) }, { raw: true });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.detail || `preview failed (HTTP ${response.status})`);
    }
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.src = URL.createObjectURL(await response.blob());
    preview.hidden = false;
  } catch (error) {
    showError(errorBox, error);
  }
});

document.getElementById("new-workflow").addEventListener("click", createWorkflow);
document.getElementById("create-first").addEventListener("click", createWorkflow);
for (const input of document.querySelectorAll("#builder input, #builder select")) {
  if (input === nameInput) continue;
  // "input" follows typing (debounced by the check); "change" covers selects and checkboxes.
  input.addEventListener("input", changed);
  input.addEventListener("change", changed);
}
nameInput.addEventListener("input", () => { dirty = true; });
window.addEventListener("beforeunload", (event) => { if (dirty) event.preventDefault(); });

if (data.selected) select(data.selected); else renderList();
