// The rdsgate console: pick a connection, write SQL with :name parameters, run it, read the result.
// Plain ES modules, no framework; state lives in this module and in the browser's storage.

import { Api, loadConfig } from "./api.js";
import { completionsAt, escapeHtml, highlight, parameterNames, parameterValue } from "./sql.js";
import { download, formatMs, renderError, renderGrid, summary, toCsv, toggleCell, toJson } from "./results.js";
import { BackgroundStatement, describeProgress, sizeText } from "./statements.js";
import { setupRunbooks } from "./runbooks.js";

const HISTORY_KEY = "rdsgate.console.history";
const DRAFT_KEY = "rdsgate.console.draft";
const CONNECTION_KEY = "rdsgate.console.connection";
const HISTORY_MAX = 200;
const TYPE_HINTS = ["", "DATE", "TIME", "TIMESTAMP", "DECIMAL", "UUID", "JSON"];

const $ = (id) => document.getElementById(id);
const ui = {};
const state = {
  api: null,
  config: null,
  connections: [],
  connection: null, // the selected connection's summary {name, engine, description, read_only}
  schemas: new Map(), // connection name → schema document
  params: new Map(), // parameter name → {value, hint}
  paramNames: [],
  result: null, // the last successful result, for the downloads
  running: false,
  background: null, // the BackgroundStatement being run, if any
  completion: null, // {from, to, items, index}
};

// -- start-up ------------------------------------------------------------------------------------

