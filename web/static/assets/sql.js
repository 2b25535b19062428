// SQL text for the editor: a tokenizer that follows the gateway's own rules (functions/rdsgate/sql/lexrules.py),
// so the parameters the page offers are exactly the `:name`s the server will bind, checked against the cases
// the Python scanners share (tests/cases/sql_scanner.json); the highlighter's HTML; and completions drawn from
// keywords and the connection's schema.

export const KEYWORDS = new Set(`
  add all alter analyze and any array as asc between by case cast check collate column constraint create cross
  current_date current_time current_timestamp database default delete desc distinct do drop else end except
  exists explain false fetch filter first for foreign from full group having if ilike in index inner insert
  intersect interval into is join key last lateral left like limit not null nulls offset on or order outer over
  partition primary recursive references returning right rows schema select set show similar some table then
  to true truncate union unique update using values view when where window with`.trim().split(/\s+/));

export const FUNCTIONS = new Set(`
  avg coalesce concat count date_trunc extract greatest json_agg jsonb_agg least length lower max min now
  nullif round string_agg substring sum trim upper`.trim().split(/\s+/));

// PostgreSQL's names and dollar-quote tags take every non-ASCII character. These classes test UTF-16 code units
// (no u flag), so a character beyond U+FFFF is two units, both in \u0080-\uffff: $😀$ is a tag, €$a$ one name.
const IDENT_START = /[A-Za-z_\u0080-\uffff]/;
const IDENT_PART = /[A-Za-z0-9_$\u0080-\uffff]/;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*/; // a parameter name, as the server reads it
const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y; // sticky: matches at lastIndex

/** Split `sql` into tokens {type, text, start, end}. Unterminated strings and comments run to the end. */
export function tokenize(sql, dialect = "postgres") {
  const pg = dialect !== "mysql";
  const tokens = [];
  const n = sql.length;
  let i = 0;
  const push = (type, end) => {
    tokens.push({ type, text: sql.slice(i, end), start: i, end });
    i = end;
  };
  while (i < n) {
    const c = sql[i];
    const next = sql[i + 1] || "";
    if (/\s/.test(c)) {
      let j = i + 1;
      while (j < n && /\s/.test(sql[j])) j++;
      push("space", j);
    } else if (c === "-" && next === "-" && (pg || i + 2 >= n || sql[i + 2] <= " " || sql[i + 2] === "\x7f")) {
      push("comment", lineEnd(sql, i, pg));
    } else if (c === "#" && !pg) {
      push("comment", lineEnd(sql, i, false));
    } else if (c === "/" && next === "*") {
      push("comment", blockEnd(sql, i, pg));
    } else if (c === "'") {
      const escaped = !pg || (i > 0 && /[Ee]/.test(sql[i - 1]) && (i === 1 || !IDENT_PART.test(sql[i - 2])));
      push("string", escaped ? escapedEnd(sql, i, "'") : doubledEnd(sql, i, "'"));
    } else if (c === '"') {
      push(pg ? "quoted" : "string", pg ? doubledEnd(sql, i, '"') : escapedEnd(sql, i, '"'));
    } else if (c === "`" && !pg) {
      push("quoted", doubledEnd(sql, i, "`"));
    } else if (c === "$" && pg && !(i > 0 && IDENT_PART.test(sql[i - 1])) && dollarTag(sql, i)) {
      const tag = dollarTag(sql, i);
      const close = sql.indexOf(tag, i + tag.length);
      push("string", close < 0 ? n : close + tag.length);
    } else if (c === ":") {
      if (next === ":" || next === "=") {
        push("operator", i + 2);
      } else {
        const name = sql.slice(i + 1).match(NAME);
        push(name ? "param" : "operator", name ? i + 1 + name[0].length : i + 1);
      }
    } else if (/[0-9]/.test(c) || (c === "." && /[0-9]/.test(next))) {
      const match = sql.slice(i).match(/^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/);
      push("number", i + match[0].length);
    } else if (IDENT_START.test(c)) {
      let j = i + 1;
      while (j < n && IDENT_PART.test(sql[j])) j++;
      const word = sql.slice(i, j).toLowerCase();
      push(KEYWORDS.has(word) ? "keyword" : FUNCTIONS.has(word) && sql[j] === "(" ? "function" : "ident", j);
    } else if (c === ";") {
      push("punct", i + 1);
    } else {
      push(/[(),.\[\]]/.test(c) ? "punct" : "operator", i + 1);
    }
  }
  return tokens;
}

