// pixcolor web page: getting results out. Each photo's file at its colour strength, in the
// chosen format (re-rendered by the server when either differs from the job's), one by one or
// all together as a zip (zip.js). Uses app.js's state and helpers.
"use strict";

const EXTENSIONS = { png: "png", jpeg: "jpg" };

function resultUrl(item, extra = {}) {
  const query = new URLSearchParams({ saturation: item.saturation, format: $("format").value, ...extra });
  return `/api/results/${encodeURIComponent(item.resultId)}?${query}`;
}

// The file for an item at its colour strength, in the chosen format (re-rendered if needed;
// with hints, colorized again at full size with them: hintedFile in hints.js).
async function resultFile(item) {
  const format = $("format").value;
  const name = `${stem(item.name)}-color.${EXTENSIONS[format]}`;
  if (hasHints(item)) return { name, blob: await hintedFile(item, format) };
  if (item.saturation === 1 && item.format === format) return { name, blob: item.blob };
  if (!item.resultId) throw new Error(`${item.name}: this result is too large to re-render; colorize it again.`);
  const response = await fetch(resultUrl(item));
  if (!response.ok) throw new Error(`${item.name}: ${await errorMessage(response)}`);
  return { name, blob: await response.blob() };
}

function saveBlob(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

async function download() {
  const item = state.selected;
  if (!item || item.status !== "done") return;
  try {
    const { name, blob } = await resultFile(item);
    saveBlob(blob, name);
  } catch (err) {
    showError(err.message);
  }
}

async function downloadAll() {
  const done = state.items.filter((it) => it.status === "done");
  announce(`Preparing ${done.length} photos…`);
  try {
    const files = [];
    const used = new Set();
    for (const item of done) {
      const { name, blob } = await resultFile(item);
      let unique = name;
      for (let n = 2; used.has(unique); n++) unique = name.replace(/(\.[^.]+)$/, `-${n}$1`);
      used.add(unique);
      files.push({ name: unique, data: new Uint8Array(await blob.arrayBuffer()) });
    }
    saveBlob(makeZip(files), "pixcolor-photos.zip");
    announce(`Zip of ${files.length} photos ready.`);
  } catch (err) {
    showError(err.message);
  }
}

function updateDownloadLabel() {
  $("download").textContent = `Download ${$("format").value === "jpeg" ? "JPEG" : "PNG"}`;
}
