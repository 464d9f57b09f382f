// Tag editor of the project page: add, rename, recolor, rebind, regroup, reorder, archive.
import { api, showError, clearError, el, toast } from "./api.js";

const card = document.getElementById("tags-card");
const projectId = card.dataset.projectId;
const errorBox = document.getElementById("tag-error");
const tbody = document.querySelector("#tags tbody");
const showArchived = document.getElementById("show-archived");
let tags = JSON.parse(document.getElementById("tags-data").textContent);

async function patchTag(tag, fields) {
  clearError(errorBox);
  try {
    const updated = await api("PATCH", `/projects/${projectId}/tags/${tag.id}`, fields);
    Object.assign(tag, updated);
    toast(`Saved “${updated.name}”`, "success");
  } catch (error) {
    showError(errorBox, error);
  }
  render();
}

async function move(index, delta) {
  const visible = tags;
  const target = index + delta;
  if (target < 0 || target >= visible.length) return;
  const order = visible.map((t) => t.id);
  [order[index], order[target]] = [order[target], order[index]];
  clearError(errorBox);
  try {
    tags = await api("PUT", `/projects/${projectId}/tags/order`, { tag_ids: order });
  } catch (error) {
    showError(errorBox, error);
  }
  render();
}

function editable(tag, field, attrs) {
  const input = el("input", { value: tag[field] ?? "", "aria-label": `${field} of ${tag.name}`, ...attrs });
  input.addEventListener("change", () => {
    const value = input.type === "color" ? input.value : input.value.trim();
    patchTag(tag, { [field]: value === "" && field !== "name" ? null : value });
  });
  return input;
}

function render() {
  tbody.replaceChildren();
  tags.forEach((tag, index) => {
    if (tag.archived && !showArchived.checked) return;
    const row = el("tr", { class: tag.archived ? "archived" : "", dataset: { tagId: tag.id } },
      el("td", { class: "order" },
        el("button", { class: "icon", title: "Move up", "aria-label": `Move ${tag.name} up`, onclick: () => move(index, -1) }, "▲"),
        el("button", { class: "icon", title: "Move down", "aria-label": `Move ${tag.name} down`, onclick: () => move(index, 1) }, "▼")),
      el("td", {}, editable(tag, "name", { class: "tag-name", maxlength: 100 })),
      el("td", {}, editable(tag, "hotkey", { class: "short tag-hotkey", maxlength: 1 })),
      el("td", {}, editable(tag, "group", { class: "tag-group", maxlength: 100, placeholder: "—" })),
      el("td", {}, editable(tag, "color", { type: "color" })),
      el("td", {},
        el("button", { class: "link", onclick: () => patchTag(tag, { archived: !tag.archived }) },
          tag.archived ? "Restore" : "Archive")),
    );
    tbody.append(row);
  });
}

document.getElementById("new-tag").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const data = new FormData(form);
  clearError(errorBox);
  try {
    const tag = await api("POST", `/projects/${projectId}/tags`, {
      name: data.get("name"),
      hotkey: data.get("hotkey") || null,
      group: data.get("group") || null,
      color: data.get("color"),
    });
    tags.push(tag);
    form.reset();
    form.querySelector("input[name=name]").focus();
    render();
  } catch (error) {
    showError(errorBox, error);
  }
});

showArchived.addEventListener("change", render);
render();
