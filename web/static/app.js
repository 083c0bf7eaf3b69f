// otter web console: what every page shares, and each page's own part.
// Everything a device or a user wrote reaches the page through textContent
// (never innerHTML), so it shows as text.
"use strict";

const otter = { session: null };

// Makes an element: el("td", {class: "x"}, "text", childNode, ...).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function when(ms) {
  if (!ms) return "—";
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 90) return s + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  if (s < 129600) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " days ago";
}

function status(text) {
  return el("span", { class: "status " + text, text: text });
}

// Text a device wrote, with what could forge a line or turn text around made
// visible: C0 controls (line breaks too) and DEL as \xHH, C1 controls, bidi
// embeddings, overrides and isolates and the line separators as \uHHHH.
function visible(text) {
  return String(text).replace(/[\u0000-\u001f\u007f]|[\u0080-\u009f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g,
    (c) => {
      const n = c.charCodeAt(0);
      return n < 0x80 ? "\\x" + n.toString(16).padStart(2, "0") : "\\u" + n.toString(16).padStart(4, "0");
    });
}

// An execution's statusDetails as "key: value" lines (text only); the reason as
// the service made it readable (reasonText: an error code named and explained).
// Each key and value is one line: a device's own line breaks show as \x0a.
function details(e) {
  const lines = Object.entries(e.statusDetails || {}).map(([k, v]) =>
    visible(k) + ": " + visible(k === "reason" && e.reasonText ? e.reasonText : String(v)));
  return el("span", { class: "details", text: lines.join("\n") });
}

// The share of an execution done: receive "k/n" while downloading, all once finished.
function progress(e) {
  if (e.status === "SUCCEEDED") return 100;
  const r = e.statusDetails && e.statusDetails.receive;
  const m = typeof r === "string" ? /^(\d+)\/(\d+)$/.exec(r) : null;
  if (m && Number(m[2]) > 0) return Math.min(100, Math.round((100 * Number(m[1])) / Number(m[2])));
  if (e.statusDetails && e.statusDetails.self_test) return 100;
  return 0;
}

function bar(e) {
  const p = progress(e);
  const b = el("span", { class: "bar " + e.status, title: p + " %", "data-thing": e.thing || "" },
    el("span"));
  b.firstChild.style.width = p + "%";
  return b;
}

async function api(method, path, body) {
  const headers = {};
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    if (otter.session) headers["X-CSRF-Token"] = otter.session.csrfToken;
  }
  const raw = body instanceof Blob;
  if (raw) headers["Content-Type"] = "application/octet-stream";
  const r = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: method === "GET" ? undefined : raw ? body : JSON.stringify(body || {}),
  });
  if (r.status === 401) {
    location.href = "/login.html";
    throw new Error("log in first");
  }
  const data = await r.json().catch(() => ({ code: "internal", message: "bad answer; try again" }));
  if (!r.ok) throw new Error(data.message || "request failed");
  return data;
}

function operator() {
  return otter.session && otter.session.role === "operator";
}

function param(name) {
  return new URLSearchParams(location.search).get(name) || "";
}

function showError(e) {
  const p = document.getElementById("error");
  if (p) p.textContent = e.message;
}

function header(page) {
  const nav = el("nav", {},
    el("a", { href: "/index.html", class: page === "fleet" ? "current" : "", text: "Fleet" }),
    el("a", { href: "/jobs.html", class: page === "jobs" ? "current" : "", text: "Jobs" }),
    el("a", { href: "/groups.html", class: page === "groups" ? "current" : "", text: "Groups" }),
    operator() ? el("a", { href: "/new-job.html", class: page === "new-job" ? "current" : "",
      id: "nav-new-job", text: "New job" }) : null);
  const out = el("button", { id: "logout", class: "plain", type: "button", text: "Log out" });
  out.addEventListener("click", async () => {
    try { await api("DELETE", "/api/v1/session"); } finally { location.href = "/login.html"; }
  });
  const who = el("span", { class: "who", id: "who",
    text: otter.session.user + " (" + otter.session.role + ")" }, out);
  document.body.prepend(el("header", {}, el("span", { class: "brand", text: "otter" }), nav, who));
}

