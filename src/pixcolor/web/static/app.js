// pixcolor web page: a queue of photos, each POSTed in turn to /api/colorize; the selected one
// is shown in a before/after slider with its own input only; colour hints are hints.js's.
// Vanilla JS, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const STATUS_TEXT = {
  waiting: "waiting", working: "colorizing…", done: "done", failed: "failed", cancelled: "cancelled",
};

const state = {
  items: [],         // every photo chosen, in order (see newItem)
  selected: null,    // the item shown in the result panel
  running: null,     // the item being colorized
  controller: null,  // AbortController of the running request
  limits: null,      // /api/health answer
  timer: null,
  nextId: 1,
  preview: { busy: false, again: false },
};

function newItem(file) {
  return {
    id: state.nextId++, file, name: file.name || "photo", sourceUrl: URL.createObjectURL(file),
    status: "waiting", error: "", resultId: null, blob: null, url: null, format: "png",
    width: 0, height: 0, saturation: 1, previewUrl: null,
    options: null,                     // model, size and upscale the result was made with
    sourceWidth: 0, sourceHeight: 0,   // the photo's own size (hints are in its pixels)
    hints: [], hintVersion: 0, hintUrl: null, hintedFile: null,  // see hints.js
  };
}

function stem(name) {
  return name.replace(/\.[^.]+$/, "") || "photo";
}