async function start() {
  for (const id of ["connection", "connection-badges", "identity", "sign-in", "sign-out", "credentials-button",
    "schema-tree", "schema-filter", "schema-status", "schema-refresh", "history-list", "history-clear",
    "tab-schema", "tab-history", "schema-panel", "history-panel", "sql", "editor-highlight", "editor-mirror",
    "completions", "parameters", "run", "max-rows", "status", "download-csv", "download-json", "error", "result",
    "credentials-dialog", "credentials-text", "credentials-error", "credentials-save", "credentials-cancel",
    "signed-out", "workspace", "run-key", "run-async", "cancel-statement", "download-statement"]) {
    ui[id.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = $(id);
  }
  ui.runKey.textContent = /Mac|iPhone|iPad/.test(navigator.platform) ? "⌘ Enter" : "Ctrl Enter";
  restoreDraft();
  bindEditor();
  bindPage();
  renderHistory();
  try {
    state.config = await loadConfig();
  } catch (error) {
    showStatus(`Cannot load the console's configuration: ${error.message}`, "error");
    return;
  }
  state.api = new Api(state.config);
  await signInFlow();
}

async function signInFlow() {
  const { auth } = state.api;
  ui.signIn.hidden = ui.signOut.hidden = ui.credentialsButton.hidden = true;
  if (!auth) {
    const identity = state.config.identity || "";
    ui.identity.textContent = `local · ${identity.split(":").pop() || "no auth"}`;
    ui.identity.title = `unsigned requests run as ${identity}`;
  } else if (state.config.auth === "sigv4") {
    ui.credentialsButton.hidden = false;
    ui.identity.textContent = auth.describe();
    if (!auth.signedIn) {
      openCredentials();
      return;
    }
  } else {
    try {
      await auth.completeSignIn();
    } catch (error) {
      showStatus(error.message, "error");
    }
    if (!auth.signedIn) {
      ui.signedOut.hidden = false;
      ui.workspace.classList.add("locked");
      ui.signIn.hidden = false;
      return;
    }
    ui.signedOut.hidden = true;
    ui.workspace.classList.remove("locked");
    ui.signOut.hidden = false;
    ui.identity.textContent = auth.describe();
  }
  await loadConnections();
}

// -- connections and schema ------------------------------------------------------------------------

async function loadConnections() {
  const { ok, data } = await state.api.get("/connections");
  if (!ok) {
    renderError(ui.error, data);
    if (data.error?.code === "SignInRequired" && state.config.auth === "sigv4") openCredentials();
    return;
  }
  state.connections = data.connections || [];
  setupRunbooks(state.api, ui); // the Runbooks tab (runbooks.js)
  ui.connection.replaceChildren();
  for (const c of state.connections) {
    const option = new Option(`${c.name} — ${c.engine}${c.read_only ? " · read-only" : ""}`, c.name);
    option.title = c.description || "";
    ui.connection.add(option);
  }
  if (!state.connections.length) {
    showStatus("No connection allows you: ask for your role to be added to a definition's allowed_principals.", "warn");
    return;
  }
  const remembered = localStorage.getItem(CONNECTION_KEY);
  const initial = state.connections.find((c) => c.name === remembered) || state.connections[0];
  ui.connection.value = initial.name;
  await selectConnection(initial.name);
}

async function selectConnection(name) {
  state.connection = state.connections.find((c) => c.name === name) || null;
  if (!state.connection) return;
  localStorage.setItem(CONNECTION_KEY, name);
  const c = state.connection;
  ui.connectionBadges.innerHTML =
    `<span class="badge engine" data-testid="engine">${escapeHtml(c.engine)}</span>` +
    (c.read_only ? '<span class="badge readonly" data-testid="read-only">read-only</span>'
      : '<span class="badge readwrite" data-testid="read-write">read-write</span>') +
    (c.description ? `<span class="description">${escapeHtml(c.description)}</span>` : "");
  refreshEditor();
  await loadSchema(name);
}

async function loadSchema(name, force = false) {
  if (!force && state.schemas.has(name)) {
    renderSchema();
    return;
  }
  ui.schemaStatus.textContent = "Loading…";
  ui.schemaTree.replaceChildren();
  const { ok, data } = await state.api.get(`/connections/${encodeURIComponent(name)}/schema`);
  if (state.connection?.name !== name) return; // another connection was picked meanwhile
  if (!ok) {
    ui.schemaStatus.textContent = `${data.error?.code || "Error"}: ${data.error?.message || ""}`;
    return;
  }
  state.schemas.set(name, data);
  renderSchema();
}

function renderSchema() {
  const schema = state.schemas.get(state.connection?.name);
  if (!schema) return;
  const filter = ui.schemaFilter.value.trim().toLowerCase();
  const matches = (text) => !filter || text.toLowerCase().includes(filter);
  let html = "";
  let tables = 0;
  for (const s of schema.schemas || []) {
    let inner = "";
    for (const t of s.tables || []) {
      const columns = t.columns || [];
      const columnHits = columns.filter((c) => matches(c.name));
      if (!matches(t.name) && !columnHits.length) continue;
      tables += 1;
      const shown = matches(t.name) ? columns : columnHits;
      const kind = /view/i.test(t.type || "") ? "view" : "table";
      inner += `<li class="tree-table" role="treeitem"><details${filter ? " open" : ""}>` +
        `<summary data-insert="${escapeHtml(t.name)}" title="${escapeHtml(`${s.name}.${t.name}`)} (${escapeHtml(t.type || "")}): double-click inserts">` +
        `<span class="icon ${kind}" aria-hidden="true"></span><span class="name">${escapeHtml(t.name)}</span>` +
        `<span class="kind">${kind}</span></summary><ul role="group">` +
        shown.map((c) => `<li class="tree-column" role="treeitem" data-insert="${escapeHtml(c.name)}" title="click inserts">` +
          `<span class="name">${escapeHtml(c.name)}</span><span class="type">${escapeHtml(c.type)}</span>` +
          `${c.nullable === false ? '<span class="notnull" title="NOT NULL">not null</span>' : ""}</li>`).join("") +
        "</ul></details></li>";
    }
    if (inner || matches(s.name)) {
      html += `<li class="tree-schema" role="treeitem"><details open><summary><span class="icon schema" aria-hidden="true"></span>` +
        `<span class="name">${escapeHtml(s.name)}</span></summary><ul role="group">${inner}</ul></details></li>`;
    }
  }
  ui.schemaTree.innerHTML = html;
  ui.schemaStatus.textContent = schema.truncated ? `${tables} tables (the catalog was cut: too many to list)`
    : `${tables} table${tables === 1 ? "" : "s"}${filter ? " match" : ""}`;
}

// -- the editor --------------------------------------------------------------------------------------

function dialect() {
  return /mysql|maria/i.test(state.connection?.engine || "") ? "mysql" : "postgres";
}

function bindEditor() {
  const sql = ui.sql;
  sql.addEventListener("input", () => {
    refreshEditor();
    saveDraft();
    updateCompletions(false);
  });
  sql.addEventListener("scroll", syncScroll);
  sql.addEventListener("blur", () => setTimeout(closeCompletions, 150));
  sql.addEventListener("click", closeCompletions);
  sql.addEventListener("keydown", (event) => {
    const open = state.completion && !ui.completions.hidden;
    if (open && ["ArrowDown", "ArrowUp"].includes(event.key)) {
      event.preventDefault();
      const count = state.completion.items.length;
      state.completion.index = (state.completion.index + (event.key === "ArrowDown" ? 1 : count - 1)) % count;
      renderCompletions();
    } else if (open && (event.key === "Tab" || (event.key === "Enter" && !event.ctrlKey && !event.metaKey))) {
      event.preventDefault();
      acceptCompletion(state.completion.index);
    } else if (open && event.key === "Escape") {
      event.preventDefault();
      closeCompletions();
    } else if (open && ["ArrowLeft", "ArrowRight", "Home", "End", "PageUp", "PageDown"].includes(event.key)) {
      closeCompletions();
    } else if (event.key === " " && event.ctrlKey) {
      event.preventDefault();
      updateCompletions(true);
    } else if (event.key === "Tab" && !event.shiftKey) {
      event.preventDefault();
      document.execCommand("insertText", false, "  ");
    }
  });
  ui.completions.addEventListener("mousedown", (event) => {
    const item = event.target.closest("li[data-index]");
    if (item) {
      event.preventDefault();
      acceptCompletion(Number(item.dataset.index));
    }
  });
}

function refreshEditor() {
  const text = ui.sql.value;
  ui.editorHighlight.innerHTML = highlight(text, dialect());
  syncScroll();
  renderParameters(parameterNames(text, dialect()));
}

function syncScroll() {
  ui.editorHighlight.scrollTop = ui.sql.scrollTop;
  ui.editorHighlight.scrollLeft = ui.sql.scrollLeft;
}

function renderParameters(names) {
  if (names.join("\n") === state.paramNames.join("\n")) return; // keep focus and typing undisturbed
  state.paramNames = names;
  ui.parameters.replaceChildren();
  ui.parameters.hidden = !names.length;
  for (const name of names) {
    const saved = state.params.get(name) || { value: "", hint: "" };
    state.params.set(name, saved);
    const row = document.createElement("label");
    row.className = "parameter";
    row.innerHTML = `<code>:${escapeHtml(name)}</code>` +
      `<input type="text" data-param="${escapeHtml(name)}" placeholder="text, or JSON: 42, true, null" spellcheck="false">` +
      `<select data-hint="${escapeHtml(name)}" title="type hint">${TYPE_HINTS.map((h) =>
        `<option value="${h}">${h || "no hint"}</option>`).join("")}</select>`;
    const input = row.querySelector("input");
    const hint = row.querySelector("select");
    input.value = saved.value;
    hint.value = saved.hint;
    input.addEventListener("input", () => {
      saved.value = input.value;
      saveDraft();
    });
    hint.addEventListener("change", () => {
      saved.hint = hint.value;
      saveDraft();
    });
    ui.parameters.append(row);
  }
}

function updateCompletions(explicit) {
  const schema = state.schemas.get(state.connection?.name);
  const { selectionStart, selectionEnd, value } = ui.sql;
  if (selectionStart !== selectionEnd) return closeCompletions();
  const found = completionsAt(value, selectionStart, schema, dialect(), { explicit });
  if (!found) return closeCompletions();
  state.completion = { ...found, index: 0 };
  renderCompletions();
}

function renderCompletions() {
  const { items, index, from } = state.completion;
  ui.completions.innerHTML = items.map((item, i) =>
    `<li role="option" data-index="${i}" class="${i === index ? "active" : ""} kind-${item.kind}"` +
    `${i === index ? ' aria-selected="true"' : ""}><span class="label">${escapeHtml(item.label)}</span>` +
    `<span class="detail">${escapeHtml(item.detail || "")}</span></li>`).join("");
  const at = caretPosition(from);
  ui.completions.style.left = `${at.left}px`;
  ui.completions.style.top = `${at.top}px`;
  ui.completions.hidden = false;
  ui.completions.querySelector(".active")?.scrollIntoView({ block: "nearest" });
}

function closeCompletions() {
  state.completion = null;
  ui.completions.hidden = true;
  ui.completions.replaceChildren();
}

function acceptCompletion(index) {
  const { from, to, items } = state.completion;
  ui.sql.focus();
  ui.sql.setSelectionRange(from, to);
  document.execCommand("insertText", false, items[index].label); // keeps the browser's undo history
  closeCompletions();
}

/** Where the text position `offset` is drawn, relative to the editor (for the completion list). */
function caretPosition(offset) {
  const mirror = ui.editorMirror;
  mirror.innerHTML = `${escapeHtml(ui.sql.value.slice(0, offset))}<span class="mark">\u200b</span>`;
  const mark = mirror.querySelector(".mark");
  return {
    left: Math.max(0, mark.offsetLeft - ui.sql.scrollLeft),
    top: mark.offsetTop - ui.sql.scrollTop + mark.offsetHeight + 2,
  };
}

function insertAtCaret(text) {
  ui.sql.focus();
  document.execCommand("insertText", false, text);
}

// -- running a statement ---------------------------------------------------------------------------

/** The statement to run (the selection, else the whole text) with its parameters, as the API's body. */
function requestBody() {
  const { selectionStart, selectionEnd, value } = ui.sql;
  const sql = selectionEnd > selectionStart ? value.slice(selectionStart, selectionEnd) : value;
  if (!sql.trim()) return null;
  const names = parameterNames(sql, dialect());
  const parameters = {};
  const typeHints = {};
  for (const name of names) {
    const { value: text = "", hint = "" } = state.params.get(name) || {};
    parameters[name] = parameterValue(text);
    if (hint) typeHints[name] = hint;
  }
  const body = { sql, shape: "arrays" };
  if (names.length) body.parameters = parameters;
  if (Object.keys(typeHints).length) body.typeHints = typeHints;
  return body;
}

/** Run the statement as an asynchronous statement: status, Cancel, the first page, Download result. */
async function runInBackground() {
  if (state.running || !state.connection) return;
  const body = requestBody();
  if (!body) return;
  const connection = state.connection.name;
  state.running = true;
  ui.run.disabled = ui.runAsync.disabled = true;
  ui.error.hidden = true;
  ui.downloadStatement.hidden = true;
  const statement = new BackgroundStatement(state.api, {
    status: showStatus,
    maxRecords: () => Math.max(parseInt(ui.maxRows.value, 10) || 1000, 1),
    progress: (view, elapsed) => {
      ui.cancelStatement.hidden = false;
      showStatus(describeProgress(view, elapsed), "running");
    },
    finished: (view, page, elapsed) => {
      const shown = { columns: view.columns, records: page.records, rowCount: view.rowCount, updatedRows: view.updatedRows };
      state.result = { ...shown, connection };
      renderGrid(ui.result, shown);
      showSummary(shown, `<span class="muted" data-testid="statement-size">(in the background, ` +
        `${escapeHtml(formatMs(elapsed))}; ${escapeHtml(sizeText(view.bytes))}` +
        `${page.nextToken ? `; the first ${page.records.length} shown` : ""})</span>`);
      ui.downloadCsv.disabled = ui.downloadJson.disabled = !(view.columns || []).length;
      ui.downloadStatement.hidden = false;
    },
    failed: (failure) => {
      state.result = null;
      ui.result.replaceChildren();
      renderError(ui.error, failure);
      showStatus("Failed in the background", "error");
    },
    ended: () => {
      state.running = false;
      ui.run.disabled = ui.runAsync.disabled = false;
      ui.cancelStatement.hidden = true;
    },
  });
  state.background = statement;
  await statement.submit(connection, body);
}

async function run() {
  if (state.running || !state.connection) return;
  const body = requestBody();
  if (!body) return;
  const maxRows = parseInt(ui.maxRows.value, 10);
  if (maxRows > 0) body.maxRows = maxRows;

  const connection = state.connection.name;
  state.running = true;
  ui.run.disabled = true;
  ui.error.hidden = true;
  showStatus("Running…", "running");
  const started = performance.now();
  const { ok, status, data } = await state.api.post(`/connections/${encodeURIComponent(connection)}/query`, body);
  const elapsed = performance.now() - started;
  state.running = false;
  ui.run.disabled = false;
  if (ok) {
    state.result = { ...data, connection };
    renderGrid(ui.result, data);
    showSummary(data, `<span class="muted" title="round trip, as seen by the browser">` +
      `(${escapeHtml(formatMs(elapsed))} round trip)</span>`);
    ui.downloadCsv.disabled = ui.downloadJson.disabled = !(data.columns || []).length;
  } else {
    state.result = null;
    ui.result.replaceChildren();
    ui.downloadCsv.disabled = ui.downloadJson.disabled = true;
    renderError(ui.error, { ...data, status });
    showStatus(`Failed after ${formatMs(elapsed)}`, "error");
    if (data.error?.code === "SignInRequired") signInFlow();
  }
  remember({
    at: new Date().toISOString(), connection, sql: body.sql, parameters: Object.fromEntries(
      Object.keys(body.parameters || {}).map((n) => [n, state.params.get(n)?.value ?? ""])),
    typeHints: body.typeHints || {},
    outcome: ok ? "ok" : data.error?.code || `HTTP ${status}`,
    rowCount: ok ? data.rowCount : null, durationMs: ok ? data.durationMs : null,
  });
}

/** A result's summary in the status line; ``detail`` is markup (escaped by the caller) on how it was run. */
function showSummary(result, detail) {
  ui.status.className = "status ok";
  ui.status.innerHTML = `<span data-testid="result-summary">${escapeHtml(summary(result))}</span>` + detail +
    (result.truncated ? '<span class="badge warn" data-testid="truncated" title="more rows exist: raise Max rows">' +
      "truncated</span>" : "");
}

function showStatus(text, kind = "") {
  ui.status.className = `status ${kind}`;
  ui.status.textContent = text;
}

function downloadResult(format) {
  const result = state.result;
  if (!result) return;
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  const name = `${result.connection}-${stamp}.${format}`;
  if (format === "csv") download(name, toCsv(result), "text/csv;charset=utf-8");
  else download(name, toJson(result), "application/json");
}

// -- history and draft (this browser only) ---------------------------------------------------------

function history() {
  try {
    return JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]");
  } catch {
    return [];
  }
}

