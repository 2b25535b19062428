// The Runbooks tab: the runbooks the caller may run, each with a form generated from its parameter schema.
// Results go to the same grid as a query's; a runbook that needs a review says so and runs nothing.

import { renderError, renderGrid, summary } from "./results.js";

function field(parameter) {
  const { name, type } = parameter;
  let input;
  if (parameter.enum || type === "boolean") {
    input = document.createElement("select");
    const values = parameter.enum || [true, false];
    if (!parameter.required) input.add(new Option("", ""));
    for (const value of values) input.add(new Option(String(value), JSON.stringify(value)));
  } else {
    input = document.createElement("input");
    input.type = { integer: "number", number: "number", date: "date", timestamp: "datetime-local" }[type] || "text";
    if (type === "integer") input.step = "1";
    if (type === "number") input.step = "any";
    if (type === "timestamp") input.step = "1";
    if (type === "uuid") input.pattern = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
    if (parameter.pattern) input.pattern = parameter.pattern;
    if (["integer", "number", "date"].includes(type)) {
      if (parameter.min !== undefined) input.min = parameter.min;
      if (parameter.max !== undefined) input.max = parameter.max;
    } else if (type === "string") {
      if (parameter.min !== undefined) input.minLength = parameter.min;
      if (parameter.max !== undefined) input.maxLength = parameter.max;
    }
  }
  input.name = name;
  input.required = !!parameter.required;
  input.dataset.type = type;
  input.dataset.testid = `runbook-param-${name}`;
  if (parameter.default !== undefined && parameter.default !== null) {
    input.placeholder = `default ${parameter.default}`;
  }
  const label = document.createElement("label");
  label.className = "runbook-field";
  const caption = document.createElement("span");
  caption.textContent = `${name}${parameter.required ? "" : " (optional)"} · ${type}`;
  label.title = parameter.description || "";
  label.append(caption, input);
  return label;
}

/** The value of one form field as the API takes it; undefined when left empty. */
export function valueOf(input) {
  const text = input.value;
  if (text === "") return undefined;
  if (input.tagName === "SELECT") return JSON.parse(text);
  switch (input.dataset.type) {
    case "integer": return Number.parseInt(text, 10);
    case "number": return Number(text);
    case "timestamp": return text.length === 16 ? `${text}:00` : text;
    default: return text;
  }
}

export function setupRunbooks(api, ui) {
  const tab = document.getElementById("tab-runbooks");
  const panel = document.getElementById("runbooks-panel");
  const picker = document.getElementById("runbook");
  const about = document.getElementById("runbook-about");
  const form = document.getElementById("runbook-form");
  const fields = document.getElementById("runbook-fields");
  if (!tab || tab.dataset.ready) return;
  tab.dataset.ready = "true";
  let runbooks = [];

  const show = (selected) => {
    for (const [button, section] of [[ui.tabSchema, ui.schemaPanel], [ui.tabHistory, ui.historyPanel]]) {
      if (selected) {
        button.setAttribute("aria-selected", "false");
        section.hidden = true;
      }
    }
    tab.setAttribute("aria-selected", String(selected));
    panel.hidden = !selected;
  };
  tab.addEventListener("click", async () => {
    show(true);
    if (!runbooks.length) await load();
  });
  for (const other of [ui.tabSchema, ui.tabHistory]) other.addEventListener("click", () => show(false));

  async function load() {
    const { ok, status, data } = await api.get("/runbooks");
    if (!ok) {
      renderError(ui.error, { ...data, status });
      return;
    }
    runbooks = data.runbooks || [];
    picker.replaceChildren(...runbooks.map((r) => new Option(`${r.name} — ${r.connection}`, r.name)));
    about.textContent = runbooks.length ? "" : "No runbook that you may run.";
    if (runbooks.length) select(runbooks[0].name);
  }

  function select(name) {
    const runbook = runbooks.find((r) => r.name === name);
    if (!runbook) return;
    const notes = [runbook.readOnly ? "read-only" : "", runbook.approval ? "needs approval" : ""].filter(Boolean);
    about.textContent = `${runbook.description || ""}${notes.length ? ` (${notes.join(", ")})` : ""}`;
    about.title = runbook.sql;
    fields.replaceChildren(...runbook.parameters.map(field));
  }
  picker.addEventListener("change", () => select(picker.value));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = picker.value;
    const parameters = {};
    for (const input of fields.querySelectorAll("input, select")) {
      const value = valueOf(input);
      if (value !== undefined) parameters[input.name] = value;
    }
    ui.error.hidden = true;
    ui.status.className = "status running";
    ui.status.textContent = `Running runbook ${name}…`;
    const body = { parameters, shape: "arrays" };
    const maxRows = Number.parseInt(ui.maxRows.value, 10);
    if (maxRows > 0) body.maxRows = maxRows;
    const { ok, status, data } = await api.post(`/runbooks/${encodeURIComponent(name)}/run`, body);
    if (ok && status === 202) {
      ui.result.replaceChildren();
      ui.status.className = "status warn";
      ui.status.textContent = `Review ${data.reviewId} is ${data.status}: nothing runs until it is approved.`;
    } else if (ok) {
      renderGrid(ui.result, data);
      ui.status.className = "status ok";
      ui.status.innerHTML = "";
      const text = document.createElement("span");
      text.dataset.testid = "result-summary";
      text.textContent = `${summary(data)} · runbook ${name}`;
      ui.status.append(text);
    } else {
      ui.result.replaceChildren();
      renderError(ui.error, { ...data, status });
      ui.status.className = "status error";
      ui.status.textContent = `Runbook ${name} failed`;
    }
  });
}
