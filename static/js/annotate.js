// The annotator: a paged grid of thumbnails and a single-image view, tag hotkeys, select-then-A,
// multi-select with bulk changes, filters with counts and undo. Changes show at once on the page
// and go to /api/v1 through the save queue (annotate_queue.js), which retries until they land.
import { api, toast } from "./api.js";
import { SaveQueue } from "./annotate_queue.js";
import { createView } from "./annotate_view.js";

const root = document.getElementById("annotator");
const config = JSON.parse(document.getElementById("annotate-config").textContent);
const base = `/projects/${config.project_id}`;
const tags = JSON.parse(document.getElementById("tags-data").textContent).filter((t) => !t.archived);
const tagById = new Map(tags.map((t) => [t.id, t]));
const tagByKey = new Map(tags.filter((t) => t.hotkey).map((t) => [t.hotkey.toLowerCase(), t]));
const $ = (id) => document.getElementById(id);
const number = (n) => n.toLocaleString("en-US");

const ui = {
  grid: $("grid"), single: $("single"), empty: $("empty"), image: $("single-image"),
  name: $("single-name"), state: $("single-state"), tags: $("single-tags"),
  tagList: $("tag-list"), tagSearch: $("tag-search"), activeTag: $("active-tag"),
  selection: $("selection-info"), pageInfo: $("page-info"), status: $("save-status"),
  retry: $("retry-now"), mode: $("mode-toggle"),
  review: $("filter-review"), has: $("filter-has"), lacks: $("filter-lacks"),
  split: $("filter-split"), q: $("filter-q"),
};

const state = {
  mode: "grid",
  items: [], byId: new Map(), total: null, offset: 0, hasPrevious: false, hasNext: false,
  cursor: 0, selected: new Set(), anchor: null, allMatching: false,
  activeTag: null, highlight: null, counts: null, loading: null,
  undo: [], refusal: null,
};

const queue = new SaveQueue({
  storageKey: `polytag-annotate-queue-${config.project_id}`,
  onSaved: saved,
  onRefused: refused,
  onStatus: (status) => view.renderStatus(status),
});

const view = createView({
  root, ui, state, tags, tagById,
  actions: {
    clickTile: (event, index) => clickTile(event, index),
    openSingle: (index) => {
      state.cursor = index;
      setMode("single");
    },
    targets: () => targets(),
    toggleTag: (tag) => toggleTag(tag),
    selectTag: (tag) => selectTag(tag),
  },
});

// ---- loading -------------------------------------------------------------------------------

function filterBody() {
  const body = {};
  if (ui.review.value) body.review_state = ui.review.value;
  if (ui.has.value) body.has = [Number(ui.has.value)];
  if (ui.lacks.value) body.lacks = [Number(ui.lacks.value)];
  if (ui.split.value) body.split = ui.split.value;
  if (ui.q.value.trim()) body.q = ui.q.value.trim();
  return body;
}

function filterParams(extra) {
  const params = new URLSearchParams(extra);
  for (const [key, value] of Object.entries(filterBody())) {
    for (const one of [value].flat()) params.append(key, one);
  }
  return params;
}

// A page turn never counts (that would scan a large project): the counts and the filter's total
// come from a separate request, sent on a new filter and a few seconds after changes.
async function load({ after = null, before = null, cursor = 0, counts = false, samePlace = false } = {}) {
  const params = filterParams({ limit: config.page_size, total: "false" });
  if (after !== null) params.set("after", after);
  if (before !== null) params.set("before", before);
  if (counts || !state.counts) fetchCounts();
  const token = {};
  state.loading = token;
  root.classList.add("loading");
  let page;
  try {
    page = await api("GET", `${base}/assets?${params}`);
  } catch (error) {
    if (state.loading === token) {
      root.classList.remove("loading");
      toast(`Could not load images: ${error.message}`, "error");
    }
    return;
  }
  if (state.loading !== token) return; // a newer request (filter change, paging) won
  root.classList.remove("loading");
  // The server says 0 for a first page; otherwise follow the page turn.
  let offset = page.offset;
  if (offset === null) {
    if (samePlace) offset = state.offset;
    else if (after !== null) offset = state.offset + state.items.length;
    else offset = Math.max(0, state.offset - page.items.length);
  }
  state.items = page.items;
  state.byId = new Map(page.items.map((item) => [item.id, item]));
  Object.assign(state, { offset, hasPrevious: page.has_previous, hasNext: page.has_next });
  state.cursor = cursor === "last" ? page.items.length - 1 : Math.min(cursor, page.items.length - 1);
  state.cursor = Math.max(state.cursor, 0);
  view.render();
}

