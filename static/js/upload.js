// Upload page: files, folders (picker or drop) and zips go up in batches with a progress bar
// each; per-file results with duplicates and rejection reasons; thumbnails of what went in.
// The "Import labels" section stages a label file, shows its preview and confirms it.
import { api, el, toast, showError, clearError } from "./api.js";

const config = JSON.parse(document.getElementById("upload-config").textContent);
const projectId = config.project_id;
const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

// Requests stay well under the server's limits and give the progress bars something to show.
const BATCH_FILES = 40;
const BATCH_BYTES = 32 * 1024 * 1024;
const JUNK = new Set([".DS_Store", "Thumbs.db", "desktop.ini"]);

const uploadError = document.getElementById("upload-error");
const batchesCard = document.getElementById("batches-card");
const batchList = document.getElementById("batches");
const resultsCard = document.getElementById("results-card");
const resultRows = document.querySelector("#results tbody");
const thumbs = document.getElementById("thumbs");
const totalsLine = document.getElementById("totals");
const onlyProblems = document.getElementById("only-problems");
const totals = { created: 0, duplicate: 0, rejected: 0 };
const queue = [];
let busy = false;

function formatBytes(count) {
  if (count < 1024) return `${count} bytes`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = count;
  let unit = "";
  for (unit of units) {
    value /= 1024;
    if (value < 1024) break;
  }
  return `${value.toFixed(1).replace(/\.0$/, "")} ${unit}`;
}

// --- batch tags ---------------------------------------------------------------------------
const tagList = document.getElementById("batch-tag-list");
for (const tag of config.tags) {
  tagList.append(el("label", { class: "chip" },
    el("input", { type: "checkbox", value: tag.id, "data-group": tag.group ?? "" }),
    el("span", { class: "swatch", style: `background:${tag.color}` }),
    tag.name + (tag.group ? ` (${tag.group})` : "")));
}
document.getElementById("no-tags").hidden = config.tags.length > 0;
tagList.addEventListener("change", (event) => {
  // Tags of one group exclude each other: picking one unpicks the others.
  const box = event.target;
  if (!box.checked || !box.dataset.group) return;
  for (const other of tagList.querySelectorAll("input:checked")) {
    if (other !== box && other.dataset.group === box.dataset.group) other.checked = false;
  }
});
function chosenTagIds() {
  return [...tagList.querySelectorAll("input:checked")].map((box) => box.value);
}

// --- collecting files ---------------------------------------------------------------------
function pathOf(file) {
  return file.relativePath || file.webkitRelativePath || file.name;
}
function isZip(file) {
  return /\.zip$/i.test(file.name) || file.type === "application/zip";
}
function isJunk(file) {
  return JUNK.has(file.name) || file.name.startsWith("._") || pathOf(file).includes("__MACOSX/");
}

async function readAllEntries(reader) {
  const entries = [];
  for (;;) {
    const chunk = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!chunk.length) return entries;
    entries.push(...chunk);
  }
}

async function filesOfEntry(entry, prefix) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    file.relativePath = prefix + file.name;
    return [file];
  }
  const children = await readAllEntries(entry.createReader());
  const nested = await Promise.all(children.map((child) => filesOfEntry(child, `${prefix}${entry.name}/`)));
  return nested.flat();
}

async function filesOfDrop(dataTransfer) {
  const entries = [...dataTransfer.items]
    .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null))
    .filter(Boolean);
  if (!entries.length) return [...dataTransfer.files];
  const nested = await Promise.all(entries.map((entry) => filesOfEntry(entry, "")));
  return nested.flat();
}