// ---------------------------------------------------------------- pages --

async function pageFleet() {
  const things = await api("GET", "/api/v1/things");
  const body = document.getElementById("things");
  body.replaceChildren();
  for (const t of things) {
    const cur = t.currentJob;
    body.append(el("tr", { "data-thing": t.name },
      el("td", {}, el("a", { href: "/thing.html?name=" + encodeURIComponent(t.name), text: t.name })),
      el("td", { text: visible(t.firmwareVersion || t.version || "—"),
        title: t.firmwareVersion ? "reported by the device" : "from its last succeeded job" }),
      el("td", { text: visible(t.deviceType || "—") }),
      el("td", { text: t.groups.join(", ") || "—" }),
      presenceCell("td", t),
      el("td", { text: ago(t.lastReportAt), title: when(t.lastReportAt) }),
      el("td", {}, cur ? el("a", { href: "/job.html?id=" + encodeURIComponent(cur.jobId), text: cur.jobId }) : "—",
        cur ? " " : null, cur ? status(cur.status) : null, cur ? " " : null,
        cur ? details(cur) : null)));
  }
  const n = (p) => things.filter((t) => presenceOf(t) === p).length;
  document.getElementById("count").textContent = things.length + " things · " + n("online") +
    " online · " + n("unknown") + " unknown · " + n("offline") + " offline";
}

// A thing's presence: "online", "unknown" (the service's view had a gap since it was last
// known), "offline", or "never" (never seen).
function presenceOf(t) {
  return t.presence || (t.online ? "online" : (t.lastSeen ? "offline" : "never"));
}

function presenceCell(tag, t, id) {
  const p = presenceOf(t);
  const unknownOn = (t.presenceUnknownOn || []).join(", ");
  // what otter thing disable and otter thing revoke left: said before the presence
  const mark = t.revoked ? "revoked · " : t.disabled ? "disabled · " : "";
  const text = mark + (p === "online" ? "online"
    : p === "unknown" ? "unknown (seen " + ago(t.lastSeen) + ")"
    : p === "offline" ? "seen " + ago(t.lastSeen) : "never seen");
  const title = (unknownOn ? "not known on broker " + unknownOn + " since a gap in the " +
    "service's view; " : "") + "last seen " + when(t.lastSeen);
  const attrs = { class: "presence", "data-online": p === "online" ? "yes"
    : p === "unknown" ? "unknown" : "no", text: text, title: title };
  if (id) attrs.id = id;
  return el(tag, attrs);
}

async function pageThing() {
  const t = await api("GET", "/api/v1/things/" + encodeURIComponent(param("name")));
  document.getElementById("name").textContent = t.name;
  document.getElementById("summary").replaceChildren(
    el("p", {}, "Version: ", el("b", { text: t.firmwareVersion || t.version || "unknown" }),
      " · device type ", t.deviceType || "unknown", " · ",
      presenceCell("span", t, "presence"),
      " · groups: ", t.groups.join(", ") || "none", " · created ", when(t.createdAt),
      " · last report ", ago(t.lastReportAt)));
  renderAttributes(t.name, t.attributes);
  const body = document.getElementById("history");
  body.replaceChildren();
  const hist = t.history.slice().sort((a, b) => (b.queuedAt || 0) - (a.queuedAt || 0));
  for (const e of hist) {
    body.append(el("tr", {},
      el("td", {}, el("a", { href: "/job.html?id=" + encodeURIComponent(e.jobId), text: e.jobId })),
      el("td", { text: e.version || "—" }),
      el("td", {}, status(e.released || e.status !== "QUEUED" ? e.status : "HELD")),
      el("td", {}, details(e)),
      el("td", { text: when(e.queuedAt) }),
      el("td", { text: when(e.lastUpdatedAt) })));
  }
}

// A button that runs an API call, then redraws the page (errors shown, nothing lost).
function actionButton(text, attrs, ask, call, after) {
  const b = el("button", Object.assign({ type: "button", text }, attrs));
  b.addEventListener("click", async () => {
    if (ask && !confirm(ask)) return;
    try { await call(); showError({ message: "" }); await after(); } catch (e) { showError(e); }
  });
  return b;
}