async function fetchCounts() {
  const params = filterParams({ limit: 1, counts: "true" });
  try {
    const page = await api("GET", `${base}/assets?${params}`);
    if (filterParams({ limit: 1, counts: "true" }).toString() !== params.toString()) return;
    state.counts = page.counts;
    state.total = page.total;
    view.renderFilters();
    view.renderPager();
    view.renderSelection();
  } catch {
    // Counts are a convenience; the next filter change asks again.
  }
}

// After changes, counts are refreshed at most every few seconds: on a large project each
// refresh scans it, and someone tagging fast makes a change every second.
let countsTimer = null;
let countsAt = 0;
function refreshCountsSoon() {
  if (countsTimer) return;
  const wait = Math.max(600, countsAt + 4000 - Date.now());
  countsTimer = setTimeout(() => {
    countsTimer = null;
    countsAt = Date.now();
    fetchCounts();
  }, wait);
}

let reloadTimer = null;
function reloadSoon() {
  clearTimeout(reloadTimer);
  const first = state.items[0];
  reloadTimer = setTimeout(
    () => load({
      after: first && state.hasPrevious ? first.id - 1 : null, cursor: state.cursor, samePlace: true,
    }),
    300,
  );
}

// ---- local state changes (shown at once, confirmed by the server's reply) --------------------

function addLocally(item, tagId) {
  const group = tagById.get(tagId)?.group;
  let ids = item.tag_ids;
  if (group) ids = ids.filter((id) => id === tagId || tagById.get(id)?.group !== group);
  if (!ids.includes(tagId)) ids = [...ids, tagId];
  item.tag_ids = ids.sort((a, b) => a - b);
}

function applyLocal(ids, { add = [], remove = [], review = null }) {
  for (const id of ids) {
    const item = state.byId.get(id);
    if (!item) continue;
    item.tag_ids = item.tag_ids.filter((t) => !remove.includes(t));
    for (const tagId of add) addLocally(item, tagId);
    if (review) item.review_state = review;
    view.renderItem(item);
  }
  view.renderTagList();
}

function saved(op, result) {
  // Replies may arrive while later changes to the same images still wait; those images keep
  // their optimistic state until their own reply comes.
  const waiting = queue.pendingAssetIds();
  for (const asset of result.assets) {
    const item = state.byId.get(asset.id);
    if (!item || waiting.has(asset.id)) continue;
    item.tag_ids = asset.tag_ids;
    item.review_state = asset.review_state;
    view.renderItem(item);
  }
  if (result.matched > result.assets.length) reloadSoon();
  view.renderTagList();
  refreshCountsSoon();
}

function refused(op, error) {
  state.refusal = error.message;
  toast(`Not saved: ${error.message}`, "error");
  reloadSoon(); // put the page back in line with what the server holds
}

function submit(path, body) {
  state.refusal = null;
  const done = queue.push(`${base}${path}`, body);
  state.undo.push(done);
  if (state.undo.length > 200) state.undo.shift();
  return done;
}

// ---- what a change applies to ----------------------------------------------------------------

function current() {
  return state.items[state.cursor] ?? null;
}

function targets() {
  if (state.mode === "grid" && state.allMatching) return { filter: filterBody(), count: state.total ?? 0 };
  if (state.mode === "grid" && state.selected.size) {
    const ids = state.items.filter((i) => state.selected.has(i.id)).map((i) => i.id);
    return { ids, count: ids.length };
  }
  const item = current();
  return item ? { ids: [item.id], count: 1 } : null;
}

function addTag(tag, target = targets()) {
  if (!target) return;
  if (target.filter) {
    submit("/annotations/bulk", { filter: target.filter, add: [tag.id] });
    toast(`Adding “${tag.name}” to ${number(target.count)} images…`);
  } else if (target.ids.length === 1) {
    // One image looked at and tagged counts as reviewed.
    applyLocal(target.ids, { add: [tag.id], review: "labeled" });
    submit("/annotations", { asset_id: target.ids[0], tag_id: tag.id, present: true });
  } else {
    applyLocal(target.ids, { add: [tag.id] });
    submit("/annotations/bulk", { asset_ids: target.ids, add: [tag.id] });
  }
}

function removeTag(tag, target = targets()) {
  if (!target) return;
  if (target.filter) {
    submit("/annotations/bulk", { filter: target.filter, remove: [tag.id] });
    toast(`Removing “${tag.name}” from ${number(target.count)} images…`);
  } else if (target.ids.length === 1) {
    applyLocal(target.ids, { remove: [tag.id] });
    submit("/annotations", { asset_id: target.ids[0], tag_id: tag.id, present: false });
  } else {
    applyLocal(target.ids, { remove: [tag.id] });
    submit("/annotations/bulk", { asset_ids: target.ids, remove: [tag.id] });
  }
}