function formatBytes(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MB`;
  if (n >= 1 << 10) return `${Math.round(n / (1 << 10))} KB`;
  return `${n} bytes`;
}

function announce(message) {
  $("status").textContent = message;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function loadHealth() {
  try {
    const response = await fetch("/api/health");
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const health = await response.json();
    state.limits = health;
    const select = $("model");
    select.replaceChildren(...health.models.map((m) => new Option(m.name, m.name)));
    $("model-info").textContent =
      `Model ${health.model} on ${health.device}; uploads up to ${formatBytes(health.max_upload_bytes)}.`;
    const sizes = [health.size, ...health.extra_sizes].join(" + ");
    $("size-default").textContent = `Model default (${sizes} px)`;
  } catch (err) {
    $("model-info").textContent = `The server is not answering (${err.message}).`;
  }
}

function addFiles(fileList) {
  const files = Array.from(fileList || []);
  if (!files.length) return;
  const limit = state.limits && state.limits.max_upload_bytes;
  const added = files.map((file) => {
    const item = newItem(file);
    if (limit && file.size > limit) {
      item.status = "failed";
      item.error = `${item.name} is ${formatBytes(file.size)}; the server accepts up to ${formatBytes(limit)}.`;
    }
    state.items.push(item);
    return item;
  });
  select(added[0]);
  renderQueue();
  pump();
}

function jobForm(item) {
  const form = new FormData();
  form.append("image", item.file, item.name);
  item.options = {};
  for (const field of ["model", "size", "upscale"]) item.options[field] = $(field).value;
  for (const field of ["model", "size", "upscale", "format"]) form.append(field, $(field).value);
  return form;
}

async function errorMessage(response) {
  let message = "";
  try {
    const body = await response.json();
    message = body.error || body.detail || "";
  } catch (_) {
    // not JSON (e.g. the server's plain-text 503): fall through to the status line
  }
  return message || `The server answered ${response.status} ${response.statusText}.`;
}

// Colorize waiting photos one at a time, in the order they were chosen.
async function pump() {
  if (state.running) return;
  const item = state.items.find((it) => it.status === "waiting");
  if (!item) {
    setWorking(false);
    // The queue's end changes the layout above the result (Download all): bring it back.
    if (state.selected && !$("compare").hidden) scrollResultIntoView();
    return;
  }
  state.running = item;
  state.controller = new AbortController();
  item.status = "working";
  item.format = $("format").value;
  setWorking(true, item);
  renderQueue();
  if (item === state.selected) showItem(item);
  try {
    const response = await fetch("/api/colorize", {
      method: "POST", body: jobForm(item), signal: state.controller.signal,
    });
    if (!response.ok) throw new Error(await errorMessage(response));
    const blob = await response.blob();
    const [width, height] = (response.headers.get("X-Image-Size") || "0x0").split("x").map(Number);
    const source = response.headers.get("X-Source-Size") || `${width}x${height}`;
    const [sourceWidth, sourceHeight] = source.split("x").map(Number);
    Object.assign(item, {
      status: "done", blob, url: URL.createObjectURL(blob), width, height, sourceWidth, sourceHeight,
      resultId: response.headers.get("X-Result-Id"),
    });
    announce(`${item.name} colorized: ${width} × ${height} px.`);
  } catch (err) {
    if (item.status !== "cancelled") {  // cancelAll has already said so
      item.status = "failed";
      item.error = err instanceof TypeError
        ? "Could not reach the server (it may have stopped, or the upload was refused)."
        : err.message;
      announce(`${item.name} failed: ${item.error}`);
    }
  } finally {
    state.running = null;
    state.controller = null;
    renderQueue();
    if (item === state.selected) showItem(item, { scroll: item.status === "done" });
    pump();
  }
}

function setWorking(working, item) {
  clearInterval(state.timer);
  $("cancel").hidden = !working;
  if (!working) {
    const shown = state.selected && state.selected.status === "done" && !$("compare").hidden;
    document.body.dataset.state = shown ? "done" : "idle";
    return;
  }
  document.body.dataset.state = "working";
  const started = performance.now();
  const waiting = state.items.filter((it) => it.status === "waiting").length;
  const label = () => {
    const seconds = ((performance.now() - started) / 1000).toFixed(0);
    const more = waiting ? ` (${waiting} more waiting)` : "";
    $("progress-text").textContent = `Colorizing ${item.name}… ${seconds} s${more}`;
  };
  label();
  state.timer = setInterval(label, 500);
}

function cancelAll() {
  const stopped = state.items.filter((it) => it.status === "waiting" || it.status === "working");
  for (const item of stopped) item.status = "cancelled";
  if (state.controller) state.controller.abort();
  announce(`Cancelled ${stopped.length} photo${stopped.length === 1 ? "" : "s"}.`);
  renderQueue();
  setWorking(false);
  if (state.selected) showItem(state.selected);
}

function select(item) {
  state.selected = item;
  showItem(item);
  renderQueue();
}

// The result panel shows the selected item only: its own input, its own result, or its error.
function showItem(item, { scroll = false } = {}) {
  const done = item.status === "done";
  if (!state.running) document.body.dataset.state = "idle";  // "done" once the result shows
  $("run").disabled = item.status === "working";
  showError(item.status === "failed" ? item.error : "");
  $("result-bar").hidden = true;
  $("compare").hidden = true;
  $("placeholder").hidden = false;
  $("placeholder").textContent = {
    waiting: `${item.name} is waiting its turn.`,
    working: `Colorizing ${item.name}…`,
    failed: `${item.name} could not be colorized.`,
    cancelled: `${item.name} was cancelled. Choose "Colorize again" to run it.`,
  }[item.status] || "";
  showHints(item);
  if (!done) return;
  $("strength").value = Math.round(item.saturation * 100);
  $("strength-value").textContent = `${$("strength").value}%`;
  const after = $("after");
  after.onload = () => {
    if (state.selected !== item) return;  // another photo was chosen meanwhile
    const compare = $("compare");
    compare.style.setProperty("--ar", `${item.width} / ${item.height}`);
    compare.hidden = false;
    $("placeholder").hidden = true;
    $("result-bar").hidden = false;
    $("result-info").textContent = `${item.name}: ${item.width} × ${item.height} px`;
    updateDownloadLabel();
    if (!state.running) document.body.dataset.state = "done";
    if (scroll) {
      scroll = false;  // once, not on every colour-strength preview
      scrollResultIntoView();
    }
  };
  after.onerror = () => {
    if (state.selected === item) showError("The server sent a result this browser cannot display.");
  };
  $("before").src = item.sourceUrl;
  after.src = item.hintUrl || item.previewUrl || item.url;
}

function scrollResultIntoView() {
  const bar = $("result-bar").getBoundingClientRect();
  const panel = $("result").getBoundingClientRect();
  if (panel.top >= 0 && bar.bottom <= window.innerHeight) return;
  // Phones: the result sits below the controls; bring the photo and its Download button up.
  $("result").scrollIntoView({ block: panel.height <= window.innerHeight ? "end" : "start" });
}

function renderQueue() {
  const list = $("queue");
  list.replaceChildren(...state.items.map((item) => {
    const row = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "queue-item";
    button.dataset.status = item.status;
    button.setAttribute("aria-current", item === state.selected ? "true" : "false");
    const name = document.createElement("span");
    name.className = "queue-name";
    name.textContent = item.name;
    const status = document.createElement("span");
    status.className = "queue-status";
    status.textContent = STATUS_TEXT[item.status];
    button.append(name, status);
    button.addEventListener("click", () => select(item));
    row.append(button);
    return row;
  }));
  $("queue-box").hidden = state.items.length < 2;
  $("download-all").hidden = state.items.filter((it) => it.status === "done").length < 2;
}

function rerun() {
  const item = state.selected;
  if (!item || item.status === "working") return;
  for (const url of [item.url, item.previewUrl]) if (url) URL.revokeObjectURL(url);
  Object.assign(item, {
    status: "waiting", error: "", saturation: 1, url: null, previewUrl: null, resultId: null,
    hintUrl: null, hintedFile: null,
  });
  showItem(item);
  renderQueue();
  pump();
}

// Colour strength: the server re-renders its kept result; the model does not run again.
async function updatePreview() {
  const item = state.selected;
  if (!item || item.status !== "done") return;
  item.saturation = Number($("strength").value) / 100;
  $("strength-value").textContent = `${$("strength").value}%`;
  if (hasHints(item)) {  // the model runs again with the hints at this strength
    schedulePreview(item);
    return;
  }
  if (state.preview.busy) {
    state.preview.again = true;
    return;
  }
  if (item.saturation === 1 || !item.resultId) {
    item.previewUrl = null;
    if (!item.resultId && item.saturation !== 1) showError("This result is too large to re-render; colorize it again.");
    $("after").src = item.url;
    return;
  }
  state.preview.busy = true;
  try {
    const response = await fetch(resultUrl(item, { preview: 1 }));
    if (!response.ok) throw new Error(await errorMessage(response));
    if (item.previewUrl) URL.revokeObjectURL(item.previewUrl);
    item.previewUrl = URL.createObjectURL(await response.blob());
    if (state.selected === item) $("after").src = item.previewUrl;
  } catch (err) {
    showError(err.message);
  } finally {
    state.preview.busy = false;
    if (state.preview.again) {
      state.preview.again = false;
      updatePreview();
    }
  }
}

function setSplit(value) {
  const clamped = Math.min(100, Math.max(0, value));
  $("split").value = clamped;
  $("compare").style.setProperty("--pos", `${clamped}%`);
}

// Keyboard: 5% per arrow key, 25% per Page Up/Down, Home/End to the ends.
function splitKeys(event) {
  const steps = { ArrowLeft: -5, ArrowDown: -5, ArrowRight: 5, ArrowUp: 5, PageDown: -25, PageUp: 25 };
  const current = Number($("split").value);
  let next = null;
  if (event.key in steps) next = Math.round((current + steps[event.key]) / 5) * 5;
  if (event.key === "Home") next = 0;
  if (event.key === "End") next = 100;
  if (next === null) return;
  event.preventDefault();
  setSplit(next);
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
    addFiles(event.dataTransfer && event.dataTransfer.files);
  });
  window.addEventListener("paste", (event) => addFiles(event.clipboardData && event.clipboardData.files));
}

document.addEventListener("DOMContentLoaded", () => {
  $("file").addEventListener("change", (event) => {
    addFiles(event.target.files);
    event.target.value = "";  // choosing the same file again still fires "change"
  });
  $("run").addEventListener("click", rerun);
  $("cancel").addEventListener("click", cancelAll);
  $("download").addEventListener("click", download);
  $("download-all").addEventListener("click", downloadAll);
  $("format").addEventListener("change", updateDownloadLabel);
  $("strength").addEventListener("input", updatePreview);
  $("split").addEventListener("input", (event) => setSplit(Number(event.target.value)));
  $("split").addEventListener("keydown", splitKeys);
  setSplit(50);
  setUpDrop();
  loadHealth();
});