// --- batches ------------------------------------------------------------------------------
function makeBatches(files) {
  const batches = [];
  let current = [];
  let bytes = 0;
  for (const file of files) {
    if (isZip(file)) {  // an archive travels alone: it may be large
      batches.push([file]);
      continue;
    }
    if (current.length && (current.length >= BATCH_FILES || bytes + file.size > BATCH_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(file);
    bytes += file.size;
  }
  if (current.length) batches.push(current);
  return batches;
}

function addFiles(files) {
  clearError(uploadError);
  const wanted = files.filter((file) => !isJunk(file));
  if (!wanted.length) {
    showError(uploadError, "No files to upload.");
    return;
  }
  const tagIds = chosenTagIds();
  // Oversized files are refused here, saving the upload; the server would refuse them too.
  const tooBig = wanted.filter((file) => file.size > (isZip(file) ? config.max_zip_bytes : config.max_upload_bytes));
  const sendable = wanted.filter((file) => !tooBig.includes(file));
  if (tooBig.length) {
    showResults(tooBig.map((file) => ({
      filename: pathOf(file), archive: null, status: "rejected", asset_id: null, thumb_url: null,
      reason: `file is larger than the upload limit of ${formatBytes(isZip(file) ? config.max_zip_bytes : config.max_upload_bytes)}`,
    })));
  }
  for (const files of makeBatches(sendable)) queue.push({ files, tagIds, view: batchView(files) });
  pump();
}

function batchView(files) {
  const bytes = files.reduce((sum, file) => sum + file.size, 0);
  const label = files.length === 1 ? pathOf(files[0]) : `${files.length} files`;
  const bar = el("div", { style: "width:0%" });
  const status = el("span", { class: "batch-status muted" }, "waiting…");
  const item = el("li", { class: "batch" },
    el("span", { title: files.map(pathOf).join("\n") }, `${label} · ${formatBytes(bytes)}`),
    el("div", { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100 }, bar),
    status);
  batchList.append(item);
  batchesCard.hidden = false;
  return { item, bar, status };
}

function send(batch) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const id of batch.tagIds) form.append("tag_ids", id);
    for (const file of batch.files) form.append("files", file, pathOf(file));
    const request = new XMLHttpRequest();
    request.open("POST", `/api/v1/projects/${projectId}/assets`);
    request.setRequestHeader("X-CSRF-Token", csrf);
    request.setRequestHeader("Accept", "application/json");
    request.upload.onprogress = (event) => {
      if (!event.lengthComputable) return;
      const percent = Math.round((event.loaded / event.total) * 100);
      batch.view.bar.style.width = `${percent}%`;
      batch.view.item.querySelector(".progress").setAttribute("aria-valuenow", percent);
      batch.view.status.textContent = percent < 100 ? `uploading ${percent}%` : "processing…";
    };
    request.onload = () => {
      let body = null;
      try { body = JSON.parse(request.responseText); } catch { /* not JSON */ }
      if (request.status >= 200 && request.status < 300) resolve(body);
      else reject(new Error(body?.detail || `upload failed (HTTP ${request.status})`));
    };
    request.onerror = () => reject(new Error("network error: the upload did not reach the server"));
    request.send(form);
  });
}

async function pump() {
  if (busy) return;
  busy = true;
  while (queue.length) {
    const batch = queue.shift();
    batch.view.status.textContent = "uploading…";
    try {
      const body = await send(batch);
      batch.view.bar.style.width = "100%";
      batch.view.item.classList.add("done");
      batch.view.status.textContent = `${body.created} new · ${body.duplicates} duplicate · ${body.rejected} rejected`;
      showResults(body.results);
    } catch (error) {
      batch.view.item.classList.add("failed");
      batch.view.bar.style.width = "100%";
      batch.view.status.textContent = error.message;
      showResults(batch.files.map((file) => ({
        filename: pathOf(file), archive: null, status: "rejected", asset_id: null,
        thumb_url: null, reason: error.message,
      })));
    }
  }
  busy = false;
  toast(`Done: ${totals.created} new, ${totals.duplicate} duplicates, ${totals.rejected} rejected`, "success");
}

// --- results ------------------------------------------------------------------------------
const STATUS_TEXT = { created: "added", duplicate: "duplicate", rejected: "rejected" };

function showResults(results) {
  resultsCard.hidden = false;
  for (const result of results) {
    totals[result.status] += 1;
    const name = result.archive ? `${result.archive} › ${result.filename}` : result.filename;
    let details = result.reason ?? "";
    if (result.status === "duplicate") details = `already in the project as image ${result.asset_id}`;
    const row = el("tr", { class: `result-${result.status}`, dataset: { status: result.status } },
      el("td", {}, name),
      el("td", { class: `status-${result.status}` }, STATUS_TEXT[result.status]),
      el("td", {}, details));
    row.hidden = onlyProblems.checked && result.status === "created";
    resultRows.append(row);
    if (result.thumb_url) {
      thumbs.append(el("figure", { class: result.status, title: `${name} (${STATUS_TEXT[result.status]})` },
        el("img", { src: result.thumb_url, alt: name, loading: "lazy" }),
        el("figcaption", {}, result.filename.split("/").pop())));
    }
  }
  totalsLine.textContent = `${totals.created} added · ${totals.duplicate} duplicates · ${totals.rejected} rejected`;
}

onlyProblems.addEventListener("change", () => {
  for (const row of resultRows.querySelectorAll("tr")) {
    row.hidden = onlyProblems.checked && row.dataset.status === "created";
  }
});

// --- inputs and drop zone -----------------------------------------------------------------
for (const id of ["file-input", "folder-input"]) {
  const input = document.getElementById(id);
  input.addEventListener("change", () => {
    addFiles([...input.files]);
    input.value = "";
  });
}
const dropzone = document.getElementById("dropzone");
dropzone.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropzone.classList.add("over");
});
dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
dropzone.addEventListener("drop", async (event) => {
  event.preventDefault();
  dropzone.classList.remove("over");
  try {
    addFiles(await filesOfDrop(event.dataTransfer));
  } catch (error) {
    showError(uploadError, error);
  }
});

