// The job page's "Register model" form: the job's output becomes a new version of the named model
// (POST …/api/v1/models/<you>/<name>/versions {"from": job}); the answer links the model's page.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("register-model");
    if (!form) return;
    const result = document.getElementById("register-result");
    const xsrf = () => (document.querySelector('meta[name="xsrf"]') || {}).content || "";
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = document.getElementById("model-name").value.trim();
      const button = document.getElementById("register");
      button.disabled = true;
      result.textContent = "registering…";
      try {
        const r = await fetch(form.dataset.api + encodeURIComponent(name) + "/versions", {
          method: "POST", credentials: "same-origin",
          headers: { "X-XSRFToken": xsrf(), "Content-Type": "application/json" },
          body: JSON.stringify({ from: form.dataset.job }) });
        const body = await r.json();
        result.textContent = "";
        if (!r.ok) {
          result.textContent = body.message || "Registering failed: " + r.status;
          return;
        }
        const link = document.createElement("a");
        link.href = form.dataset.pages + encodeURIComponent(name);
        link.textContent = "registered " + body.ref;
        link.id = "registered";
        result.appendChild(link);
      } finally {
        button.disabled = false;
      }
    });
  });
})();
