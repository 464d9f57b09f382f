// Evaluation page: every threshold change recomputes tables, curves' markers, the predictions
// browser and co-occurrence in the browser from the stored score matrices; "Save" stores them.
import { api, el, toast, showError, clearError } from "./api.js";
import { decodeMatrix, computeMetrics, truthCooccurrence } from "./evaluation_metrics.js";
import { lineChart, nearestPoint, heatmap } from "./eval_charts.js";

const root = document.getElementById("evaluation");
const projectId = root.dataset.projectId;
const runId = root.dataset.runId;
const checkpoint = root.dataset.checkpoint;
const base = `/projects/${projectId}/runs/${runId}/evaluation`;
const $ = (id) => document.getElementById(id);
const PAGE = 48;

let tags = [];
let thresholds = [];
let optimized = [];
let mode = "optimized";
let dirty = false;
let browserLimit = PAGE;
const splits = {}; // name -> { data, server, metrics, truthCooc }

const fmt = (value, digits = 3) => (value === null || value === undefined || Number.isNaN(value) ? "—" : Number(value).toFixed(digits));
const shown = (t) => String(Number(Number(t).toFixed(4)));

function splitNames() {
  return ["val", "train"].filter((name) => splits[name]);
}

function recompute() {
  for (const split of Object.values(splits)) split.metrics = computeMetrics(split.data, thresholds);
  renderAll();
}

function setThreshold(index, value) {
  const number = Math.min(1, Math.max(0, Number(value)));
  if (!Number.isFinite(number)) return;
  thresholds[index] = number;
  markCustom();
  recompute();
}

function setAll(value) {
  const number = Math.min(1, Math.max(0, Number(value)));
  if (!Number.isFinite(number)) return;
  thresholds = thresholds.map(() => number);
  markCustom();
  recompute();
}

function markCustom() {
  mode = "custom";
  dirty = true;
  $("mode-custom").checked = true;
}

function renderState() {
  $("threshold-state").textContent = dirty ? "unsaved changes" : (mode === "optimized" ? "optimised, saved" : "custom, saved");
}

// ---- tables -------------------------------------------------------------------------------
function renderSummary() {
  const tbody = $("summary-table").querySelector("tbody");
  tbody.replaceChildren();
  for (const name of splitNames()) {
    const { metrics, server, data } = splits[name];
    const s = metrics.summary;
    tbody.append(el("tr", { dataset: { split: name } },
      el("td", {}, name === "val" ? "validation" : "train"),
      el("td", { class: "num" }, data.n),
      el("td", { class: "num" }, fmt(s.label_cardinality, 2)),
      el("td", { class: "num", dataset: { metric: "subset_accuracy" } }, fmt(s.subset_accuracy)),
      el("td", { class: "num", dataset: { metric: "micro_precision" } }, fmt(s.micro_precision)),
      el("td", { class: "num", dataset: { metric: "micro_recall" } }, fmt(s.micro_recall)),
      el("td", { class: "num", dataset: { metric: "micro_f1" } }, fmt(s.micro_f1)),
      el("td", { class: "num", dataset: { metric: "macro_precision" } }, fmt(s.macro_precision)),
      el("td", { class: "num", dataset: { metric: "macro_recall" } }, fmt(s.macro_recall)),
      el("td", { class: "num", dataset: { metric: "macro_f1" } }, fmt(s.macro_f1)),
      el("td", { class: "num" }, fmt(server.summary?.map)),
      el("td", { class: "num", dataset: { metric: "jaccard" } }, fmt(s.jaccard)),
      el("td", { class: "num", dataset: { metric: "hamming_loss" } }, fmt(s.hamming_loss)),
    ));
  }
}

const tagRows = [];

function buildTagTable() {
  const tbody = $("tag-table").querySelector("tbody");
  tbody.replaceChildren();
  tags.forEach((tag, index) => {
    const number = el("input", { type: "number", min: 0, max: 1, step: 0.001, class: "threshold-input", "aria-label": `Threshold of ${tag.name}` });
    const slider = el("input", { type: "range", min: 0, max: 1, step: 0.001, class: "threshold-slider", "aria-label": `Threshold slider of ${tag.name}` });
    number.addEventListener("change", () => setThreshold(index, number.value));
    slider.addEventListener("input", () => setThreshold(index, slider.value));
    const cells = {
      support: el("td", { class: "num" }), precision: el("td", { class: "num", dataset: { metric: "precision" } }),
      recall: el("td", { class: "num", dataset: { metric: "recall" } }), f1: el("td", { class: "num", dataset: { metric: "f1" } }),
      ap: el("td", { class: "num" }), auc: el("td", { class: "num" }), confusion: el("td", { class: "confusion-cell" }),
    };
    const row = el("tr", { dataset: { tagId: tag.id } },
      el("td", {}, el("span", { class: "chip" }, el("span", { class: "swatch", style: `background:${tag.color}` }), tag.name)),
      cells.support, el("td", { class: "threshold-cell" }, number, slider), cells.precision, cells.recall, cells.f1,
      cells.ap, cells.auc, cells.confusion);
    tbody.append(row);
    tagRows.push({ number, slider, cells });
  });
}