// --- label import -------------------------------------------------------------------------
const importForm = document.getElementById("import-form");
const importError = document.getElementById("import-error");
const previewBox = document.getElementById("import-preview");
const importResult = document.getElementById("import-result");
const categoryBox = document.getElementById("coco-categories");
const categoryList = document.getElementById("coco-category-list");
let preview = null;

function chosenCategories() {
  if (categoryBox.hidden) return null;
  return [...categoryList.querySelectorAll("input:checked")].map((box) => box.value);
}

function section(title, items, render) {
  if (!items.length) return [];
  return [el("h3", {}, title), el("ul", {}, items.map((item) => el("li", {}, render(item))))];
}

function renderPreview(data) {
  preview = data;
  previewBox.hidden = false;
  importResult.hidden = true;
  const parts = [`${data.rows} rows`, `${data.matched_count} images matched`];
  if (data.format !== "index_zip") parts.push(`${data.unmatched_count} file names not found`);
  else parts.push(`${data.unlisted_images_count} images in the archive without labels`);
  parts.push(`${data.new_tags.length} new tags`, `${data.errors.length} rows with errors`);
  document.getElementById("import-summary").textContent = `${data.filename}: ${parts.join(" · ")}`;
  categoryBox.hidden = data.categories.length === 0;
  if (data.categories.length) {
    const selected = data.selected_categories ? new Set(data.selected_categories) : null;
    categoryList.replaceChildren(...data.categories.map((category) => el("label", { class: "chip" },
      el("input", { type: "checkbox", value: category.name, checked: !selected || selected.has(category.name) }),
      `${category.name} (${category.image_count})`)));
  }
  document.getElementById("import-new-tags").replaceChildren(
    ...(data.new_tags.length ? [el("h3", {}, "New tags that will be created"),
      el("div", { class: "row" }, data.new_tags.map((name) => el("span", { class: "chip" }, name)))] : []));
  document.getElementById("import-errors").replaceChildren(
    ...section("Rows with errors (fix the file, then upload it again)", data.errors,
      (error) => [el("strong", {}, error.row ? `row ${error.row}: ` : ""), error.message]));
  document.getElementById("import-warnings").replaceChildren(
    ...section("Warnings", data.warnings, (warning) => (warning.row ? `row ${warning.row}: ` : "") + warning.message));
  document.getElementById("import-unmatched").replaceChildren(
    ...section("File names with no image in this project (skipped)", data.unmatched, (name) => name));
  document.querySelector("#import-rows tbody").replaceChildren(...data.matched.map((row) => el("tr", {},
    el("td", { class: "num" }, row.row),
    el("td", {}, row.filename),
    el("td", {}, row.labels.length ? row.labels.join(", ") : el("span", { class: "muted" }, "none apply")),
    el("td", {}, row.split ?? ""))));
  document.getElementById("import-confirm").disabled = !data.can_confirm;
}

importForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearError(importError);
  const button = document.getElementById("import-preview-button");
  button.disabled = true;
  try {
    const form = new FormData(importForm);
    renderPreview(await api("POST", `/projects/${projectId}/label-imports`, form));
  } catch (error) {
    previewBox.hidden = true;
    showError(importError, error);
  } finally {
    button.disabled = false;
  }
});

document.getElementById("coco-apply").addEventListener("click", async () => {
  clearError(importError);
  try {
    renderPreview(await api("POST", `/projects/${projectId}/label-imports/${preview.import_id}/preview`,
      { categories: chosenCategories() }));
  } catch (error) {
    showError(importError, error);
  }
});
document.getElementById("coco-all").addEventListener("click", () => {
  for (const box of categoryList.querySelectorAll("input")) box.checked = true;
});
document.getElementById("coco-none").addEventListener("click", () => {
  for (const box of categoryList.querySelectorAll("input")) box.checked = false;
});

document.getElementById("import-confirm").addEventListener("click", async (event) => {
  clearError(importError);
  event.target.disabled = true;
  try {
    const result = await api("POST", `/projects/${projectId}/label-imports/${preview.import_id}/confirm`,
      { categories: chosenCategories() });
    previewBox.hidden = true;
    importForm.reset();
    const images = result.images_created ? `${result.images_created} images added, ` : "";
    importResult.textContent = `Imported: ${images}${result.labeled} images labeled, ` +
      `${result.annotations} tags set, ${result.tags_created.length} new tags.`;
    importResult.hidden = false;
    toast("Labels imported", "success");
  } catch (error) {
    showError(importError, error);
    event.target.disabled = false;
  }
});

document.getElementById("import-discard").addEventListener("click", async () => {
  clearError(importError);
  try {
    await api("DELETE", `/projects/${projectId}/label-imports/${preview.import_id}`);
  } catch (error) {
    showError(importError, error);
  }
  previewBox.hidden = true;
  preview = null;
});
