// The playground page (docs/playground.md): a rules editor and a patient editor side by side,
// the verdict, the explanation and the diagnostics as you type. The engine runs in
// worker.js (Pyodide); everything is loaded from this site. The page's address keeps the
// current rules and patient, compressed, after `#code=`: copy it to share them.

const root = document.getElementById("pg-app");
const runtime = new URL("./runtime/", import.meta.url);
const $ = (id) => document.getElementById(id);

root.innerHTML = `
  <div class="pg-toolbar">
    <label for="pg-patient-choice">Example patient</label>
    <select id="pg-patient-choice"></select>
    <button id="pg-reset" type="button" title="Back to NCT04194671 and the chosen patient">Reset</button>
    <button id="pg-share" type="button">Copy a link to this</button>
    <span id="pg-status" class="pg-status">Loading the engine…</span>
  </div>
  <input id="pg-link" class="pg-share" readonly hidden aria-label="Link to share">
  <div class="pg-grid">
    <div class="pg-pane">
      <h2>Rules</h2>
      <div class="pg-editor">
        <pre class="pg-backdrop" id="pg-backdrop" aria-hidden="true"></pre>
        <textarea id="pg-rules" spellcheck="false" autocomplete="off" autocapitalize="off"
          aria-label="Rules"></textarea>
      </div>
      <ul class="pg-diagnostics" id="pg-diagnostics" aria-live="polite"></ul>
    </div>
    <div class="pg-pane">
      <h2>Patient (JSON)</h2>
      <div class="pg-editor">
        <textarea id="pg-patient" spellcheck="false" autocomplete="off" aria-label="Patient"></textarea>
      </div>
      <ul class="pg-diagnostics" id="pg-patient-errors" aria-live="polite"></ul>
    </div>
  </div>
  <h2>Verdict <span id="pg-verdict" class="pg-verdict">…</span></h2>
  <p id="pg-missing" class="pg-missing"></p>
  <pre class="pg-explanation"><code id="pg-explanation"></code></pre>
`;

const rules = $("pg-rules");
const patient = $("pg-patient");
const status = $("pg-status");
let examples = null;
let worker = null;
let sent = 0;
let shown = 0;

const started = performance.now();