function renderTagTable() {
  const name = splits[$("table-split").value] ? $("table-split").value : splitNames()[0];
  const { metrics, server } = splits[name];
  tagRows.forEach((row, index) => {
    const label = metrics.perLabel[index];
    const serverLabel = server.per_label?.[index] || {};
    if (document.activeElement !== row.number) row.number.value = shown(thresholds[index]);
    if (document.activeElement !== row.slider) row.slider.value = thresholds[index];
    row.cells.support.textContent = label.tp + label.fn;
    row.cells.precision.textContent = fmt(label.precision);
    row.cells.recall.textContent = fmt(label.recall);
    row.cells.f1.textContent = fmt(label.f1);
    row.cells.ap.textContent = fmt(serverLabel.ap);
    row.cells.auc.textContent = fmt(serverLabel.roc_auc);
    row.cells.confusion.textContent = `${label.tp} ${label.fp} / ${label.fn} ${label.tn}`;
  });
}

// ---- curves -------------------------------------------------------------------------------
function renderCurves() {
  const name = splits[$("curve-split").value] ? $("curve-split").value : splitNames()[0];
  const split = splits[name];
  const choice = $("curve-tag").value;
  const curves = split.server.curves;
  const sweep = split.server.sweep;
  if (!curves) {
    for (const id of ["pr-chart", "roc-chart", "sweep-chart", "confusion"]) $(id).textContent = "No images in this split.";
    return;
  }
  const all = choice === "all";
  const index = all ? -1 : Number(choice);
  const summary = split.metrics.summary;
  const label = all ? null : split.metrics.perLabel[index];
  const pr = all ? curves.micro_pr : curves.per_label[index].pr;
  lineChart($("pr-chart"), {
    series: [{ x: pr.recall, y: pr.precision, color: all ? "#3e63dd" : tags[index].color }],
    marker: all ? { x: summary.micro_recall, y: summary.micro_precision } : { x: label.recall, y: label.precision },
    xLabel: "recall", yLabel: "precision",
    onPick: (pick) => {
      const point = nearestPoint(pr, "recall", "precision", pick);
      if (!point) return;
      if (all) setAll(point.threshold); else setThreshold(index, point.threshold);
    },
  });
  if (all) {
    $("roc-chart").replaceChildren(el("p", { class: "muted" }, "Pick a tag to see its ROC curve."));
  } else {
    const roc = curves.per_label[index].roc;
    const negatives = label.fp + label.tn, positives = label.tp + label.fn;
    lineChart($("roc-chart"), {
      series: [{ x: roc.fpr, y: roc.tpr, color: tags[index].color }],
      marker: { x: negatives ? label.fp / negatives : NaN, y: positives ? label.tp / positives : NaN },
      xLabel: "false positive rate", yLabel: "true positive rate",
    });
  }
  const grid = sweep.thresholds;
  const series = all
    ? [{ x: grid, y: sweep.f1, color: "#3e63dd", label: "F1" }, { x: grid, y: sweep.precision, color: "#30a46c", label: "precision" },
       { x: grid, y: sweep.recall, color: "#e5484d", label: "recall" }, { x: grid, y: sweep.jaccard, color: "#f5a524", label: "Jaccard" }]
    : [{ x: grid, y: sweep.per_label.f1[index], color: "#3e63dd", label: "F1" },
       { x: grid, y: sweep.per_label.precision[index], color: "#30a46c", label: "precision" },
       { x: grid, y: sweep.per_label.recall[index], color: "#e5484d", label: "recall" }];
  lineChart($("sweep-chart"), {
    series, vline: all ? null : thresholds[index], xLabel: "threshold", yLabel: "metric",
    onPick: (pick) => {
      const value = Math.round(Math.min(1, Math.max(0, pick.x)) * 100) / 100;
      if (all) setAll(value); else setThreshold(index, value);
    },
  });
  const counts = all
    ? split.metrics.perLabel.reduce((c, l) => ({ tp: c.tp + l.tp, fp: c.fp + l.fp, fn: c.fn + l.fn, tn: c.tn + l.tn }), { tp: 0, fp: 0, fn: 0, tn: 0 })
    : label;
  $("confusion").replaceChildren(el("table", { class: "confusion" },
    el("thead", {}, el("tr", {}, el("th"), el("th", {}, "predicted"), el("th", {}, "not predicted"))),
    el("tbody", {},
      el("tr", {}, el("th", {}, "in truth"), el("td", { class: "tp" }, counts.tp), el("td", { class: "fn" }, counts.fn)),
      el("tr", {}, el("th", {}, "not in truth"), el("td", { class: "fp" }, counts.fp), el("td", { class: "tn" }, counts.tn)))));
}

