// pixcolor web page: editing colour hints. In hint mode a click on the photo places a hint; its
// popover offers the model's likely colours there (POST /api/results/{id}/suggest) and any
// colour; hints drag to move and delete (button, Delete or Backspace). Hints are in the photo's
// own pixels, as pixcolor's JSON: {"points": [{x, y, rgb, radius}]}. Previews, the full-size
// download, saving and loading are hint-preview.js's. Uses app.js's state and helpers.
"use strict";

const HINT_RADIUS = 3;          // the format's default half-side, in photo pixels
const DRAG_THRESHOLD_PX = 4;    // a press that moves less is a click

const hints = {
  editing: false,   // hint mode: the photo takes clicks instead of the before/after divider
  selected: null,   // the hint whose popover is open
  drag: null,       // {hint, marker, x, y, moved} while a marker is pressed
  timer: null,      // the debounced preview
  running: null,    // {item, version, controller} of the preview request in flight
  suggestSeq: 0,    // answers to older suggestion requests are dropped
  nextId: 1,
};

function hasHints(item) {
  return Boolean(item && item.hints.some((h) => h.rgb));
}

// The JSON of pixcolor.hints: coloured hints only (a new hint has none until one is chosen).
function hintsJson(list) {
  return {
    points: list.filter((h) => h.rgb).map((h) => ({ x: h.x, y: h.y, rgb: h.rgb, radius: h.radius })),
  };
}

// Whether the item's model follows hints, and if not the model's own reason.
function hintSupport(item) {
  const models = (state.limits && state.limits.models) || [];
  const name = (item.options && item.options.model) || (state.limits && state.limits.model);
  const model = models.find((m) => m.name === name) || {};
  if (item.hintsRefused) return { ok: false, note: item.hintsRefused };
  return { ok: model.hints !== false, note: model.hints_note || "" };
}

function toHex(rgb) {
  return `#${rgb.map((c) => c.toString(16).padStart(2, "0")).join("")}`;
}

