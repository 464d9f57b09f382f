// Drawing the annotator: grid tiles, the single image, the tag list with its on / partly-on
// states, filter options with counts, the pager and the save status. It reads the page's shared
// state and sends what the user clicks to the `actions` it is given.
import { el } from "./api.js";

const $ = (id) => document.getElementById(id);
const number = (n) => n.toLocaleString("en-US");

export function createView({ root, ui, state, tags, tagById, actions }) {
  function tagLabel(tagId) {
    const tag = tagById.get(tagId);
    if (!tag) return null;
    return el("span", { class: "tile-tag", dataset: { tagId }, style: `--tag: ${tag.color}` }, tag.name);
  }

  function tile(item, index) {
    const classes = ["tile"];
    if (index === state.cursor) classes.push("cursor");
    if (state.selected.has(item.id) || state.allMatching) classes.push("selected");
    if (item.review_state === "labeled") classes.push("labeled");
    const image = el("img", { src: item.thumb_url, alt: item.original_filename, loading: "lazy", draggable: "false" });
    image.addEventListener("error", () => image.classList.add("broken"), { once: true });
    return el(
      "div",
      {
        class: classes.join(" "), dataset: { assetId: item.id, index }, role: "button",
        onclick: (event) => actions.clickTile(event, index),
        ondblclick: () => actions.openSingle(index),
      },
      image,
      el("span", { class: "tile-state", title: item.review_state }, item.review_state === "labeled" ? "✓" : ""),
      el("div", { class: "tile-tags" }, item.tag_ids.map(tagLabel)),
      el("div", { class: "tile-name", title: item.original_filename }, item.original_filename),
    );
  }

  function renderItem(item) {
    const index = state.items.indexOf(item);
    if (index < 0) return;
    if (state.mode === "grid") {
      const old = ui.grid.querySelector(`.tile[data-asset-id="${item.id}"]`);
      if (old) old.replaceWith(tile(item, index));
    } else if (index === state.cursor) {
      renderSingle();
    }
  }

  function renderGrid() {
    ui.grid.replaceChildren(...state.items.map(tile));
  }

  function renderSingle() {
    const item = state.items[state.cursor];
    if (!item) return;
    if (ui.image.getAttribute("src") !== item.file_url) {
      ui.image.src = item.file_url;
      ui.image.alt = item.original_filename;
    }
    ui.name.textContent = item.original_filename;
    ui.state.textContent = item.review_state;
    ui.single.dataset.assetId = item.id;
    ui.single.classList.toggle("labeled", item.review_state === "labeled");
    ui.tags.replaceChildren(...item.tag_ids.map(tagLabel));
    // Warm the cache for the next image so J feels instant.
    const next = state.items[state.cursor + 1];
    if (next) new Image().src = next.file_url;
  }

  function renderCursor(before) {
    if (state.mode === "grid") {
      const tiles = ui.grid.children;
      tiles[before]?.classList.remove("cursor");
      const now = tiles[state.cursor];
      if (now) {
        now.classList.add("cursor");
        now.scrollIntoView({ block: "nearest" });
      }
    } else {
      renderSingle();
    }
    renderTagList();
    renderPager();
  }

  function renderSelectionMarks() {
    for (const node of ui.grid.children) {
      node.classList.toggle("selected", state.allMatching || state.selected.has(Number(node.dataset.assetId)));
    }
    renderSelection();
    renderTagList();
  }

  function renderSelection() {
    if (state.mode !== "grid") ui.selection.textContent = "";
    else if (state.allMatching) {
      ui.selection.textContent = state.total === null
        ? "All matching images selected"
        : `All ${number(state.total)} matching images selected`;
    }
    else if (state.selected.size) ui.selection.textContent = `${state.selected.size} selected`;
    else ui.selection.textContent = "";
  }

  function renderPager() {
    const shown = state.items.length;
    const of = state.total === null ? "" : ` of ${number(state.total)}`;
    ui.pageInfo.textContent = shown
      ? state.mode === "grid"
        ? `${number(state.offset + 1)}–${number(state.offset + shown)}${of}`
        : `${number(state.offset + state.cursor + 1)}${of}`
      : "";
    $("prev-page").disabled = !state.hasPrevious;
    $("next-page").disabled = !state.hasNext;
  }

  function renderFilters() {
    const counts = state.counts;
    if (!counts) return;
    const label = (option, text) => { option.textContent = text; };
    for (const option of ui.review.options) {
      const n = option.value ? counts[option.value] : counts.images;
      label(option, `${option.value ? option.value[0].toUpperCase() + option.value.slice(1) : "All images"} (${number(n)})`);
    }
    for (const option of ui.split.options) {
      if (option.value) label(option, `${option.value} (${number(counts.splits[option.value] ?? 0)})`);
    }
    for (const [select, lacks] of [[ui.has, false], [ui.lacks, true]]) {
      const value = select.value;
      select.replaceChildren(
        el("option", { value: "" }, "—"),
        ...tags.map((tag) => {
          const has = counts.tags[tag.id] ?? 0;
          return el("option", { value: tag.id }, `${tag.name} (${number(lacks ? counts.images - has : has)})`);
        }),
      );
      select.value = value;
    }
  }

  function targetItems() {
    const target = actions.targets();
    if (!target || target.filter) return [];
    return target.ids.map((id) => state.byId.get(id)).filter(Boolean);
  }

  function renderTagList() {
    const query = ui.tagSearch.value.trim().toLowerCase();
    const items = targetItems();
    const rows = tags.map((tag) => {
      const holders = items.filter((i) => i.tag_ids.includes(tag.id)).length;
      const classes = ["tag-row"];
      if (items.length && holders === items.length) classes.push("on");
      else if (holders) classes.push("some");
      if (state.activeTag === tag.id) classes.push("active");
      if (state.highlight === tag.id) classes.push("highlight");
      const hidden = Boolean(query) && !tag.name.toLowerCase().includes(query)
        && (tag.group ?? "").toLowerCase() !== query;
      return el(
        "li", { class: classes.join(" "), dataset: { tagId: tag.id }, hidden },
        el("button", {
          type: "button", class: "tag-chip", style: `--tag: ${tag.color}`, "aria-pressed": classes.includes("on") ? "true" : "false",
          title: `Toggle “${tag.name}”${tag.hotkey ? ` (${tag.hotkey})` : ""}`, onclick: () => actions.toggleTag(tag),
        },
        el("span", { class: "swatch" }), tag.name,
        tag.group ? el("span", { class: "tag-group" }, tag.group) : null,
        tag.hotkey ? el("kbd", {}, tag.hotkey) : null),
        el("span", { class: "tag-count muted" }, number(state.counts?.tags[tag.id] ?? 0)),
        el("button", {
          type: "button", class: "pick icon", "aria-label": `Select ${tag.name}`,
          title: "Select for A / Add tag / Remove tag", onclick: () => actions.selectTag(tag),
        }, state.activeTag === tag.id ? "◉" : "○"),
      );
    });
    ui.tagList.replaceChildren(...rows);
    const active = tagById.get(state.activeTag);
    ui.activeTag.textContent = active ? `Selected: ${active.name} (A assigns)` : "No tag selected";
  }

  function renderStatus(status) {
    ui.status.className = `save-status ${status.state}`;
    ui.retry.hidden = status.state !== "retrying";
    if (status.state === "saving") {
      ui.status.textContent = `Saving ${status.pending} change${status.pending === 1 ? "" : "s"}…`;
    } else if (status.state === "retrying") {
      const seconds = Math.ceil(status.delay / 1000);
      ui.status.textContent = `Not saved yet: ${status.error.message}. Retrying in ${seconds} s `
        + `(${status.pending} waiting; nothing is lost)`;
    } else if (state.refusal) {
      ui.status.className = "save-status refused";
      ui.status.textContent = `Last change refused: ${state.refusal}`;
    } else {
      ui.status.textContent = "All changes saved";
    }
  }

  function render() {
    const grid = state.mode === "grid";
    ui.mode.textContent = grid ? "Single image" : "Grid";
    ui.grid.hidden = !grid || !state.items.length;
    ui.single.hidden = grid || !state.items.length;
    ui.empty.hidden = state.items.length > 0;
    root.dataset.mode = state.mode;
    for (const id of ["select-page", "select-all", "clear-selection"]) $(id).hidden = !grid;
    if (grid) renderGrid();
    else renderSingle();
    renderSelection();
    renderPager();
    renderFilters();
    renderTagList();
    if (grid) ui.grid.children[state.cursor]?.scrollIntoView({ block: "nearest" });
  }

  return {
    render, renderItem, renderCursor, renderSelectionMarks, renderSelection, renderPager,
    renderFilters, renderTagList, renderStatus,
  };
}