// ---- predictions browser ------------------------------------------------------------------
function matches(split, image, filter, tagChoice) {
  const { data, metrics } = split;
  const k = data.k;
  const tag = tagChoice === "all" ? -1 : Number(tagChoice);
  const at = (j) => image * k + j;
  const right = (j) => metrics.predicted[at(j)] === data.truth[at(j)];
  const above = (j) => metrics.predicted[at(j)] === 1;
  switch (filter) {
    case "correct": return tag < 0 ? metrics.imageCorrect[image] === 1 : right(tag);
    case "incorrect": return tag < 0 ? metrics.imageCorrect[image] === 0 : !right(tag);
    case "above": return tag < 0 ? tags.some((_, j) => above(j)) : above(tag);
    case "below": return tag < 0 ? tags.every((_, j) => !above(j)) : !above(tag);
    default: return true;
  }
}

function imageCard(split, image) {
  const { data, metrics } = split;
  const k = data.k;
  const assetId = data.assetIds[image];
  const order = tags.map((_, j) => j).sort((a, b) => data.scores[image * k + b] - data.scores[image * k + a]);
  const chips = order.map((j) => {
    const inTruth = data.truth[image * k + j] === 1;
    const predicted = metrics.predicted[image * k + j] === 1;
    return el("span", {
      class: `chip ${inTruth ? "truth" : "other"}${predicted ? " predicted" : ""}`,
      title: `${tags[j].name}: score ${data.scores[image * k + j].toFixed(4)}, threshold ${shown(thresholds[j])}`,
      dataset: { tagId: tags[j].id },
    }, `${tags[j].name} ${data.scores[image * k + j].toFixed(2)}`);
  });
  const correct = metrics.imageCorrect[image] === 1;
  return el("figure", { class: `shot ${correct ? "correct" : "incorrect"}`, dataset: { assetId } },
    el("img", { src: `/api/v1/projects/${projectId}/assets/${assetId}/thumb`, alt: `image ${assetId}`, loading: "lazy" }),
    el("figcaption", {}, chips));
}

function renderBrowser() {
  const name = splits[$("browser-split").value] ? $("browser-split").value : splitNames()[0];
  const split = splits[name];
  const filter = $("browser-filter").value;
  const tagChoice = $("browser-tag").value;
  const picked = [];
  for (let image = 0; image < split.data.n; image++) {
    if (matches(split, image, filter, tagChoice)) picked.push(image);
  }
  $("browser-count").textContent = `${picked.length} of ${split.data.n} images`;
  $("browser-grid").replaceChildren(...picked.slice(0, browserLimit).map((image) => imageCard(split, image)));
  $("browser-more").hidden = picked.length <= browserLimit;
}

// ---- co-occurrence ------------------------------------------------------------------------
function renderCooccurrence() {
  const name = splits[$("cooc-split").value] ? $("cooc-split").value : splitNames()[0];
  const split = splits[name];
  const names = tags.map((t) => t.name);
  const truth = split.truthCooc;
  const predicted = split.metrics.cooccurrence;
  const difference = predicted.map((row, i) => row.map((v, j) => v - truth[i][j]));
  heatmap($("cooc-truth"), { names, matrix: truth, title: "ground truth co-occurrence" });
  heatmap($("cooc-pred"), { names, matrix: predicted, title: "predicted co-occurrence" });
  heatmap($("cooc-diff"), { names, matrix: difference, diverging: true, title: "difference" });
}

function renderAll() {
  renderState();
  renderSummary();
  renderTagTable();
  renderCurves();
  renderBrowser();
  renderCooccurrence();
}

// ---- compare best vs last -----------------------------------------------------------------
const COMPARED = [["micro_f1", "Micro F1"], ["macro_f1", "Macro F1"], ["map", "mAP"], ["micro_precision", "Micro precision"],
  ["micro_recall", "Micro recall"], ["jaccard", "Jaccard"], ["subset_accuracy", "Subset accuracy"], ["hamming_loss", "Hamming loss"]];

