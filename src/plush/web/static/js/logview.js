// A log or output of a run, streamed from GET /v1/runs/{run}/file?path=PATH into a <pre> (text nodes only).
// A large file is capped: the first CAP bytes are shown, with "Load all" (stream the rest) and "Show the end"
// (stream the file, keep only its last CAP bytes). Also the list of one host's process logs, by instance.
//
// Invariants: at most one stream per viewer (opening another file or closing the viewer aborts the one
// running); the text reaches the DOM as text nodes, appended at most once per animation frame.

import { h, formatBytes, messageOf } from "./widgets.js";

export const CAP = 256 * 1024;

export function fileUrl(run, path) {
  return `/v1/runs/${encodeURIComponent(run)}/file?path=${encodeURIComponent(path)}`;
}

/** A viewer in `el`: viewer.open({run, path, size}); viewer.close(). */
export function createLogViewer(el) {
  let controller = null;
  const title = h("span", { class: "log-title" });
  const info = h("span", { class: "log-info muted" });
  const actions = h("span", { class: "log-actions" });
  const pre = h("pre", { class: "log-text" });
  const box = h("section", { class: "log-view", hidden: true }, h("div", { class: "log-head" }, title, info, actions), pre);
  el.append(box);

  function stop() {
    if (controller) controller.abort();
    controller = null;
  }

  async function stream(file, mode) {
    stop();
    const mine = new AbortController();
    controller = mine;
    pre.replaceChildren();
    actions.replaceChildren();
    box.hidden = false;
    box.dataset.path = file.path;
    box.dataset.state = "loading";
    title.textContent = file.path.split("/").slice(2).join("/");
    info.textContent = `${formatBytes(file.size)} · loading…`;
    const decoder = new TextDecoder("utf-8");
    let pending = "";
    let frame = 0;
    const flush = () => {
      frame = 0;
      if (pending) pre.append(document.createTextNode(pending));
      pending = "";
    };
    const add = (text) => {
      pending += text;
      if (!frame) frame = requestAnimationFrame(flush);
    };
    let received = 0;
    let capped = false;
    const tail = [];
    let tailBytes = 0;
    try {
      const response = await fetch(fileUrl(file.run, file.path), {
        signal: mine.signal,
        credentials: "same-origin",
        headers: { "X-Plush-Client": "web" },
      });
      if (!response.ok) {
        let message = `${response.status} ${response.statusText}`;
        try {
          message = (await response.json()).error.message;
        } catch {
          // not JSON: the status says it
        }
        throw new Error(message);
      }
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.length;
        if (mode === "tail") {
          tail.push(value);
          tailBytes += value.length;
          while (tail.length > 1 && tailBytes - tail[0].length >= CAP) tailBytes -= tail.shift().length;
        } else if (mode === "head" && received > CAP) {
          add(decoder.decode(value.subarray(0, value.length - (received - CAP)), { stream: true }));
          capped = true;
          mine.abort();
          break;
        } else {
          add(decoder.decode(value, { stream: true }));
        }
      }
      if (mode === "tail") {
        const all = new Uint8Array(tailBytes);
        let at = 0;
        for (const part of tail) {
          all.set(part, at);
          at += part.length;
        }
        const skip = Math.max(0, tailBytes - CAP);
        add(decoder.decode(all.subarray(skip)));
        const hidden = received - (tailBytes - skip);
        info.textContent = hidden ? `${formatBytes(received)} · the last ${formatBytes(tailBytes - skip)}` : formatBytes(received);
      } else {
        if (!capped) add(decoder.decode());
        info.textContent = capped ? `${formatBytes(file.size)} · the first ${formatBytes(CAP)}` : formatBytes(received);
      }
      if (capped || (mode === "tail" && received > CAP)) {
        actions.append(
          h("button", { class: "btn small", onclick: () => stream(file, "all") }, `Load all (${formatBytes(Math.max(file.size, received))})`),
          mode === "head" ? h("button", { class: "btn small", onclick: () => stream(file, "tail") }, "Show the end") : null,
        );
      }
      if (!received) info.textContent = "empty";
      box.dataset.state = "done";
    } catch (error) {
      if (mine.signal.aborted && capped) {
        box.dataset.state = "done";
      } else if (!mine.signal.aborted) {
        info.textContent = `could not read it: ${messageOf(error)}`;
        box.dataset.state = "error";
      }
    } finally {
      flush();
      if (controller === mine) controller = null;
    }
  }

  return {
    /** Show {run, path, size}: its first CAP bytes (mode "all": everything, "tail": its last CAP bytes). */
    open(file, mode = "head") {
      return stream(file, mode);
    },
    close() {
      stop();
      box.hidden = true;
    },
  };
}

// <cb>.<block>.<process>.<instance>.stdout|stderr -> {process: "<cb>.<block>.<process>", instance, stream}
export function logName(path) {
  const name = path.split("/").pop();
  const match = name.match(/^(.*)\.(\d+)\.(stdout|stderr)$/);
  if (!match) return { process: name, instance: null, stream: null };
  return { process: match[1], instance: Number(match[2]), stream: match[3] };
}

/** One host's files grouped: [{process, instance, stdout?, stderr?}] (by process, then instance) and the
 * other files (outputs, logs not named by the rule). */
export function processLogs(files) {
  const instances = new Map();
  const other = [];
  for (const file of files) {
    const name = file.kind === "log" ? logName(file.path) : { stream: null };
    if (!name.stream) {
      other.push(file);
      continue;
    }
    const id = `${name.process}\u0000${name.instance}`;
    if (!instances.has(id)) instances.set(id, { process: name.process, instance: name.instance });
    instances.get(id)[name.stream] = file;
  }
  const list = [...instances.values()].sort((a, b) => (a.process < b.process ? -1 : a.process > b.process ? 1 : a.instance - b.instance));
  return { instances: list, other };
}