function remember(entry) {
  const entries = history().filter((e) => !(e.sql === entry.sql && e.connection === entry.connection));
  entries.unshift(entry);
  localStorage.setItem(HISTORY_KEY, JSON.stringify(entries.slice(0, HISTORY_MAX)));
  renderHistory();
}

function renderHistory() {
  const entries = history();
  ui.historyList.innerHTML = entries.length ? entries.map((e, i) =>
    `<li data-index="${i}" title="click loads it into the editor">` +
    `<div class="meta"><span class="badge ${e.outcome === "ok" ? "ok" : "fail"}">${escapeHtml(e.outcome)}</span>` +
    `<span>${escapeHtml(e.connection)}</span><time datetime="${escapeHtml(e.at)}">${escapeHtml(new Date(e.at).toLocaleString())}</time>` +
    `${e.rowCount !== null && e.rowCount !== undefined ? `<span>${e.rowCount} row${e.rowCount === 1 ? "" : "s"}</span>` : ""}</div>` +
    `<pre>${escapeHtml(e.sql.length > 400 ? `${e.sql.slice(0, 400)}…` : e.sql)}</pre></li>`).join("")
    : '<li class="muted empty">Statements you run appear here.</li>';
}

async function loadFromHistory(index) {
  const entry = history()[index];
  if (!entry) return;
  for (const [name, value] of Object.entries(entry.parameters || {})) {
    state.params.set(name, { value, hint: entry.typeHints?.[name] || "" });
  }
  state.paramNames = []; // redraw the inputs with the restored values
  ui.sql.value = entry.sql;
  if (entry.connection !== state.connection?.name && state.connections.some((c) => c.name === entry.connection)) {
    ui.connection.value = entry.connection;
    await selectConnection(entry.connection);
  }
  refreshEditor();
  saveDraft();
  ui.sql.focus();
}