// An operator's form (hidden from viewers), wired once: on submit, call(); then its
// inputs named in clear are emptied and the page redrawn; errors are shown, inputs kept.
function operatorForm(id, clear, call, after) {
  const form = document.getElementById(id);
  if (!operator() || form.dataset.ready) return;
  form.hidden = false;
  form.dataset.ready = "1";
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await call();
      for (const c of clear) document.getElementById(c).value = "";
      showError({ message: "" });
      await after();
    } catch (e) { showError(e); }
  });
}

function renderAttributes(thing, attrs) {
  const body = document.getElementById("attributes");
  const path = "/api/v1/things/" + encodeURIComponent(thing) + "/attributes/";
  body.replaceChildren();
  for (const [k, v] of Object.entries(attrs || {}).sort()) {
    body.append(el("tr", { "data-key": k },
      el("td", { text: visible(k) }), el("td", { class: "value", text: visible(v) }),
      el("td", {}, operator() ? actionButton("Remove", { class: "plain", "data-unset": k }, null,
        () => api("DELETE", path + encodeURIComponent(k)), pageThing) : null)));
  }
  operatorForm("set-attribute", ["attr-value"], () => api("PUT",
    path + encodeURIComponent(document.getElementById("attr-key").value.trim()),
    { value: document.getElementById("attr-value").value }), pageThing);
}

async function pageGroups() {
  const [groups, things] = await Promise.all([api("GET", "/api/v1/groups"), api("GET", "/api/v1/things")]);
  const box = document.getElementById("groups");
  box.replaceChildren();
  for (const g of groups) {
    const path = "/api/v1/groups/" + encodeURIComponent(g.name);
    const members = el("ul", { class: "members" });
    for (const m of g.members) {
      members.append(el("li", { "data-member": m },
        el("a", { href: "/thing.html?name=" + encodeURIComponent(m), text: m }),
        operator() && g.kind === "static" ? actionButton("Remove", { class: "plain", "data-remove": m },
          null, () => api("DELETE", path + "/members/" + encodeURIComponent(m)), pageGroups) : null));
    }
    let add = null;
    if (operator() && g.kind === "static") {
      const sel = el("select", { "data-add-select": g.name });
      for (const t of things.filter((x) => !g.members.includes(x.name))) {
        sel.append(el("option", { value: t.name, text: t.name }));
      }
      add = el("div", { class: "inline" }, sel, actionButton("Add", { "data-add": g.name }, null,
        () => api("PUT", path + "/members/" + encodeURIComponent(sel.value)), pageGroups));
    }
    box.append(el("section", { class: "group", "data-group": g.name },
      el("h2", {}, el("span", { text: g.name }), " ",
        el("span", { class: "muted", text: g.kind + " · " + g.size + (g.size === 1 ? " member" : " members") })),
      g.query ? el("p", {}, "Query: ", el("code", { class: "query", text: g.query })) : null,
      g.members.length ? members : el("p", { class: "muted", text: "no members" }),
      add,
      operator() ? actionButton("Delete group", { class: "danger", "data-delete": g.name },
        "Delete group " + g.name + "? The things stay.", () => api("DELETE", path), pageGroups) : null));
  }
  document.getElementById("count").textContent = groups.length + " groups";
  operatorForm("new-group", ["group-name", "group-query"], () => api("POST", "/api/v1/groups", {
    name: document.getElementById("group-name").value.trim(),
    query: document.getElementById("group-query").value.trim() || null }), pageGroups);
}

function countsLine(c) {
  return el("span", { class: "counts" },
    el("span", { text: "targets " + c.targets }), el("span", { text: "succeeded " + c.succeeded }),
    el("span", { text: "failed " + (c.failed + c.timedOut + c.rejected) }),
    el("span", { text: "in progress " + c.inProgress }),
    el("span", { text: "queued " + (c.queued + c.held) }), el("span", { text: "canceled " + c.canceled }),
    el("span", { text: "skipped " + c.skipped }));
}