function dollarTag(sql, i) {
  DOLLAR_TAG.lastIndex = i;
  const match = DOLLAR_TAG.exec(sql);
  return match ? match[0] : null;
}

// PostgreSQL's line comment ends at \n or \r (its scanner's newline is [\n\r]); MySQL's at \n only.
function lineEnd(sql, i, pg) {
  const newline = sql.indexOf("\n", i);
  const end = newline < 0 ? sql.length : newline;
  if (pg) {
    const ret = sql.indexOf("\r", i);
    if (ret >= 0 && ret < end) return ret + 1;
  }
  return newline < 0 ? sql.length : newline + 1;
}

function blockEnd(sql, i, pg) {
  let depth = 1;
  let j = i + 2;
  for (;;) {
    const close = sql.indexOf("*/", j);
    if (close < 0) return sql.length;
    const nested = pg ? sql.indexOf("/*", j) : -1;
    if (nested >= 0 && nested < close) { // PostgreSQL reads "/*" first: the "/*/" in "/* x /*/" opens a nested comment
      depth += 1;
      j = nested + 2;
    } else {
      depth -= 1;
      j = close + 2;
      if (depth === 0) return j;
    }
  }
}

function doubledEnd(sql, i, quote) {
  let j = i + 1;
  for (;;) {
    const close = sql.indexOf(quote, j);
    if (close < 0) return sql.length;
    if (sql[close + 1] === quote) j = close + 2;
    else return close + 1;
  }
}

function escapedEnd(sql, i, quote) {
  for (let j = i + 1; j < sql.length; j++) {
    if (sql[j] === "\\") j++;
    else if (sql[j] === quote) {
      if (sql[j + 1] === quote) j++;
      else return j + 1;
    }
  }
  return sql.length;
}

/** The distinct `:name` parameters of `sql`, in order of first appearance (as the server binds them). */
export function parameterNames(sql, dialect = "postgres") {
  const names = [];
  for (const token of tokenize(sql, dialect)) {
    if (token.type === "param") {
      const name = token.text.slice(1);
      if (!names.includes(name)) names.push(name);
    }
  }
  return names;
}

/** A parameter's value as `rdsgate query -p` reads it: JSON when it parses as JSON (42, true, null, "007"), else
 * the text itself; integers beyond 2^53 stay text, so no digit is lost (the server types them from context). */