function escapeHtml(text) {
  return text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

// ---------------------------------------------------------------- share links

function toBase64Url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text) {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

async function pipe(bytes, stream) {
  const piped = new Blob([bytes]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(piped).arrayBuffer());
}

async function encodeState() {
  const json = JSON.stringify({ rules: rules.value, patient: patient.value });
  const packed = await pipe(new TextEncoder().encode(json), new CompressionStream("deflate-raw"));
  return "#code=" + toBase64Url(packed);
}

async function decodeState(hash) {
  if (!hash.startsWith("#code=")) return null;
  try {
    const bytes = await pipe(fromBase64Url(hash.slice(6)), new DecompressionStream("deflate-raw"));
    const state = JSON.parse(new TextDecoder().decode(bytes));
    return typeof state.rules === "string" && typeof state.patient === "string" ? state : null;
  } catch {
    return null;
  }
}

let linkTimer = null;
function rememberState() {
  clearTimeout(linkTimer);
  linkTimer = setTimeout(async () => {
    history.replaceState(null, "", await encodeState());
  }, 300);
}

// ---------------------------------------------------------------- showing answers

function showDiagnostics(answer) {
  const list = $("pg-diagnostics");
  const marks = [];
  list.innerHTML = "";
  for (const d of answer.diagnostics) {
    const item = document.createElement("li");
    item.className = d.severity;
    const where = d.line ? `${d.line}:${d.column} ` : "";
    item.innerHTML =
      `<strong>${d.severity}[${d.code}]</strong> ${escapeHtml(where)}${escapeHtml(d.message)}` +
      (d.help ? `<br><small>help: ${escapeHtml(d.help)}</small>` : "");
    item.title = d.text;
    if (d.start !== undefined) {
      marks.push(d);
      item.addEventListener("click", () => showSpan(d));
    }
    list.append(item);
  }
  if (!answer.diagnostics.length) {
    list.innerHTML = '<li class="ok">No errors or warnings.</li>';
  }
  // underline each diagnostic's span in the backdrop behind the text
  marks.sort((a, b) => a.start - b.start);
  let html = "";
  let at = 0;
  for (const d of marks) {
    if (d.start < at) continue;
    html += escapeHtml(rules.value.slice(at, d.start));
    html += `<mark class="${d.severity}">${escapeHtml(rules.value.slice(d.start, d.end))}</mark>`;
    at = d.end;
  }
  $("pg-backdrop").innerHTML = html + escapeHtml(rules.value.slice(at)) + "\n";
  syncScroll();
}

function showAnswer(answer) {

  showDiagnostics(answer);
  const errors = $("pg-patient-errors");
  errors.innerHTML = "";
  for (const e of answer.patient_errors) {
    const item = document.createElement("li");
    const where = e.path || (e.line ? `line ${e.line}, column ${e.column}` : "");
    item.innerHTML =
      `${e.code ? `<strong>error[${e.code}]</strong> ` : ""}${escapeHtml(where)} ${escapeHtml(e.message)}` +
      (e.help ? `<br><small>help: ${escapeHtml(e.help)}</small>` : "");
    errors.append(item);
  }
  const verdict = $("pg-verdict");
  const explanation = $("pg-explanation");
  if (answer.internal) {
    verdict.className = "pg-verdict";
    verdict.textContent = "error";
    explanation.textContent = answer.internal;
  } else if (answer.status) {
    verdict.className = `pg-verdict ${answer.status}`;
    verdict.textContent = answer.status.toUpperCase();
    explanation.textContent = answer.explanation;
    $("pg-missing").textContent = answer.missing.length
      ? `Missing facts that could decide it: ${answer.missing.join(", ")}`
      : answer.deciding.length
        ? `Decided by ${answer.deciding.join(", ")}.`
        : "";
  } else {
    verdict.className = "pg-verdict";
    verdict.textContent = answer.diagnostics.some((d) => d.severity === "error")
      ? "the rules have errors"
      : "the patient record has errors";
    explanation.textContent = "";
    $("pg-missing").textContent = "";
  }
  root.dataset.status = answer.status || "none";
  root.dataset.answered = String(shown);
}

function evaluate() {
  rememberState();
  if (!worker) return;
  sent += 1;
  worker.postMessage({ id: sent, rules: rules.value, patient: patient.value });
  root.dataset.sent = String(sent); // the answer to this one is the one that counts
}

function showSpan(d) {
  rules.focus();
  rules.setSelectionRange(d.start, d.end);
  const lineHeight = parseFloat(getComputedStyle(rules).lineHeight) || 16;
  rules.scrollTop = Math.max(0, (d.line - 4) * lineHeight);
  syncScroll();
}

function syncScroll() {
  const backdrop = $("pg-backdrop");
  backdrop.scrollTop = rules.scrollTop;
  backdrop.scrollLeft = rules.scrollLeft;
}

// ---------------------------------------------------------------- start

function choosePatient(name) {
  const found = examples.patients.find((p) => p.name === name);
  if (found) patient.value = found.text;
}

async function start() {
  const manifest = await (await fetch(new URL("manifest.json", runtime))).json();
  examples = await (await fetch(new URL("examples.json", runtime))).json();
  const choice = $("pg-patient-choice");
  for (const p of examples.patients) {
    choice.append(new Option(p.name.replace(/\.json$/, ""), p.name));
  }
  choice.value = "eligible.json";
  const state = await decodeState(location.hash);
  rules.value = state ? state.rules : examples.protocol.text;
  if (state) patient.value = state.patient;
  else choosePatient(choice.value);
  showDiagnostics({ diagnostics: [] });

  choice.addEventListener("change", () => {
    choosePatient(choice.value);
    evaluate();
  });
  $("pg-reset").addEventListener("click", () => {
    rules.value = examples.protocol.text;
    choosePatient(choice.value);
    evaluate();
  });
  $("pg-share").addEventListener("click", async () => {
    const link = location.href.split("#")[0] + (await encodeState());
    const field = $("pg-link");
    field.hidden = false;
    field.value = link;
    field.select();
    try {
      await navigator.clipboard.writeText(link);
      status.textContent = "Link copied.";
    } catch {
      status.textContent = "Copy the link above.";
    }
  });
  rules.addEventListener("input", evaluate);
  patient.addEventListener("input", evaluate);
  rules.addEventListener("scroll", syncScroll);
  rules.addEventListener("keydown", (event) => {
    if (event.key === "Tab" && !event.shiftKey) {
      event.preventDefault();
      rules.setRangeText("  ", rules.selectionStart, rules.selectionEnd, "end");
      evaluate();
    }
  });

  if (!manifest.ready) {
    status.textContent = `The engine is not part of this build of the site: ${manifest.reason}.`;
    root.dataset.status = "unavailable";
    return;
  }
  worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  worker.onmessage = (event) => {
    const message = event.data;
    if (message.type === "ready") {
      const t = message.timings;
      const total = Math.round(performance.now() - started);
      root.dataset.timings = JSON.stringify({ ...t, total });
      status.textContent =
        `Engine ready in ${(total / 1000).toFixed(1)} s (Pyodide ${message.pyodide}: ` +
        `${t.pyodide} ms, packages ${t.wheels} ms, imports ${t.imports} ms, units ${t.units} ms).`;
      root.dataset.ready = "true";
    } else if (message.type === "result") {
      if (message.id < shown) return;
      shown = message.id;
      showAnswer(message.answer);
      if (message.answer.milliseconds !== undefined) {
        root.dataset.milliseconds = String(message.answer.milliseconds);
      }
    } else if (message.type === "failed") {
      status.textContent = `The engine failed to load: ${message.message}`;
      root.dataset.status = "failed";
    }
  };
  evaluate();
}

start().catch((error) => {
  status.textContent = `The playground failed to start: ${error}`;
  root.dataset.status = "failed";
});

