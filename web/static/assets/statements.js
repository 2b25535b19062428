// Long statements in the background: POST /connections/{name}/statements, then the statement's status every
// second (with a Cancel button while it runs), its first page in the grid when it has finished, and the whole
// result downloaded from S3 through a pre-signed URL the API issues (valid 15 minutes).

const POLL_MS = 1000;

export const ENDED = ["FINISHED", "FAILED", "CANCELLED"];

/** One background statement shown in the page; `view` is the last status the API returned. */
export class BackgroundStatement {
  constructor(api, hooks) {
    this.api = api;
    this.hooks = hooks; // {status(text, kind), progress(view), finished(view, page), failed(failure), ended()}
    this.id = null;
    this.view = null;
    this.stopped = false;
  }

  async submit(connection, body) {
    const { ok, status, data } = await this.api.post(`/connections/${encodeURIComponent(connection)}/statements`,
      { ...body, output: { format: "jsonl", compression: "gzip" } });
    if (!ok) {
      this.hooks.failed({ ...data, status });
      this.hooks.ended();
      return false;
    }
    this.id = data.id;
    this.started = performance.now();
    this.hooks.status(`Submitted ${this.id.slice(0, 8)}…`, "running");
    this.poll();
    return true;
  }

  async poll() {
    while (!this.stopped) {
      const { ok, status, data } = await this.api.get(`/statements/${this.id}`);
      if (!ok) {
        this.hooks.failed({ ...data, status });
        break;
      }
      this.view = data;
      if (!ENDED.includes(data.status)) {
        this.hooks.progress(data, performance.now() - this.started);
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        continue;
      }
      if (data.status === "FINISHED") {
        const page = await this.api.get(`/statements/${this.id}/result?maxRecords=${this.hooks.maxRecords()}`);
        if (page.ok) this.hooks.finished(data, page.data, performance.now() - this.started);
        else this.hooks.failed({ ...page.data, status: page.status });
      } else if (data.status === "FAILED") {
        this.hooks.failed({ error: data.error || { code: "InternalError", message: "the statement failed" } });
      } else {
        this.hooks.status(`Cancelled ${this.id.slice(0, 8)}…`, "error");
      }
      break;
    }
    this.hooks.ended();
  }

  async cancel() {
    if (!this.id) return;
    const { ok, status, data } = await this.api.request("DELETE", `/statements/${this.id}`);
    if (!ok && status !== 400) this.hooks.failed({ ...data, status }); // 400: it had ended meanwhile
  }

  /** Navigate to the pre-signed URL: S3 answers with Content-Disposition: attachment, so the browser saves it. */
  async download() {
    const { ok, status, data } = await this.api.get(`/statements/${this.id}/result?format=url`);
    if (!ok) {
      this.hooks.failed({ ...data, status });
      return;
    }
    const link = document.createElement("a");
    link.href = data.url;
    link.rel = "noopener";
    document.body.append(link);
    link.click();
    link.remove();
  }
}

/** "RUNNING for 12 s" and what is known so far. */
export function describeProgress(view, elapsedMs) {
  const seconds = Math.round(elapsedMs / 1000);
  return `${view.status.charAt(0)}${view.status.slice(1).toLowerCase()} in the background for ${seconds} s`;
}

export function sizeText(bytes) {
  if (bytes === null || bytes === undefined) return "";
  const units = ["B", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}
