import { api, showError, clearError } from "./api.js";

const form = document.getElementById("new-project");
const errorBox = document.getElementById("new-project-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearError(errorBox);
  const data = new FormData(form);
  try {
    const project = await api("POST", "/projects", {
      name: data.get("name"),
      description: data.get("description") || "",
    });
    window.location.href = `/projects/${project.id}`;
  } catch (error) {
    showError(errorBox, error);
  }
});