async function loadCompare(polls = 0) {
  const body = $("compare-body");
  let result;
  try {
    result = await api("GET", `${base}/compare`);
  } catch (error) {
    showError(body, error);
    return;
  }
  const columns = [];
  for (const kind of ["best", "last"]) {
    for (const split of ["val", "train"]) {
      if (result[kind].available && result[kind].splits[split]) columns.push([kind, split]);
    }
  }
  const parts = [];
  if (columns.length) {
    parts.push(el("table", { class: "table", id: "compare-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Metric"), ...columns.map(([kind, split]) =>
        el("th", { class: "num" }, `${kind} (step ${result[kind].checkpoint.step}) · ${split === "val" ? "validation" : "train"}`)))),
      el("tbody", {}, ...COMPARED.map(([key, title]) => el("tr", {}, el("td", {}, title),
        ...columns.map(([kind, split]) => el("td", { class: "num" }, fmt(result[kind].splits[split][key]))))))));
  }
  if (!result.last.available) {
    if (result.last.has_checkpoint) {
      const button = el("button", { type: "button", id: "score-last" }, "Score the last checkpoint");
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          await api("POST", `${base}/score`, { checkpoint: "last" });
          toast("Scoring the last checkpoint…");
          setTimeout(() => loadCompare(1), 3000);
        } catch (error) {
          button.disabled = false;
          toast(error.message, "error");
        }
      });
      parts.push(el("p", { class: "muted" }, "The last checkpoint has no scores yet. ", button));
      if (polls > 0 && polls < 100) setTimeout(() => loadCompare(polls + 1), 3000);
    } else {
      parts.push(el("p", { class: "muted" }, "This run has no last checkpoint."));
    }
  }
  body.classList.remove("muted");
  body.replaceChildren(...parts);
}

// ---- thresholds: modes and saving ---------------------------------------------------------
$("mode-optimized").addEventListener("change", () => {
  thresholds = optimized.slice();
  mode = "optimized";
  dirty = true;
  recompute();
});
$("mode-custom").addEventListener("change", () => { mode = "custom"; dirty = true; renderState(); });
$("set-all").addEventListener("click", () => setAll($("set-all-value").value));
$("save-thresholds").addEventListener("click", async () => {
  clearError($("threshold-error"));
  const body = mode === "optimized"
    ? { checkpoint, mode: "optimized" }
    : { checkpoint, mode: "custom", values: Object.fromEntries(tags.map((t, i) => [String(t.id), thresholds[i]])) };
  try {
    const saved = await api("PUT", `${base}/thresholds`, body);
    thresholds = saved.thresholds.values.slice();
    optimized = saved.thresholds.optimized.slice();
    dirty = false;
    recompute();
    toast("Thresholds saved", "success");
    loadCompare();
  } catch (error) {
    showError($("threshold-error"), error);
  }
});
for (const id of ["table-split"]) $(id).addEventListener("change", renderTagTable);
for (const id of ["curve-tag", "curve-split"]) $(id).addEventListener("change", renderCurves);
for (const id of ["browser-split", "browser-filter", "browser-tag"]) {
  $(id).addEventListener("change", () => { browserLimit = PAGE; renderBrowser(); });
}
$("browser-more").addEventListener("click", () => { browserLimit += PAGE; renderBrowser(); });
$("cooc-split").addEventListener("change", renderCooccurrence);

async function load() {
  let report;
  try {
    report = await api("GET", `${base}?checkpoint=${checkpoint}&scores=true&curves=true`);
  } catch (error) {
    $("loading").hidden = true;
    showError($("page-error"), error);
    loadCompareOnly();
    return;
  }
  tags = report.tags;
  thresholds = report.thresholds.values.slice();
  optimized = report.thresholds.optimized.slice();
  mode = report.thresholds.mode;
  $(mode === "optimized" ? "mode-optimized" : "mode-custom").checked = true;
  for (const [name, server] of Object.entries(report.splits)) {
    if (!server.matrix) continue;
    const data = decodeMatrix(server.matrix);
    splits[name] = { data, server, truthCooc: truthCooccurrence(data) };
  }
  const tagOptions = () => tags.map((t, i) => el("option", { value: i }, t.name));
  $("curve-tag").replaceChildren(el("option", { value: "all" }, "All tags (micro)"), ...tagOptions());
  $("browser-tag").replaceChildren(el("option", { value: "all" }, "all tags"), ...tagOptions());
  for (const id of ["table-split", "curve-split", "browser-split", "cooc-split"]) {
    for (const option of $(id).options) option.disabled = !splits[option.value];
    if (!splits[$(id).value]) $(id).value = splitNames()[0];
  }
  buildTagTable();
  $("loading").hidden = true;
  $("content").hidden = false;
  recompute();
  loadCompare();
}

function loadCompareOnly() {
  $("content").hidden = false;
  for (const card of document.querySelectorAll("#content > section:not(#compare)")) card.hidden = true;
  loadCompare();
}

load();