function toggleTag(tag) {
  const target = targets();
  if (!target) return;
  if (target.filter) return addTag(tag, target); // images not on screen: toggling means adding
  const items = target.ids.map((id) => state.byId.get(id)).filter(Boolean);
  if (items.length && items.every((i) => i.tag_ids.includes(tag.id))) removeTag(tag, target);
  else addTag(tag, target);
}

function mark(review, { moveOn = false } = {}) {
  const target = targets();
  if (!target) return;
  if (target.ids) {
    applyLocal(target.ids, { review });
    submit("/annotations/bulk", { asset_ids: target.ids, review_state: review });
  } else {
    submit("/annotations/bulk", { filter: target.filter, review_state: review });
  }
  const many = state.mode === "grid" && (state.selected.size || state.allMatching);
  if (moveOn && !many) move(1);
}

async function undo() {
  const last = state.undo.pop();
  if (!last) {
    toast("Nothing to undo");
    return;
  }
  const result = await last; // waits for the change to be saved: undo needs its reply
  if (!result) return;
  const { added, removed, labeled, unlabeled } = result;
  if (!added.length && !removed.length && !labeled.length && !unlabeled.length) {
    toast("Undone (that change had changed nothing)");
    return;
  }
  // Show the undo at once on the images of this page (a bulk change may span many more).
  const here = ([assetId]) => state.byId.has(assetId);
  for (const [assetId, tagId] of added.filter(here)) applyLocal([assetId], { remove: [tagId] });
  for (const [assetId, tagId] of removed.filter(here)) applyLocal([assetId], { add: [tagId] });
  applyLocal(labeled.filter((id) => state.byId.has(id)), { review: "unlabeled" });
  applyLocal(unlabeled.filter((id) => state.byId.has(id)), { review: "labeled" });
  queue.push(`${base}/annotations/revert`, { added, removed, labeled, unlabeled });
  toast("Undone");
}

// ---- moving and selecting ------------------------------------------------------------------

function move(delta) {
  const next = state.cursor + delta;
  if (next >= state.items.length) {
    if (state.hasNext) load({ after: state.items.at(-1).id, cursor: 0 });
    else toast("That was the last image");
    return;
  }
  if (next < 0) {
    if (state.hasPrevious) load({ before: state.items[0].id, cursor: "last" });
    return;
  }
  const before = state.cursor;
  state.cursor = next;
  view.renderCursor(before);
}

function columns() {
  const tiles = [...ui.grid.children];
  if (!tiles.length) return 1;
  const top = tiles[0].offsetTop;
  return Math.max(1, tiles.filter((t) => t.offsetTop === top).length);
}

function clearSelection() {
  state.selected.clear();
  state.allMatching = false;
  view.renderSelectionMarks();
}

function clickTile(event, index) {
  const item = state.items[index];
  const before = state.cursor;
  state.allMatching = false;
  if (event.shiftKey && state.anchor !== null) {
    if (!(event.ctrlKey || event.metaKey)) state.selected.clear();
    const [from, to] = [Math.min(state.anchor, index), Math.max(state.anchor, index)];
    for (let i = from; i <= to; i += 1) state.selected.add(state.items[i].id);
  } else if (event.ctrlKey || event.metaKey) {
    if (state.selected.has(item.id)) state.selected.delete(item.id);
    else state.selected.add(item.id);
    state.anchor = index;
  } else {
    state.selected.clear();
    state.anchor = index;
  }
  state.cursor = index;
  view.renderCursor(before);
  view.renderSelectionMarks();
}

function setMode(mode) {
  state.mode = mode;
  view.render();
}

function selectTag(tag) {
  state.activeTag = tag ? tag.id : null;
  view.renderTagList();
}

// ---- input ---------------------------------------------------------------------------------

function assignActive() {
  const tag = tagById.get(state.activeTag);
  if (!tag) {
    toast("Select a tag first: click ○ next to it, or find it with / and press Enter");
    return;
  }
  addTag(tag);
}

