// "Try it": drop an image, see every tag with its score and threshold.
import { api, el, showError, clearError } from "./api.js";

const root = document.getElementById("try-page");
const deploymentId = root.dataset.deploymentId;
const drop = document.getElementById("drop");
const input = document.getElementById("try-file");
const errorBox = document.getElementById("try-error");

async function predict(file) {
  clearError(errorBox);
  const body = new FormData();
  body.append("files", file, file.name);
  let result;
  try {
    result = await api("POST", `/deployments/${deploymentId}/predict`, body);
  } catch (error) {
    showError(errorBox, error);
    return;
  }
  const preview = document.getElementById("try-preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  const image = result.images[0];
  document.querySelector("#try-tags tbody").replaceChildren(...image.tags.map((tag) =>
    el("tr", { class: tag.predicted ? "predicted" : "", dataset: { tag: tag.name } },
      el("td", {}, tag.name),
      el("td", {}, el("div", { class: "row" },
        el("div", { class: "bar", title: `score ${tag.score.toFixed(4)}` },
          el("div", { style: `width:${(tag.score * 100).toFixed(1)}%` }),
          el("span", { class: "mark", style: `left:${(tag.threshold * 100).toFixed(1)}%` })),
        el("span", { class: "score" }, tag.score.toFixed(3)))),
      el("td", { class: "num" }, tag.threshold.toFixed(3)),
      el("td", {}, tag.predicted ? "yes" : "no"))));
  document.getElementById("try-result").hidden = false;
}

input.addEventListener("change", () => { if (input.files[0]) predict(input.files[0]); });
drop.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") input.click(); });
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  const file = event.dataTransfer.files[0];
  if (file) predict(file);
});
