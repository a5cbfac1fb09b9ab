// The playground's engine, off the page's thread: Pyodide, the project's wheel and its
// dependencies, all loaded from this site (runtime/, written by playground/hook.py).
// Messages in: {id, rules, patient}. Out: {type: "ready", timings} once, then
// {type: "result", id, answer} for the newest request (a burst of keystrokes is one run).

const runtime = new URL("./runtime/", import.meta.url);
let run = null;
let pending = null;
let busy = false;

function since(start) {
  return Math.round(performance.now() - start);
}

async function load() {
  const timings = {};
  let start = performance.now();
  const manifest = await (await fetch(new URL("manifest.json", runtime))).json();
  const { loadPyodide } = await import(new URL("pyodide/pyodide.mjs", runtime).href);
  // fetch the wheels while Pyodide starts
  const wheels = Promise.all(
    manifest.wheels.map(async (name) => (await fetch(new URL(`wheels/${name}`, runtime))).arrayBuffer()),
  );
  const engineText = fetch(new URL("engine.py", import.meta.url)).then((r) => r.text());
  const pyodide = await loadPyodide({
    indexURL: new URL("pyodide/", runtime).href,
    packages: [],
    stdout: () => {},
    stderr: () => {},
  });
  timings.pyodide = since(start);
  start = performance.now();
  for (const data of await wheels) {
    pyodide.unpackArchive(data, "wheel");
  }
  const engine = await engineText;
  timings.wheels = since(start);
  start = performance.now();
  pyodide.runPython(engine);
  timings.imports = since(start);
  start = performance.now();
  pyodide.runPython("from protocol_rules import units; units.check_unit('mg/dL')");
  timings.units = since(start);
  run = pyodide.globals.get("run");
  self.postMessage({ type: "ready", timings, pyodide: manifest.pyodide });
}

async function drain() {
  busy = true;
  while (pending) {
    const request = pending;
    pending = null;
    let answer;
    try {
      answer = JSON.parse(run(request.rules, request.patient));
    } catch (error) {
      answer = { internal: String(error), diagnostics: [], patient_errors: [] };
    }
    self.postMessage({ type: "result", id: request.id, answer });
    await new Promise((resolve) => setTimeout(resolve, 0)); // let newer requests arrive
  }
  busy = false;
}

const loading = load().catch((error) => {
  self.postMessage({ type: "failed", message: String(error) });
});

self.onmessage = async (event) => {
  pending = event.data;
  await loading;
  if (run && !busy) {
    drain();
  }
};
