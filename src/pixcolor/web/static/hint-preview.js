// pixcolor web page: what colour hints produce. Each edit re-runs the model with the hints at
// screen size (POST /api/results/{id}/preview): debounced, one request at a time, and answers
// that an edit has overtaken are dropped. Downloads colorize the full photo with the hints
// (POST /api/colorize with a hints field). Hints save and load as pixcolor's JSON. Uses
// app.js's state and helpers, hints.js's editor state and download.js's saveBlob.
"use strict";

const PREVIEW_DELAY_MS = 250;   // edits closer together than this make one preview

function postJson(url, body, signal) {
  return fetch(url, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal,
  });
}

function schedulePreview(item) {
  clearTimeout(hints.timer);
  $("hint-busy").hidden = false;
  hints.timer = setTimeout(() => {
    hints.timer = null;
    runPreview(item);
  }, PREVIEW_DELAY_MS);
}

// One preview request at a time; when it ends, a newer edit runs next and its answer is dropped.
async function runPreview(item) {
  if (hints.running) {
    if (hints.running.item !== item) hints.running.controller.abort();
    return;  // the request in flight checks the version when it ends
  }
  const version = item.hintVersion;
  if (!hasHints(item)) {  // back to the model's own result: nothing to run
    item.hintUrl = null;
    if (state.selected === item) {
      showItemImage(item, version, item.previewUrl || item.url);
      if (item.saturation !== 1) updatePreview();  // the kept result at the current strength
    }
    $("hint-busy").hidden = true;
    return;
  }
  const controller = new AbortController();
  hints.running = { item, version, controller };
  const started = performance.now();
  try {
    const url = await previewUrl(item, hintsJson(item.hints), controller.signal);
    if (item.hintVersion !== version) {
      URL.revokeObjectURL(url);  // stale: an edit came while it ran
    } else {
      if (item.hintUrl) URL.revokeObjectURL(item.hintUrl);
      item.hintUrl = url;
      if (state.selected === item) showItemImage(item, version, url, started);
    }
  } catch (err) {
    if (err.name !== "AbortError" && state.selected === item) showHintError(item, err.message);
  } finally {
    hints.running = null;
    const next = state.selected;
    if (next && next.status === "done" && !hints.timer &&
        (next.hintVersion !== version || next !== item) && (hasHints(next) || next.hintUrl)) {
      runPreview(next);
    } else if (!hints.timer) {
      $("hint-busy").hidden = true;
    }
  }
}

async function previewUrl(item, payload, signal) {
  const response = await postJson(`/api/results/${encodeURIComponent(item.resultId)}/preview`,
    { hints: payload, saturation: item.saturation }, signal);
  if (!response.ok) {
    const error = new Error(await errorMessage(response));
    error.status = response.status;
    throw error;
  }
  return URL.createObjectURL(await response.blob());
}

function showItemImage(item, version, url, started) {
  const after = $("after");
  if (after.src === url) {  // no load event for the same image
    after.dataset.hintVersion = String(version);
    return;
  }
  after.addEventListener("load", () => {
    after.dataset.hintVersion = String(version);
    if (started) document.body.dataset.previewMs = String(Math.round(performance.now() - started));
    if (!hints.timer && !hints.running) $("hint-busy").hidden = true;
  }, { once: true });
  after.src = url;
}

function showHintError(item, message) {
  showError(message);
  if (message.includes("takes no colour hints")) {  // the server knows better than /api/health
    item.hintsRefused = message;
    showHints(item);
  }
}

// The full-size file with the hints: the photo colorized again with them (kept for repeats).
async function hintedFile(item, format) {
  const key = JSON.stringify([hintsJson(item.hints), item.saturation, format]);
  if (item.hintedFile && item.hintedFile.key === key) return item.hintedFile.blob;
  const form = new FormData();
  form.append("image", item.file, item.name);
  for (const [field, value] of Object.entries(item.options || {})) form.append(field, value);
  form.append("format", format);
  form.append("saturation", String(item.saturation));
  form.append("hints", JSON.stringify(hintsJson(item.hints)));
  announce(`Colorizing ${item.name} at full size with its hints…`);
  const response = await fetch("/api/colorize", { method: "POST", body: form });
  if (!response.ok) throw new Error(`${item.name}: ${await errorMessage(response)}`);
  const blob = await response.blob();
  item.hintedFile = { key, blob };
  announce(`${item.name} colorized with ${hintsJson(item.hints).points.length} hints.`);
  return blob;
}

function saveHints() {
  const item = state.selected;
  if (!hasHints(item)) return;
  const text = `${JSON.stringify(hintsJson(item.hints), null, 2)}\n`;
  saveBlob(new Blob([text], { type: "application/json" }), `${stem(item.name)}-hints.json`);
}

// A hints file is checked by the server (a preview with it) before it replaces the hints.
async function loadHints(file) {
  const item = state.selected;
  if (!file || !item || item.status !== "done") return;
  showError("");
  let payload;
  try {
    payload = JSON.parse(await file.text());
  } catch (err) {
    showError(`${file.name}: not valid JSON (${err.message})`);
    return;
  }
  const points = payload && Array.isArray(payload.points) ? payload.points : null;
  if (!points) {
    showError(`${file.name}: no "points" list (expected {"points": [...]})`);
    return;
  }
  $("hint-busy").hidden = false;
  try {
    const url = await previewUrl(item, payload);
    item.hints = points.map((p) => ({
      id: hints.nextId++, x: p.x, y: p.y, rgb: p.rgb.map(Math.round), radius: p.radius ?? HINT_RADIUS,
    }));
    closePopover();
    hintsChanged(item);
    clearTimeout(hints.timer);  // the check was the preview
    hints.timer = null;
    if (item.hintUrl) URL.revokeObjectURL(item.hintUrl);
    item.hintUrl = url;
    showItemImage(item, item.hintVersion, url);
    if (!hints.editing) setEditing(true);
    announce(`Loaded ${points.length} hints from ${file.name}.`);
  } catch (err) {
    $("hint-busy").hidden = true;
    showError(`${file.name}: ${err.message.replace(/^hints: /, "")}`);
  }
}