function cancelButton(jobId, after) {
  const b = el("button", { class: "danger", type: "button", "data-cancel": jobId, text: "Cancel" });
  b.addEventListener("click", async () => {
    if (!confirm("Cancel job " + jobId + "? Devices not finished stop.")) return;
    try { await api("POST", "/api/v1/jobs/" + encodeURIComponent(jobId) + "/cancel"); after(); }
    catch (e) { showError(e); }
  });
  return b;
}

async function pageJobs() {
  const jobs = await api("GET", "/api/v1/jobs");
  const body = document.getElementById("jobs");
  body.replaceChildren();
  for (const j of jobs.slice().reverse()) {
    body.append(el("tr", { "data-job": j.jobId },
      el("td", {}, el("a", { href: "/job.html?id=" + encodeURIComponent(j.jobId), text: j.jobId })),
      el("td", {}, status(j.status)),
      el("td", { text: j.version || "—" }),
      el("td", {}, countsLine(j.counts)),
      el("td", { text: when(j.createdAt) }),
      el("td", {}, operator() && j.status === "IN_PROGRESS" ? cancelButton(j.jobId, pageJobs) : null)));
  }
}

// The rollout's phases: cumulative shares of the targets, the open one marked.
function phasesLine(r) {
  if (!r.phases.length) return "";
  const p = el("p", { id: "phases", class: "phases" }, "Phases (next opens at " +
    r.phaseSuccessPercent + " % succeeded): ");
  r.phases.forEach((pct, i) => {
    const state = i < r.currentPhase ? "done" : i === r.currentPhase ? "open" : "waiting";
    p.append(el("span", { class: "phase " + state, "data-phase": String(i),
      text: "#" + (i + 1) + " to " + pct + " % (" + state + ")" }), " ");
  });
  return p;
}

function renderJob(j) {
  document.getElementById("title").textContent = "Job " + j.jobId;
  const rules = [];
  if (j.rolloutRate) rules.push("rollout " + j.rolloutRate + " things per minute");
  if (j.abortFailurePercent) rules.push("abort at " + j.abortFailurePercent + " % failed once " +
    j.abortMinFinished + " finished");
  if (j.timeoutMinutes) rules.push("timeout " + j.timeoutMinutes + " min in progress");
  for (const a of j.abortRules) rules.push("abort at " + a.percent + " % " + a.failureType +
    " once " + a.minExecuted + " executed");
  const r = j.rollout;
  if (r.exponentialRate) rules.push("rate " + r.exponentialRate.basePerMinute + "/min ×" +
    r.exponentialRate.factor + " every " + r.exponentialRate.increaseEvery +
    (r.exponentialRate.onSucceeded ? " succeeded" : " notified"));
  if (r.startAt) rules.push("starts " + when(r.startAt));
  if (j.targetVersion) rules.push("skips things on " + j.targetVersion);
  if (j.deviceTypes) rules.push("for " + j.deviceTypes);
  const actions = document.getElementById("actions");
  actions.replaceChildren(operator() && j.status === "IN_PROGRESS" ?
    cancelButton(j.jobId, () => {}) : "");
  document.getElementById("summary").replaceChildren(
    el("p", {}, el("span", { id: "job-status" }, status(j.status)), " image ", j.imageId,
      " version ", el("b", { text: j.version || "?" }), " · created ", when(j.createdAt),
      j.completedAt ? " · ended " + when(j.completedAt) : ""),
    el("p", {}, countsLine(j.counts)),
    el("p", { class: "muted", text: rules.join(" · ") || "all targets at once, no abort rule" }),
    phasesLine(r), j.reasonCode ? el("p", { id: "job-reason", class: "reason" }, "Ended: ",
      el("b", { text: j.reasonCode }), j.reason ? " — " : "", j.reason || "") : "");
  const body = document.getElementById("executions");
  body.replaceChildren();
  for (const e of j.executions) {
    body.append(el("tr", { "data-thing": e.thing, "data-status": e.status },
      el("td", {}, el("a", { href: "/thing.html?name=" + encodeURIComponent(e.thing), text: e.thing })),
      el("td", {}, status(e.released || e.status !== "QUEUED" ? e.status : "HELD")),
      el("td", {}, bar(e), " ", progress(e) + " %"),
      el("td", {}, details(e)),
      el("td", { text: when(e.lastUpdatedAt) })));
  }
}