function searchKeys(event) {
  const visible = tags.filter((tag) => !ui.tagList.querySelector(`[data-tag-id="${tag.id}"]`)?.hidden);
  const at = visible.findIndex((t) => t.id === state.highlight);
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    const step = event.key === "ArrowDown" ? 1 : -1;
    const next = visible[(at + step + visible.length) % visible.length];
    state.highlight = next?.id ?? null;
    view.renderTagList();
  } else if (event.key === "Enter") {
    event.preventDefault();
    const tag = visible[Math.max(at, 0)];
    if (tag) selectTag(tag);
    ui.tagSearch.value = "";
    state.highlight = null;
    ui.tagSearch.blur();
    view.renderTagList();
  } else if (event.key === "Escape") {
    ui.tagSearch.value = "";
    state.highlight = null;
    ui.tagSearch.blur();
    view.renderTagList();
  }
}

const KEYS = {
  g: () => setMode(state.mode === "grid" ? "single" : "grid"),
  j: () => move(1),
  k: () => move(-1),
  ArrowRight: () => move(1),
  ArrowLeft: () => move(-1),
  ArrowDown: () => move(state.mode === "grid" ? columns() : 1),
  ArrowUp: () => move(state.mode === "grid" ? -columns() : -1),
  " ": () => mark("labeled", { moveOn: true }),
  Enter: () => mark("labeled", { moveOn: true }),
  u: () => mark("unlabeled"),
  a: assignActive,
  z: undo,
  x: () => {
    const item = current();
    if (!item || state.mode !== "grid") return;
    state.allMatching = false;
    if (state.selected.has(item.id)) state.selected.delete(item.id);
    else state.selected.add(item.id);
    state.anchor = state.cursor;
    view.renderSelectionMarks();
  },
  Escape: clearSelection,
  "/": () => ui.tagSearch.focus(),
};

document.addEventListener("keydown", (event) => {
  const field = event.target.closest?.("input, select, textarea");
  if (field) {
    if (field === ui.tagSearch) searchKeys(event);
    else if (event.key === "Escape") field.blur();
    return;
  }
  if (event.altKey) return;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  if (event.ctrlKey || event.metaKey) {
    if (key === "z") {
      event.preventDefault();
      undo();
    } else if (key === "a" && state.mode === "grid") {
      event.preventDefault();
      selectPage();
    }
    return;
  }
  const action = KEYS[key];
  const tag = tagByKey.get(key);
  if (!action && !tag) return;
  event.preventDefault();
  if (action) action();
  else toggleTag(tag);
});

function selectPage() {
  state.allMatching = false;
  for (const item of state.items) state.selected.add(item.id);
  view.renderSelectionMarks();
}

function newFilter() {
  clearSelection();
  state.total = null;
  load({ counts: true });
}

let searchTimer = null;
for (const select of [ui.review, ui.has, ui.lacks, ui.split]) select.addEventListener("change", newFilter);
ui.q.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(newFilter, 250);
});
ui.tagSearch.addEventListener("input", () => {
  const query = ui.tagSearch.value.trim().toLowerCase();
  state.highlight = tags.find((t) => t.name.toLowerCase().includes(query))?.id ?? null;
  view.renderTagList();
});
ui.mode.addEventListener("click", () => setMode(state.mode === "grid" ? "single" : "grid"));
$("select-page").addEventListener("click", selectPage);
$("select-all").addEventListener("click", () => {
  state.allMatching = true;
  view.renderSelectionMarks();
});
$("clear-selection").addEventListener("click", clearSelection);
$("bulk-add").addEventListener("click", () => (tagById.has(state.activeTag) ? addTag(tagById.get(state.activeTag)) : assignActive()));
$("bulk-remove").addEventListener("click", () => {
  const tag = tagById.get(state.activeTag);
  if (tag) removeTag(tag);
  else toast("Select a tag first: click ○ next to it");
});
$("mark-labeled").addEventListener("click", () => mark("labeled"));
$("mark-unlabeled").addEventListener("click", () => mark("unlabeled"));
$("undo").addEventListener("click", undo);
$("prev-page").addEventListener("click", () => state.items.length && load({ before: state.items[0].id }));
$("next-page").addEventListener("click", () => state.items.length && load({ after: state.items.at(-1).id }));
ui.retry.addEventListener("click", () => queue.retryNow());
// A clicked button keeps the focus, and Space or Enter would press it again instead of marking
// the image: hand the keyboard back to the annotator.
root.addEventListener("click", (event) => event.target.closest?.("button")?.blur());
window.addEventListener("online", () => queue.retryNow());
window.addEventListener("beforeunload", (event) => {
  // Waiting changes are kept in localStorage and sent on the next visit; only when the browser
  // refused to store them would leaving lose them.
  if (queue.pending && !queue.persisted) event.preventDefault();
});

view.renderTagList();
load();
queue.run(); // changes left over from an earlier visit (or a crash) go out first
