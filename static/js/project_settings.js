import { api, showError, clearError } from "./api.js";

const card = document.getElementById("project-settings");
const projectId = card.dataset.projectId;

const editForm = document.getElementById("edit-project");
const editError = document.getElementById("edit-error");
editForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearError(editError);
  const data = new FormData(editForm);
  try {
    await api("PATCH", `/projects/${projectId}`, {
      name: data.get("name"),
      description: data.get("description"),
    });
    window.location.reload();
  } catch (error) {
    showError(editError, error);
  }
});

const deleteForm = document.getElementById("delete-project");
const deleteError = document.getElementById("delete-error");
deleteForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearError(deleteError);
  const confirmName = new FormData(deleteForm).get("confirm_name");
  if (!window.confirm(`Delete project "${card.dataset.projectName}" and everything in it?`)) return;
  try {
    await api("DELETE", `/projects/${projectId}`, { confirm_name: confirmName });
    window.location.href = "/";
  } catch (error) {
    showError(deleteError, error);
  }
});
