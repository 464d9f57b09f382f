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

// The empty page offers the digits demo project, created by a background job.
const demoButton = document.getElementById("create-demo");
if (demoButton) {
  const bar = document.getElementById("demo-progress");
  const status = document.getElementById("demo-status");
  const demoError = document.getElementById("demo-error");

  const watch = async (projectId, total) => {
    let progress;
    try {
      progress = await api("GET", `/demo/${projectId}`);
    } catch (error) {
      showError(demoError, error);
      return;
    }
    bar.firstElementChild.style.width = `${Math.round((100 * progress.images) / total)}%`;
    status.textContent = `${progress.images} of ${total} images`;
    if (progress.state === "ready") {
      window.location.href = `/projects/${projectId}`;
    } else if (progress.state === "failed") {
      showError(demoError, progress.message);
      demoButton.disabled = false;
    } else {
      setTimeout(() => watch(projectId, total), 1000);
    }
  };

  demoButton.addEventListener("click", async () => {
    clearError(demoError);
    demoButton.disabled = true;
    try {
      const started = await api("POST", "/demo", {});
      bar.hidden = false;
      status.textContent = "Creating the demo project…";
      watch(started.project_id, started.total);
    } catch (error) {
      showError(demoError, error);
      demoButton.disabled = false;
    }
  });
}
