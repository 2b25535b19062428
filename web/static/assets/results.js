// Results: the grid (column types, NULL shown as such, long values cut with an expand button), the
// summary line, the error panel, and the CSV / JSON downloads. Values arrive as the API encodes them
// (README "Results"): numbers, strings (NUMERIC, big integers, timestamps…), booleans, JSON, null.

import { escapeHtml } from "./sql.js";

export const CUT_AT = 80; // characters of a cell shown before "more" (and never more than its first line)

/** The part of a long value the grid shows before "more", or null when the whole value is short enough. */
export function preview(text) {
  const newline = text.indexOf("\n");
  const end = Math.min(CUT_AT, newline < 0 ? text.length : newline);
  return end < text.length ? text.slice(0, end) : null;
}

/** One value as text: JSON for objects and arrays, true/false for booleans ("" for NULL). */
export function asText(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** Rows as arrays, whatever the result's shape. */
export function rowsOf(result) {
  return (result.records || []).map((record) =>
    Array.isArray(record) ? record : Object.values(record));
}

/** The result's rows as objects keyed by column name; a repeated name gets a suffix (id, id_2) as the API does. */
export function objectsOf(result) {
  const keys = [];
  const used = new Set();
  for (const column of result.columns || []) {
    let key = column.name;
    for (let n = 2; used.has(key); n++) key = `${column.name}_${n}`;
    used.add(key);
    keys.push(key);
  }
  return rowsOf(result).map((row) => Object.fromEntries(keys.map((key, i) => [key, row[i] ?? null])));
}

function csvField(text) {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** CSV as `rdsgate query --csv` writes it: a header row, NULL empty, objects as JSON, nothing cut. */
export function toCsv(result) {
  const lines = [(result.columns || []).map((c) => csvField(c.name)).join(",")];
  for (const row of rowsOf(result)) lines.push(row.map((v) => csvField(asText(v))).join(","));
  return lines.join("\n") + "\n";
}

/** JSON download: the rows as objects, one per record. */
export function toJson(result) {
  return JSON.stringify(objectsOf(result), null, 2) + "\n";
}

const NUMERIC = /^(int|float|numeric|decimal|double|real|bigint|smallint|tinyint|mediumint|integer|year|bit|serial|money)/i;

/** The summary line: rows, duration, truncation and rows changed. */
export function summary(result) {
  const rows = result.rowCount ?? (result.records || []).length;
  const parts = [`${rows} row${rows === 1 ? "" : "s"}`];
  if (result.updatedRows !== null && result.updatedRows !== undefined) {
    parts.push(`${result.updatedRows} updated`);
  }
  if (typeof result.durationMs === "number") parts.push(`${formatMs(result.durationMs)}`);
  return parts.join(" · ");
}

export function formatMs(ms) {
  return ms < 10 ? `${ms.toFixed(2)} ms` : ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** Fill `container` with the result grid. */
export function renderGrid(container, result) {
  const columns = result.columns || [];
  const rows = rowsOf(result);
  container.replaceChildren();
  if (!columns.length) {
    const note = document.createElement("p");
    note.className = "muted empty";
    note.textContent = result.updatedRows !== null && result.updatedRows !== undefined
      ? `Statement done: ${result.updatedRows} row${result.updatedRows === 1 ? "" : "s"} changed.`
      : "Statement done: it returns no columns.";
    container.append(note);
    return;
  }
  const numeric = columns.map((c) => NUMERIC.test(c.type || ""));
  const table = document.createElement("table");
  table.className = "grid";
  table.dataset.testid = "result-grid";
  const head = table.createTHead().insertRow();
  head.insertAdjacentHTML("beforeend", '<th class="rownum" scope="col">#</th>');
  for (const column of columns) {
    head.insertAdjacentHTML("beforeend", `<th scope="col" title="${escapeHtml(column.name)}: ${escapeHtml(column.type)}">` +
      `<span class="col-name">${escapeHtml(column.name)}</span>` +
      `<span class="col-type">${escapeHtml(column.type || "")}</span></th>`);
  }
  const body = table.createTBody();
  // Built as one HTML string: for thousands of cells this is much faster than node by node.
  let html = "";
  rows.forEach((row, r) => {
    html += `<tr><td class="rownum">${r + 1}</td>`;
    columns.forEach((column, c) => {
      const value = row[c];
      if (value === null || value === undefined) {
        html += '<td class="null" data-null="true">NULL</td>';
        return;
      }
      const text = asText(value);
      const classes = [typeof value === "number" || (numeric[c] && typeof value === "string") ? "num" : "",
        typeof value === "object" ? "json" : "", typeof value === "boolean" ? "bool" : ""].filter(Boolean);
      const cut = preview(text);
      if (cut !== null) {
        html += `<td class="${[...classes, "long"].join(" ")}"><span class="cell-text">${escapeHtml(cut)}</span>` +
          `<span class="ellipsis">…</span><button type="button" class="expand" data-full="${escapeHtml(text)}" ` +
          `title="${text.length} characters">more</button></td>`;
      } else {
        html += `<td${classes.length ? ` class="${classes.join(" ")}"` : ""}>${escapeHtml(text)}</td>`;
      }
    });
    html += "</tr>";
  });
  body.innerHTML = html;
  container.append(table);
}

/** Toggle a long cell between its cut and full text (the grid's click handler calls this). */
export function toggleCell(button) {
  const cell = button.closest("td");
  const text = cell.querySelector(".cell-text");
  const expanded = cell.classList.toggle("expanded");
  text.textContent = expanded ? button.dataset.full : preview(button.dataset.full);
  button.textContent = expanded ? "less" : "more";
}

/** Fill the error panel from an API error document ({"error": {...}}) or API Gateway's {"message"}. */
export function renderError(panel, failure) {
  const error = failure.error || {};
  const rows = [];
  if (error.sqlstate) rows.push(["SQLSTATE", error.sqlstate, "sqlstate"]);
  if (error.errno !== undefined && error.errno !== null) rows.push(["errno", String(error.errno), "errno"]);
  if (error.rule) rows.push(["rule", error.rule, "rule"]);
  if (error.field) rows.push(["field", error.field, "field"]);
  if (error.statement !== undefined && error.statement !== null) rows.push(["statement", String(error.statement), "statement"]);
  if (failure.status) rows.push(["HTTP", String(failure.status), "status"]);
  panel.innerHTML =
    `<div class="error-head"><strong class="error-code" data-testid="error-code">${escapeHtml(error.code || "Error")}</strong>` +
    `<span class="error-message" data-testid="error-message">${escapeHtml(error.message || "")}</span></div>` +
    (rows.length ? `<dl class="error-fields">${rows.map(([label, value, id]) =>
      `<dt>${escapeHtml(label)}</dt><dd data-testid="error-${id}">${escapeHtml(value)}</dd>`).join("")}</dl>` : "") +
    (error.hint ? `<div class="error-hint" data-testid="error-hint"><span>hint</span> ${escapeHtml(error.hint)}</div>` : "");
  panel.hidden = false;
}

/** Offer `text` as a file download. */
export function download(filename, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
