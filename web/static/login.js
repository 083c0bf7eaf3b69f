// otter web console: the login page.
"use strict";
document.getElementById("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const err = document.getElementById("error");
  err.textContent = "";
  try {
    const r = await fetch("/api/v1/session", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        user: document.getElementById("user").value,
        password: document.getElementById("password").value,
      }),
    });
    if (r.ok) {
      location.href = "/index.html";
      return;
    }
    const body = await r.json().catch(() => ({ message: "login failed; try again" }));
    err.textContent = body.message;
  } catch (e) {
    err.textContent = "cannot reach otter-web; check that it runs";
  }
});
