// The answer of POST /v1/exec folded for people, as `plush exec -b` folds it (plush.controller.gather): hosts
// whose outcome and output are the same share one group under their host set; outputs written once that
// differ only by the host's own name, address or index (the last number in its name) fold too, shown once
// with the varying part marked {host}, {address}, {index}. Hosts that timed out and hosts that were
// unreachable (per reason) are groups of their own, marked failed.
//
// Invariants: every selected host is in exactly one group; a group without marks is each of its hosts'
// output as is; an output holding a mark literally is never taken for a template. Pure: no DOM, no I/O.

import { fold, naturalCompare } from "./hostsets.js";

const MARK = /\{(host|address|index)\}/;
const decoder = new TextDecoder("utf-8");

/** base64 -> text (UTF-8; bad bytes become U+FFFD). */
export function decode64(data) {
  if (!data) return "";
  const binary = atob(data);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return decoder.decode(bytes);
}

const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The values a template may mark for one host. */
export function hostValues(host, address) {
  const index = host.match(/(\d+)\D*$/);
  return { host, address: address || null, index: index ? index[1] : null };
}

/** `output` with the host's name, address and index (a whole number) replaced by their marks, longest value
 * first, in one pass; the output itself when it holds a mark literally. */
export function template(output, values) {
  if (MARK.test(output)) return output;
  const alternatives = [];
  for (const mark of ["host", "address", "index"]) {
    const value = values[mark];
    if (!value) continue;
    let pattern = escapeRegExp(value);
    if (mark === "index") pattern = `(?<!\\d)${pattern}(?!\\d)`;
    alternatives.push([value.length, `(?<${mark}>${pattern})`]);
  }
  if (!alternatives.length) return output;
  alternatives.sort((a, b) => b[0] - a[0]);
  const regex = new RegExp(alternatives.map((a) => a[1]).join("|"), "g");
  return output.replace(regex, (...args) => {
    const groups = args[args.length - 1];
    const mark = Object.keys(groups).find((name) => groups[name] !== undefined);
    return `{${mark}}`;
  });
}

/** How a host's command ended, in words, and whether that is a failure. */
export function outcome(result, timeout) {
  if (result.timed_out) return { text: `timed out after ${timeout}s`, failed: true, kind: "timeout" };
  if (result.code !== null && result.code !== undefined) {
    return { text: `exit ${result.code}`, failed: result.code !== 0, kind: result.code === 0 ? "ok" : "failed" };
  }
  return { text: `killed by signal ${result.signal}`, failed: true, kind: "failed" };
}

/** The groups of an exec answer: [{hosts, hostset, text (outcome), kind: ok|failed|timeout|unreachable,
 * stdout, stderr, marks, truncated}], ordered by their first host; then the unreachable hosts per reason.
 * `addresses`: host -> address (for the {address} mark). */
export function foldExec(answer, addresses = new Map()) {
  const timeout = answer.timeout;
  const entries = Object.entries(answer.results || {}).map(([host, result]) => ({
    host,
    result,
    stdout: decode64(result.stdout),
    stderr: decode64(result.stderr),
    ...outcome(result, timeout),
  }));
  const answered = new Set(entries.map((e) => e.host));
  for (const host of answer.timed_out || []) {
    if (!answered.has(host)) {
      entries.push({ host, result: {}, stdout: "", stderr: "", text: `timed out after ${timeout}s`, failed: true, kind: "timeout" });
    }
  }
  const same = new Map();
  for (const entry of entries) {
    const id = JSON.stringify([entry.text, entry.stdout, entry.stderr]);
    if (!same.has(id)) same.set(id, []);
    same.get(id).push(entry);
  }
  const groups = [];
  const byTemplate = new Map();
  for (const members of same.values()) {
    const first = members[0];
    if (members.length > 1 || MARK.test(first.stdout) || MARK.test(first.stderr)) {
      groups.push(group(members, first.stdout, first.stderr, []));
      continue;
    }
    const values = hostValues(first.host, addresses.get(first.host));
    const out = template(first.stdout, values);
    const err = template(first.stderr, values);
    const id = JSON.stringify([first.text, out, err]);
    if (!byTemplate.has(id)) byTemplate.set(id, { out, err, members: [] });
    byTemplate.get(id).members.push(first);
  }
  for (const { out, err, members } of byTemplate.values()) {
    if (members.length > 1) {
      const marks = [...new Set([...`${out}\n${err}`.matchAll(/\{(host|address|index)\}/g)].map((m) => m[1]))];
      groups.push(group(members, out, err, marks));
    } else {
      groups.push(group(members, members[0].stdout, members[0].stderr, []));
    }
  }
  groups.sort((a, b) => naturalCompare(a.hosts[0], b.hosts[0]));
  const reasons = new Map();
  for (const host of answer.unreachable || []) {
    const reason = (answer.reasons || {})[host] || "no answer";
    if (!reasons.has(reason)) reasons.set(reason, []);
    reasons.get(reason).push(host);
  }
  for (const [reason, hosts] of reasons) {
    const sorted = hosts.slice().sort(naturalCompare);
    groups.push({ hosts: sorted, hostset: fold(sorted), text: `unreachable: ${reason}`, kind: "unreachable", failed: true, stdout: "", stderr: "", marks: [], truncated: false });
  }
  return groups;
}

function group(members, stdout, stderr, marks) {
  const hosts = members.map((m) => m.host).sort(naturalCompare);
  return {
    hosts,
    hostset: fold(hosts),
    text: members[0].text,
    kind: members[0].kind,
    failed: members[0].failed,
    stdout,
    stderr,
    marks,
    truncated: members.some((m) => m.result.truncated),
  };
}

/** Counts of an exec answer's hosts per kind: {ok, failed, timeout, unreachable}. */
export function tally(groups) {
  const counts = { ok: 0, failed: 0, timeout: 0, unreachable: 0 };
  for (const g of groups) counts[g.kind] += g.hosts.length;
  return counts;
}