function saveDraft() {
  const params = Object.fromEntries([...state.params].filter(([name]) => state.paramNames.includes(name)));
  localStorage.setItem(DRAFT_KEY, JSON.stringify({ sql: ui.sql.value, params, maxRows: ui.maxRows.value }));
}

function restoreDraft() {
  let draft = null;
  try {
    draft = JSON.parse(localStorage.getItem(DRAFT_KEY) || "null");
  } catch {
    draft = null;
  }
  ui.sql.value = draft?.sql ?? "select 1";
  for (const [name, saved] of Object.entries(draft?.params || {})) state.params.set(name, saved);
  if (draft?.maxRows) ui.maxRows.value = draft.maxRows;
  refreshEditor();
}

// -- page wiring -------------------------------------------------------------------------------------

function bindPage() {
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      event.preventDefault();
      closeCompletions();
      run();
    }
  });
  ui.run.addEventListener("click", run);
  ui.runAsync.addEventListener("click", runInBackground);
  ui.cancelStatement.addEventListener("click", () => state.background?.cancel());
  ui.downloadStatement.addEventListener("click", () => state.background?.download());
  ui.connection.addEventListener("change", () => selectConnection(ui.connection.value));
  ui.maxRows.addEventListener("change", saveDraft);
  ui.downloadCsv.addEventListener("click", () => downloadResult("csv"));
  ui.downloadJson.addEventListener("click", () => downloadResult("json"));
  ui.result.addEventListener("click", (event) => {
    const button = event.target.closest("button.expand");
    if (button) toggleCell(button);
  });
  ui.schemaFilter.addEventListener("input", renderSchema);
  ui.schemaRefresh.addEventListener("click", () => state.connection && loadSchema(state.connection.name, true));
  ui.schemaTree.addEventListener("click", (event) => {
    const column = event.target.closest(".tree-column");
    if (column) insertAtCaret(column.dataset.insert);
  });
  ui.schemaTree.addEventListener("dblclick", (event) => {
    const table = event.target.closest("summary[data-insert]");
    if (table) {
      event.preventDefault();
      insertAtCaret(table.dataset.insert);
    }
  });
  for (const [tab, panel, other, otherPanel] of [
    [ui.tabSchema, ui.schemaPanel, ui.tabHistory, ui.historyPanel],
    [ui.tabHistory, ui.historyPanel, ui.tabSchema, ui.schemaPanel],
  ]) {
    tab.addEventListener("click", () => {
      tab.setAttribute("aria-selected", "true");
      other.setAttribute("aria-selected", "false");
      panel.hidden = false;
      otherPanel.hidden = true;
    });
  }
  ui.historyList.addEventListener("click", (event) => {
    const item = event.target.closest("li[data-index]");
    if (item) loadFromHistory(Number(item.dataset.index));
  });
  ui.historyClear.addEventListener("click", () => {
    localStorage.removeItem(HISTORY_KEY);
    renderHistory();
  });
  ui.signIn.addEventListener("click", () => state.api.auth.signIn());
  ui.signOut.addEventListener("click", () => state.api.auth.signOut());
  ui.credentialsButton.addEventListener("click", openCredentials);
  ui.credentialsCancel.addEventListener("click", () => ui.credentialsDialog.close());
  ui.credentialsSave.addEventListener("click", async (event) => {
    event.preventDefault();
    try {
      state.api.auth.save(ui.credentialsText.value);
    } catch (error) {
      ui.credentialsError.textContent = error.message;
      return;
    }
    ui.credentialsText.value = "";
    ui.credentialsDialog.close();
    ui.identity.textContent = state.api.auth.describe();
    ui.error.hidden = true;
    await loadConnections();
  });
}

function openCredentials() {
  ui.credentialsError.textContent = "";
  if (!ui.credentialsDialog.open) ui.credentialsDialog.showModal();
}

start();