function fromHex(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

// Called by showItem: the hint bar, the markers and the preview for the selected item.
function showHints(item) {
  closePopover();
  const done = item.status === "done";
  $("hint-bar").hidden = !done;
  const support = hintSupport(item);
  $("hints-toggle").disabled = !support.ok;
  $("hint-note").hidden = support.ok || !done;
  $("hint-note").textContent = support.ok ? "" :
    `Colour hints are not available with this model: ${support.note || "it takes no colour hints"}.`;
  setEditing(done && support.ok && hints.editing);
  updateHintInfo(item);
  if (done && hasHints(item) && !item.hintUrl) schedulePreview(item);
}

function setEditing(on) {
  hints.editing = on;
  $("compare").classList.toggle("editing", on);
  $("hint-layer").hidden = !on;
  $("hint-tools").hidden = !on;  // the photo's controls stay compact until hints are wanted
  $("hints-toggle").setAttribute("aria-pressed", String(on));
  $("hints-toggle").textContent = on ? "Compare before/after" : "Add colour hints";
  if (!on) closePopover();
  renderMarkers();
}

function updateHintInfo(item) {
  const n = item.hints.filter((h) => h.rgb).length;
  $("hint-info").textContent = n ? `${n} hint${n === 1 ? "" : "s"}` :
    hints.editing ? "Click the photo where you know the colour." : "";
  const support = hintSupport(item);
  $("hints-clear").disabled = !item.hints.length;
  $("hints-save").disabled = !n;
  $("hints-load").classList.toggle("disabled", !support.ok);
  $("hints-file").disabled = !support.ok;
}

function renderMarkers() {
  const item = state.selected;
  const layer = $("hint-layer");
  if (!item || !hints.editing) {
    layer.replaceChildren();
    return;
  }
  layer.replaceChildren(...item.hints.map((hint) => {
    const marker = document.createElement("button");
    marker.type = "button";
    marker.className = "hint-marker";
    marker.dataset.id = hint.id;
    placeMarker(marker, hint, item);
    marker.style.setProperty("--hint", hint.rgb ? toHex(hint.rgb) : "transparent");
    marker.classList.toggle("pending", !hint.rgb);
    marker.setAttribute("aria-pressed", String(hint === hints.selected));
    marker.setAttribute("aria-label",
      `Hint at ${Math.round(hint.x)}, ${Math.round(hint.y)}${hint.rgb ? `, colour ${toHex(hint.rgb)}` : ""}`);
    marker.addEventListener("pointerdown", (event) => pressMarker(event, hint, marker));
    marker.addEventListener("keydown", (event) => markerKeys(event, hint));
    return marker;
  }));
}

function placeMarker(marker, hint, item) {
  marker.style.left = `${((hint.x + 0.5) / item.sourceWidth) * 100}%`;
  marker.style.top = `${((hint.y + 0.5) / item.sourceHeight) * 100}%`;
}

// A pointer position as whole photo pixels, inside the photo.
function photoPoint(event, item) {
  const box = $("hint-layer").getBoundingClientRect();
  const fx = (event.clientX - box.left) / box.width;
  const fy = (event.clientY - box.top) / box.height;
  return {
    x: Math.min(item.sourceWidth - 1, Math.max(0, Math.floor(fx * item.sourceWidth))),
    y: Math.min(item.sourceHeight - 1, Math.max(0, Math.floor(fy * item.sourceHeight))),
  };
}

function addHint(event) {
  const item = state.selected;
  if (event.target !== $("hint-layer") || !item || item.status !== "done") return;
  const hint = { id: hints.nextId++, ...photoPoint(event, item), rgb: null, radius: HINT_RADIUS };
  item.hints.push(hint);
  selectHint(hint);
}

function pressMarker(event, hint, marker) {
  event.preventDefault();
  event.stopPropagation();
  marker.setPointerCapture(event.pointerId);
  marker.focus();
  hints.drag = { hint, marker, x: event.clientX, y: event.clientY, moved: false };
  marker.onpointermove = (move) => {
    const drag = hints.drag;
    if (!drag) return;
    if (!drag.moved && Math.hypot(move.clientX - drag.x, move.clientY - drag.y) < DRAG_THRESHOLD_PX) return;
    if (!drag.moved) hidePopover();  // not closePopover: redrawing the markers ends the drag
    drag.moved = true;
    Object.assign(hint, photoPoint(move, state.selected));
    placeMarker(marker, hint, state.selected);
  };
  marker.onpointerup = marker.onpointercancel = () => {
    const drag = hints.drag;
    hints.drag = null;
    marker.onpointermove = marker.onpointerup = marker.onpointercancel = null;
    if (!drag) return;
    if (drag.moved) hintsChanged(state.selected);
    if (drag.moved || hints.selected !== hint || $("hint-popover").hidden) selectHint(hint);
  };
}

// Arrow keys nudge the focused hint by one screen pixel's worth (ten with Shift).
function markerKeys(event, hint) {
  const steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  if (!(event.key in steps)) return;
  event.preventDefault();
  const item = state.selected;
  const box = $("hint-layer").getBoundingClientRect();
  const step = Math.max(1, Math.round(item.sourceWidth / box.width)) * (event.shiftKey ? 10 : 1);
  const [dx, dy] = steps[event.key];
  hint.x = Math.min(item.sourceWidth - 1, Math.max(0, hint.x + dx * step));
  hint.y = Math.min(item.sourceHeight - 1, Math.max(0, hint.y + dy * step));
  hintsChanged(item);
  document.querySelector(`.hint-marker[data-id="${hint.id}"]`)?.focus();
}

function selectHint(hint) {
  hints.selected = hint;
  renderMarkers();
  openPopover(hint);
}

function deleteHint(hint) {
  const item = state.selected;
  item.hints = item.hints.filter((h) => h !== hint);
  closePopover();
  hintsChanged(item);
}

function clearHints() {
  const item = state.selected;
  if (!item) return;
  item.hints = [];
  closePopover();
  hintsChanged(item);
}

function setHintColour(hint, rgb) {
  hint.rgb = rgb;
  $("hint-color").value = toHex(rgb);
  for (const swatch of $("hint-suggestions").children) {
    swatch.setAttribute("aria-pressed", String(swatch.dataset.hex === toHex(rgb)));
  }
  hintsChanged(state.selected);
}

// Every edit: markers and counts now, the preview after a pause.
function hintsChanged(item) {
  item.hintVersion += 1;
  item.hintedFile = null;
  renderMarkers();
  updateHintInfo(item);
  schedulePreview(item);
}

function openPopover(hint) {
  const item = state.selected;
  const popover = $("hint-popover");
  popover.hidden = false;
  $("hint-color").value = hint.rgb ? toHex(hint.rgb) : "#808080";
  $("hint-suggestions").replaceChildren();
  $("hint-suggest-note").textContent = "Finding likely colours…";
  positionPopover(hint, item);
  const seq = ++hints.suggestSeq;
  const others = item.hints.filter((h) => h !== hint);
  postJson(`/api/results/${encodeURIComponent(item.resultId)}/suggest`,
    { x: hint.x, y: hint.y, hints: hintsJson(others) })
    .then(async (response) => {
      if (seq !== hints.suggestSeq) return;  // another hint was chosen meanwhile
      if (!response.ok) throw new Error(await errorMessage(response));
      const { colors } = await response.json();
      showSuggestions(hint, colors);
    })
    .catch((err) => {
      if (seq === hints.suggestSeq) $("hint-suggest-note").textContent = `No suggestions (${err.message}); pick any colour.`;
    });
}

function showSuggestions(hint, colors) {
  $("hint-suggest-note").textContent = colors.length ? "" : "No suggestions here; pick any colour.";
  $("hint-suggestions").replaceChildren(...colors.map((rgb) => {
    const swatch = document.createElement("button");
    swatch.type = "button";
    swatch.className = "swatch";
    swatch.dataset.hex = toHex(rgb);
    swatch.style.background = toHex(rgb);
    swatch.title = swatch.dataset.hex;
    swatch.setAttribute("aria-label", `Colour ${swatch.dataset.hex}`);
    swatch.setAttribute("aria-pressed", String(Boolean(hint.rgb) && toHex(hint.rgb) === swatch.dataset.hex));
    swatch.addEventListener("click", () => setHintColour(hint, rgb));
    return swatch;
  }));
  if (!hint.rgb && colors.length) setHintColour(hint, colors[0]);  // a new hint: the likeliest
}

// Beside the marker, inside the result panel; above it when there is no room below.
function positionPopover(hint, item) {
  const popover = $("hint-popover");
  const panel = $("result").getBoundingClientRect();
  const layer = $("hint-layer").getBoundingClientRect();
  const x = layer.left + ((hint.x + 0.5) / item.sourceWidth) * layer.width - panel.left;
  const y = layer.top + ((hint.y + 0.5) / item.sourceHeight) * layer.height - panel.top;
  const { offsetWidth: w, offsetHeight: h } = popover;
  const left = x + 18 + w <= panel.width - 8 ? x + 18 : Math.max(8, x - 18 - w);
  const top = y + 18 + h <= layer.bottom - panel.top ? y + 18 : Math.max(8, y - 18 - h);
  popover.style.left = `${Math.min(left, Math.max(8, panel.width - w - 8))}px`;
  popover.style.top = `${top}px`;
}

function hidePopover() {
  hints.suggestSeq += 1;
  $("hint-popover").hidden = true;
}

function closePopover() {
  hidePopover();
  if (hints.selected) {
    hints.selected = null;
    renderMarkers();
  }
}

function hintKeys(event) {
  if (!hints.editing || !hints.selected) return;
  const typing = event.target.closest && event.target.closest("input, select, textarea");
  if ((event.key === "Delete" || event.key === "Backspace") && !typing) {
    event.preventDefault();
    deleteHint(hints.selected);
  } else if (event.key === "Escape") {
    closePopover();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("hint-layer").addEventListener("click", addHint);
  $("hints-toggle").addEventListener("click", () => setEditing(!hints.editing));
  $("hints-clear").addEventListener("click", clearHints);
  $("hints-save").addEventListener("click", saveHints);
  $("hints-file").addEventListener("change", (event) => {
    loadHints(event.target.files[0]);
    event.target.value = "";
  });
  $("hint-color").addEventListener("input", (event) => {
    if (hints.selected) setHintColour(hints.selected, fromHex(event.target.value));
  });
  $("hint-delete").addEventListener("click", () => hints.selected && deleteHint(hints.selected));
  $("hint-done").addEventListener("click", closePopover);
  document.addEventListener("keydown", hintKeys);
  window.addEventListener("resize", () => {
    if (hints.selected && state.selected) positionPopover(hints.selected, state.selected);
  });
});
