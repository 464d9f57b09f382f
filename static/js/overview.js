// Project overview charts: positives per tag, labels-per-image histogram and the ground-truth
// co-occurrence heatmap (counts on hover, optional row normalisation P(column | row)).
import { api, el, showError } from "./api.js";

const overview = document.getElementById("overview");
let stats = null;
const number = (n) => n.toLocaleString("en-US");
const percent = (p) => `${(100 * p).toFixed(p > 0 && p < 0.1 ? 1 : 0)}%`;

function renderTagBars() {
  const list = document.getElementById("tag-bars");
  if (!list) return;
  const top = Math.max(1, ...stats.tags.map((t) => t.positives));
  list.replaceChildren(
    ...stats.tags.map((tag) =>
      el("li", { class: "bar-row", dataset: { tagId: tag.id } },
        el("span", { class: "bar-label", title: tag.name }, tag.name),
        el("span", { class: "bar-track" },
          el("span", { class: "bar", style: `width: ${(100 * tag.positives) / top}%; background: ${tag.color}` })),
        el("span", { class: "bar-value", title: `${number(tag.unreviewed)} more on unlabeled images` },
          number(tag.positives)),
      ),
    ),
  );
  if (!stats.tags.length) list.append(el("li", { class: "muted" }, "No tags yet."));
}

function renderHistogram() {
  const box = document.getElementById("histogram");
  if (!box) return;
  const top = Math.max(1, ...stats.labels_per_image.map(([, images]) => images));
  box.replaceChildren(
    ...stats.labels_per_image.map(([labels, images]) =>
      el("div", { class: "hist-col", dataset: { labels }, title: `${number(images)} labeled images with ${labels} tag${labels === 1 ? "" : "s"}` },
        el("span", { class: "hist-value" }, number(images)),
        el("span", { class: "hist-bar", style: `height: ${(100 * images) / top}%` }),
        el("span", { class: "hist-label" }, String(labels)),
      ),
    ),
  );
}

function cellValue(i, j, normalise) {
  const count = stats.cooccurrence[i][j];
  if (!normalise) return count;
  const row = stats.cooccurrence[i][i];
  return row ? count / row : 0;
}

function describe(i, j) {
  const [row, column] = [stats.tags[i], stats.tags[j]];
  const count = stats.cooccurrence[i][j];
  const rowTotal = stats.cooccurrence[i][i];
  if (i === j) return `${row.name}: ${number(count)} labeled images`;
  const share = rowTotal ? ` — P(${column.name} | ${row.name}) = ${percent(count / rowTotal)}` : "";
  return `${row.name} & ${column.name}: ${number(count)} images${share}`;
}

function renderHeatmap() {
  const table = document.getElementById("heatmap");
  if (!table) return;
  const normalise = document.getElementById("normalise").checked;
  const size = stats.tags.length;
  let top = 0;
  for (let i = 0; i < size; i += 1) for (let j = 0; j < size; j += 1) top = Math.max(top, cellValue(i, j, normalise));
  const head = el("tr", {}, el("th", {}), ...stats.tags.map((tag) => el("th", { class: "col-head", scope: "col" }, el("span", {}, tag.name))));
  const rows = stats.tags.map((tag, i) =>
    el("tr", {},
      el("th", { class: "row-head", scope: "row" }, tag.name),
      ...stats.tags.map((_, j) => {
        const value = cellValue(i, j, normalise);
        const strength = top ? value / top : 0;
        return el("td", {
          class: `cell${i === j ? " diagonal" : ""}${strength > 0.55 ? " dark" : ""}`,
          dataset: { row: i, col: j, count: stats.cooccurrence[i][j] },
          title: describe(i, j),
          style: `background: rgba(62, 99, 221, ${(0.06 + 0.94 * strength).toFixed(3)})`,
        }, normalise ? percent(value) : number(value));
      }),
    ),
  );
  table.replaceChildren(el("thead", {}, head), el("tbody", {}, rows));
  if (!size) table.replaceChildren(el("tbody", {}, el("tr", {}, el("td", { class: "muted" }, "No tags yet."))));
}

function wireTooltip() {
  const table = document.getElementById("heatmap");
  const tip = document.getElementById("heatmap-tip");
  if (!table || !tip) return;
  table.addEventListener("mouseover", (event) => {
    const cell = event.target.closest("td.cell");
    if (!cell) return;
    tip.textContent = describe(Number(cell.dataset.row), Number(cell.dataset.col));
    const box = cell.getBoundingClientRect();
    tip.style.left = `${box.left + window.scrollX + box.width / 2}px`;
    tip.style.top = `${box.top + window.scrollY - 6}px`;
    tip.hidden = false;
  });
  table.addEventListener("mouseleave", () => { tip.hidden = true; });
  document.getElementById("normalise").addEventListener("change", renderHeatmap);
}

function renderCounts() {
  document.getElementById("count-images").textContent = number(stats.images);
  document.getElementById("count-labeled").textContent = number(stats.labeled);
  document.getElementById("count-unlabeled").textContent = number(stats.unlabeled);
  document.getElementById("count-tags").textContent = number(stats.tags.length);
  document.querySelector("#splits tbody").replaceChildren(
    ...stats.splits.map((split) =>
      el("tr", { dataset: { split: split.split } },
        el("td", {}, split.split),
        el("td", { class: "num" }, number(split.images)),
        el("td", { class: "num" }, number(split.labeled)),
      ),
    ),
  );
}

async function load() {
  try {
    stats = await api("GET", `/projects/${overview.dataset.projectId}/stats`);
  } catch (error) {
    showError(document.getElementById("stats-error"), `Could not load the overview: ${error.message}`);
    return;
  } finally {
    overview.removeAttribute("aria-busy");
  }
  renderCounts();
  document.getElementById("no-images").hidden = stats.images > 0;
  document.getElementById("charts").hidden = stats.images === 0;
  renderTagBars();
  renderHistogram();
  renderHeatmap();
}

wireTooltip();
load();
