// pixcolor web page: pick a photo, POST it to /api/colorize, show a before/after slider.
// Vanilla JS, no build step; the server does all the work.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  file: null,        // the chosen File
  sourceUrl: null,   // object URL of the original
  resultUrl: null,   // object URL of the colorized PNG
  limits: null,      // /api/health answer
  busy: false,
  timer: null,
};

function setState(name) {
  document.body.dataset.state = name;
}

function formatBytes(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MB`;
  if (n >= 1 << 10) return `${Math.round(n / (1 << 10))} KB`;
  return `${n} bytes`;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function hideError() {
  $("error").hidden = true;
}

async function loadHealth() {
  try {
    const response = await fetch("/api/health");
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const health = await response.json();
    state.limits = health;
    $("model-info").textContent =
      `Model ${health.model} on ${health.device}; uploads up to ${formatBytes(health.max_upload_bytes)}.`;
    $("size-default").textContent = `Model default (${health.size} px)`;
  } catch (err) {
    $("model-info").textContent = `The server is not answering (${err.message}).`;
  }
}

function pickFile(file) {
  if (!file) return;
  hideError();
  const limit = state.limits && state.limits.max_upload_bytes;
  if (limit && file.size > limit) {
    showError(`${file.name} is ${formatBytes(file.size)}; the server accepts up to ${formatBytes(limit)}.`);
    return;
  }
  if (state.sourceUrl) URL.revokeObjectURL(state.sourceUrl);
  state.file = file;
  state.sourceUrl = URL.createObjectURL(file);
  $("file-name").textContent = file.name;
  $("run").disabled = false;
  colorize();
}

async function errorMessage(response) {
  let message = "";
  try {
    const body = await response.json();
    message = body.error || body.detail || "";
  } catch (_) {
    // not JSON: fall through to the status line
  }
  return message || `The server answered ${response.status} ${response.statusText}.`;
}

function startProgress() {
  const started = performance.now();
  const label = $("progress-text");
  const name = state.file.name;
  label.textContent = `Colorizing ${name}…`;
  state.timer = setInterval(() => {
    const seconds = ((performance.now() - started) / 1000).toFixed(0);
    label.textContent = `Colorizing ${name}… ${seconds} s`;
  }, 500);
}

async function colorize() {
  if (!state.file || state.busy) return;
  state.busy = true;
  $("run").disabled = true;
  hideError();
  setState("working");
  startProgress();
  const form = new FormData();
  form.append("image", state.file, state.file.name);
  form.append("size", $("size").value);
  form.append("upscale", $("upscale").value);
  try {
    const response = await fetch("/api/colorize", { method: "POST", body: form });
    if (!response.ok) throw new Error(await errorMessage(response));
    showResult(await response.blob());
  } catch (err) {
    const message = err instanceof TypeError
      ? "Could not reach the server (it may have stopped, or the upload was refused)."
      : err.message;
    showError(message);
    setState(state.resultUrl ? "done" : "idle");
  } finally {
    clearInterval(state.timer);
    state.busy = false;
    $("run").disabled = false;
  }
}

function showResult(blob) {
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = URL.createObjectURL(blob);
  const after = $("after");
  const before = $("before");
  after.onload = () => {
    const compare = $("compare");
    compare.style.setProperty("--ar", `${after.naturalWidth} / ${after.naturalHeight}`);
    compare.hidden = false;
    $("placeholder").hidden = true;
    $("result-bar").hidden = false;
    $("result-info").textContent =
      `${after.naturalWidth} × ${after.naturalHeight} px, ${formatBytes(blob.size)}`;
    setState("done");
  };
  after.onerror = () => {
    showError("The server sent a result this browser cannot display.");
    setState("idle");
  };
  before.src = state.sourceUrl;
  after.src = state.resultUrl;
  const stem = state.file.name.replace(/\.[^.]+$/, "") || "photo";
  const link = $("download");
  link.href = state.resultUrl;
  link.download = `${stem}-color.png`;
}

function setSplit(value) {
  $("compare").style.setProperty("--pos", `${value}%`);
}

function setUpDrop() {
  const drop = $("drop");
  // Stop the browser from opening a photo dropped anywhere on the page; take it instead.
  for (const type of ["dragenter", "dragover"]) {
    window.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add("dragging");
    });
  }
  window.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) drop.classList.remove("dragging");
  });
  window.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("dragging");
    const files = event.dataTransfer && event.dataTransfer.files;
    if (files && files.length) pickFile(files[0]);
  });
  window.addEventListener("paste", (event) => {
    const files = event.clipboardData && event.clipboardData.files;
    if (files && files.length) pickFile(files[0]);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("file").addEventListener("change", (event) => {
    pickFile(event.target.files[0]);
    event.target.value = "";  // choosing the same file again still fires "change"
  });
  $("run").addEventListener("click", colorize);
  $("split").addEventListener("input", (event) => setSplit(event.target.value));
  setSplit($("split").value);
  setUpDrop();
  loadHealth();
});
