import { api, showError, clearError } from "./api.js";

const keyForm = document.getElementById("new-key");
const keyError = document.getElementById("key-error");
keyForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearError(keyError);
  try {
    const created = await api("POST", "/api-keys", { name: new FormData(keyForm).get("name") });
    document.getElementById("new-key-value").textContent = created.key;
    document.getElementById("new-key-result").hidden = false;
    keyForm.reset();
  } catch (error) {
    showError(keyError, error);
  }
});

document.querySelectorAll("#keys .revoke").forEach((button) => {
  button.addEventListener("click", async () => {
    const row = button.closest("tr");
    if (!window.confirm("Revoke this key? Clients using it will stop working.")) return;
    try {
      await api("DELETE", `/api-keys/${row.dataset.keyId}`);
      row.remove();
    } catch (error) {
      showError(keyError, error);
    }
  });
});

const userForm = document.getElementById("new-user");
if (userForm) {
  const userError = document.getElementById("user-error");
  userForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError(userError);
    const data = new FormData(userForm);
    try {
      await api("POST", "/users", {
        email: data.get("email"),
        password: data.get("password"),
        is_admin: data.get("is_admin") === "on",
      });
      window.location.reload();
    } catch (error) {
      showError(userError, error);
    }
  });
}