function pageJob() {
  const id = param("id");
  const live = document.getElementById("live");
  // The server pushes the job each time it changes (Server-Sent Events).
  const es = new EventSource("/api/v1/jobs/" + encodeURIComponent(id) + "/events");
  es.onopen = () => { live.textContent = "● live"; };
  es.onmessage = (m) => {
    const j = JSON.parse(m.data);
    renderJob(j);
    if (j.status !== "IN_PROGRESS") {
      es.close();
      live.textContent = "ended";
    }
  };
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) live.textContent = "";
  };
}

async function pageNewJob() {
  if (!operator()) {
    document.getElementById("new-job").replaceChildren(
      el("p", { text: "Creating jobs needs the operator role." }));
    return;
  }
  const [images, things, groups] = await Promise.all([
    api("GET", "/api/v1/images"), api("GET", "/api/v1/things"), api("GET", "/api/v1/groups")]);
  const sel = document.getElementById("image");
  for (const i of images.filter((x) => x.signed)) {
    sel.append(el("option", { value: i.imageId,
      text: (i.version || "?") + " — " + i.imageId + " (" + i.size + " bytes)" }));
  }
  const box = document.getElementById("target-list");
  for (const g of groups) {
    box.append(el("label", { class: "check" }, el("input", { type: "checkbox", value: "group:" + g.name }),
      " group " + g.name + " (" + g.size + ")"));
  }
  for (const t of things) {
    box.append(el("label", { class: "check" }, el("input", { type: "checkbox", value: t.name }), " " + t.name));
  }
  document.getElementById("new-job").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const targets = [...box.querySelectorAll("input:checked")].map((c) => c.value).join(",");
    const body = { image: sel.value, targets };
    for (const k of ["jobId", "rolloutRate", "timeoutMinutes", "abortFailurePercent", "abortMinFinished"]) {
      const v = document.getElementById(k).value.trim();
      if (v !== "") body[k] = v;
    }
    const file = document.getElementById("firmware").files[0];
    try {
      if (file) {
        // The server stores the file, then signs it with its own key into the job. It
        // answers a file over 16 MiB before reading it and closes the connection, which a
        // browser may report as a network error: said here first.
        if (file.size > 16 * 1024 * 1024) throw new Error("the firmware is over 16 MiB; upload a smaller file");
        const up = await api("POST", "/api/v1/uploads", file);
        delete body.image;
        body.upload = up.uploadId;
        body.version = document.getElementById("version").value.trim();
        // The fields of 'otter job create --file': the header the server writes checks them.
        for (const k of ["deviceTypes", "securityCounter", "deviceType"]) {
          const v = document.getElementById(k).value.trim();
          if (v !== "") body[k] = v;
        }
      }
      const j = await api("POST", "/api/v1/jobs", body);
      const url = "/job.html?id=" + encodeURIComponent(j.jobId);
      if (j.warnings && j.warnings.length) {
        showWarnings(j, url);
        return;
      }
      location.href = url;
    } catch (e) { showError(e); }
  });
}

// A job created with warnings (devices that confirmed an image with a higher
// security counter will refuse this one): the operator reads them here, with
// the way to the job, where it can be canceled before devices download it.
function showWarnings(j, url) {
  document.getElementById("create").disabled = true;
  const box = document.getElementById("warnings");
  box.replaceChildren(el("p", {}, el("b", { text: "Job " + j.jobId + " was created, but:" })));
  for (const w of j.warnings) box.append(el("p", { class: "warning-text", text: w.message }));
  box.append(el("p", {}, el("a", { id: "created-job", href: url, text: "Open job " + j.jobId }),
    " to watch it, or cancel it there before devices download the image."));
  box.hidden = false;
  box.scrollIntoView();
}

const pages = { fleet: pageFleet, thing: pageThing, jobs: pageJobs, job: pageJob, "new-job": pageNewJob,
  groups: pageGroups };

document.addEventListener("DOMContentLoaded", async () => {
  const page = document.body.dataset.page;
  if (!page) return;
  try {
    otter.session = await api("GET", "/api/v1/session");
    header(page);
    await pages[page]();
  } catch (e) {
    showError(e);
  }
});