export function parameterValue(text) {
  if (/^\s*-?\d+\s*$/.test(text) && !Number.isSafeInteger(Number(text))) return text.trim();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** The editor's highlighted HTML for `sql`: one span per token that has a colour. */
export function highlight(sql, dialect = "postgres") {
  let html = "";
  for (const token of tokenize(sql, dialect)) {
    const text = escapeHtml(token.text);
    html += token.type === "space" || token.type === "ident" || token.type === "punct"
      ? text
      : `<span class="tok-${token.type}">${text}</span>`;
  }
  // A trailing newline needs a character after it, or the highlight is a line shorter than the textarea.
  return html + "\n";
}

/** The token that holds position `caret` (the one ending there, if none starts there). */
export function tokenAt(tokens, caret) {
  let found = null;
  for (const token of tokens) {
    if (token.start < caret && caret <= token.end) found = token;
    if (token.start >= caret) break;
  }
  return found;
}

// Table names that follow FROM / JOIN / UPDATE / INTO, with an optional alias: what a bare word may refer to.
const TABLE_REFERENCE = /\b(?:from|join|update|into)\s+((?:[A-Za-z_][\w$]*\.)?[A-Za-z_][\w$]*)(?:\s+(?:as\s+)?([A-Za-z_][\w$]*))?/gi;
const NOT_ALIASES = new Set(["where", "on", "join", "inner", "left", "right", "full", "cross", "group", "order",
  "limit", "set", "values", "using", "natural", "union", "having", "offset", "returning", "window", "for"]);

/**
 * Completions at `caret`: {from, to, items: [{label, detail, kind}]}, or null inside a string or comment.
 * `schema` is the document of GET /connections/{name}/schema.
 */
export function completionsAt(sql, caret, schema, dialect = "postgres", { explicit = false } = {}) {
  const tokens = tokenize(sql, dialect);
  const at = tokenAt(tokens, caret);
  if (at && ["string", "comment", "quoted", "number", "param"].includes(at.type)) {
    const inside = caret < at.end || !terminated(at);
    if (inside || at.type === "number" || at.type === "param") return null;
  }
  let from = caret;
  while (from > 0 && IDENT_PART.test(sql[from - 1])) from--;
  const prefix = sql.slice(from, caret);
  if (!explicit && prefix === "" && sql[from - 1] !== ".") return null;
  if (/^[0-9$]/.test(prefix)) return null;

  const tables = tablesOf(schema);
  const references = referencedTables(sql, tables);
  let candidates = [];
  if (sql[from - 1] === ".") {
    let q = from - 1;
    while (q > 0 && IDENT_PART.test(sql[q - 1])) q--;
    const qualifier = sql.slice(q, from - 1).toLowerCase();
    const schemaNamed = (schema?.schemas || []).find((s) => s.name.toLowerCase() === qualifier);
    if (schemaNamed) {
      candidates = (schemaNamed.tables || []).map((t) => ({ label: t.name, detail: tableKind(t), kind: "table" }));
    } else {
      const table = references.get(qualifier) || tables.find((t) => t.name.toLowerCase() === qualifier);
      candidates = table ? table.columns.map((c) => ({ label: c.name, detail: c.type, kind: "column" })) : [];
    }
  } else {
    const inScope = [...new Set(references.values())];
    const columns = (inScope.length ? inScope : tables).flatMap((t) =>
      t.columns.map((c) => ({ label: c.name, detail: `${c.type} · ${t.name}`, kind: "column" })));
    candidates = [
      ...columns,
      ...tables.map((t) => ({ label: t.name, detail: `${tableKind(t)} · ${t.schema}`, kind: "table" })),
      ...(schema?.schemas || []).map((s) => ({ label: s.name, detail: "schema", kind: "schema" })),
      ...[...KEYWORDS].map((k) => ({ label: matchCase(k, prefix), detail: "keyword", kind: "keyword" })),
      ...[...FUNCTIONS].map((f) => ({ label: matchCase(f, prefix), detail: "function", kind: "function" })),
    ];
  }
  const lower = prefix.toLowerCase();
  const seen = new Set();
  const items = [];
  for (const rank of [0, 1]) {
    for (const item of candidates) {
      const label = item.label.toLowerCase();
      const matches = rank === 0 ? label.startsWith(lower) : !label.startsWith(lower) && lower && label.includes(lower);
      const key = `${item.kind}:${label}`;
      if (matches && !seen.has(key) && label !== lower) {
        seen.add(key);
        items.push(item);
      }
    }
  }
  return items.length ? { from, to: caret, items: items.slice(0, 50) } : null;
}

function terminated(token) {
  if (token.type === "comment") return token.text.startsWith("/*") ? token.text.endsWith("*/") : /[\n\r]$/.test(token.text);
  if (token.type === "string" && token.text.startsWith("$")) return token.text.length > 1 && /\$$/.test(token.text);
  const quote = token.text.replace(/^[Ee]/, "")[0];
  return token.text.length > 1 && token.text.endsWith(quote);
}

function matchCase(word, prefix) {
  return prefix && prefix === prefix.toUpperCase() && /[A-Z]/.test(prefix) ? word.toUpperCase() : word;
}

function tableKind(table) {
  return /view/i.test(table.type || "") ? "view" : "table";
}

/** Every table of a schema document, flattened, with its schema's name. */
export function tablesOf(schema) {
  const tables = [];
  for (const s of schema?.schemas || []) {
    for (const t of s.tables || []) tables.push({ ...t, schema: s.name, columns: t.columns || [] });
  }
  return tables;
}

/** alias or table name (lower case) → table, for the tables the statement names after FROM/JOIN/UPDATE/INTO. */
function referencedTables(sql, tables) {
  const found = new Map();
  for (const match of sql.matchAll(TABLE_REFERENCE)) {
    const [qualified, alias] = [match[1].toLowerCase(), match[2]?.toLowerCase()];
    const [schemaName, tableName] = qualified.includes(".") ? qualified.split(".") : [null, qualified];
    const table = tables.find((t) => t.name.toLowerCase() === tableName &&
      (schemaName === null || t.schema.toLowerCase() === schemaName));
    if (!table) continue;
    found.set(tableName, table);
    if (alias && !NOT_ALIASES.has(alias) && !KEYWORDS.has(alias)) found.set(alias, table);
  }
  return found;
}
