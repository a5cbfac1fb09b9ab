// The playground in headless Chromium: serve a built docs site on 127.0.0.1, open the
// playground, wait for the engine, edit a rule and see the verdict change, misspell a fact and
// see the diagnostic, follow the share link; record every request and fail on any that leaves
// the site. Prints the timings as JSON on its last line.
//
//   node playground/browser-test.mjs SITE_DIR [SCREENSHOT.png]
//
// Chromium: /usr/bin/chromium (Debian's), or $CHROMIUM.

import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join, normalize, resolve } from "node:path";
import { chromium } from "playwright-core";

const [site, screenshot] = process.argv.slice(2).map((p) => resolve(p));
if (!site) {
  console.error("usage: node browser-test.mjs SITE_DIR [SCREENSHOT.png]");
  process.exit(2);
}

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".css": "text/css",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".py": "text/plain; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".zip": "application/zip",
  ".whl": "application/zip",
};

const server = createServer((request, response) => {
  let path = normalize(decodeURIComponent(new URL(request.url, "http://x").pathname));
  let file = join(site, path);
  if (!file.startsWith(site)) {
    response.writeHead(403).end();
    return;
  }
  try {
    if (statSync(file).isDirectory()) file = join(file, "index.html");
    const body = readFileSync(file);
    response.writeHead(200, { "content-type": TYPES[extname(file)] || "application/octet-stream" });
    response.end(body);
  } catch {
    response.writeHead(404).end();
  }
});
await new Promise((done) => server.listen(0, "127.0.0.1", done));
const origin = `http://127.0.0.1:${server.address().port}`;

const profile = mkdtempSync(join(tmpdir(), "playground-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
  viewport: { width: 1400, height: 1000 },
});

const requests = [];
const problems = [];
context.on("request", (request) => requests.push(request.url()));
const page = await context.newPage();
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
page.on("console", (message) => {
  if (message.type() === "error") problems.push(`console: ${message.text()}`);
});
page.on("response", (response) => {
  if (response.status() >= 400) problems.push(`${response.status()} for ${response.url()}`);
});

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function answered(after) {
  await page.waitForFunction(
    (n) => Number(document.getElementById("pg-app").dataset.answered || 0) > n,
    after,
    { timeout: 180_000 },
  );
  return page.evaluate(() => ({ ...document.getElementById("pg-app").dataset }));
}

async function typeInto(selector, edit) {
  // An edit as a person makes it: change the text, then an input event, as a keystroke does.
  await page.$eval(selector, (area, change) => {
    area.value = area.value.replace(change.from, change.to);
    area.dispatchEvent(new Event("input", { bubbles: true }));
  }, edit);
}

let exitCode = 0;
try {
  const started = Date.now();
  await page.goto(`${origin}/playground/`);
  let state = await answered(0);
  const loaded = Date.now() - started;
  check(state.ready === "true", "the engine did not load");
  check(state.status === "eligible", `the eligible example patient is ${state.status}`);

  // edit a rule: the age limit now excludes the 54-year-old patient
  await typeInto("#pg-rules", { from: "age between 18 years and 65 years", to: "age between 18 years and 50 years" });
  state = await answered(Number(state.answered));
  check(state.status === "ineligible", `after narrowing the age range: ${state.status}`);
  const verdict = await page.textContent("#pg-verdict");
  check(verdict === "INELIGIBLE", `the verdict reads ${verdict}`);
  const timeToVerdict = Number(state.milliseconds);

  // a mistake: a misspelt fact gives the checker's diagnostic, with its help
  await typeInto("#pg-rules", { from: "age between 18 years and 50 years", to: "agee between 18 years and 50 years" });
  state = await answered(Number(state.answered));
  const diagnostics = await page.textContent("#pg-diagnostics");
  check(diagnostics.includes("error[PR201]"), `no PR201 in: ${diagnostics}`);
  check(diagnostics.includes("did you mean `age`?"), "no did-you-mean");
  check((await page.$$("#pg-backdrop mark")).length === 1, "the mistake is not underlined");
  check(state.status === "none", "a verdict despite the error");

  // fix it, and follow the share link: it carries the edited rules
  await typeInto("#pg-rules", { from: "agee between", to: "age between" });
  state = await answered(Number(state.answered));
  check(state.status === "ineligible", `after the fix: ${state.status}`);
  await page.waitForFunction(() => location.hash.startsWith("#code="));
  const link = await page.evaluate(() => location.href);
  const second = await context.newPage();
  await second.goto(link);
  await second.waitForFunction(
    () => document.getElementById("pg-rules").value.includes("18 years and 50 years"),
    null,
    { timeout: 60_000 },
  );
  await second.close();

  // a warning does not stop the verdict: an unused fact (PR209), then the screenshot
  await typeInto("#pg-rules", { from: "fact age:", to: "fact weight: quantity 'kg'\nfact age:" });
  state = await answered(Number(state.answered));
  check(state.status === "ineligible", `with a warning: ${state.status}`);
  check((await page.textContent("#pg-diagnostics")).includes("warning[PR209]"), "no PR209");
  if (screenshot) {
    await page.setViewportSize({ width: 1400, height: 1250 });
    await page.click("#pg-diagnostics li");
    await page.evaluate(() => {
      const top = document.getElementById("pg-app").getBoundingClientRect().top;
      window.scrollBy(0, top - 70);
    });
    await page.screenshot({ path: screenshot });
  }

  const outside = requests.filter(
    (url) => !url.startsWith(origin + "/") && !url.startsWith("data:") && !url.startsWith("blob:"),
  );
  check(outside.length === 0, `requests outside the site: ${outside.join(", ")}`);
  check(problems.length === 0, problems.join("\n"));
  const timings = JSON.parse(state.timings);
  console.log(
    JSON.stringify({ ok: true, load_ms: loaded, ...timings, evaluate_ms: timeToVerdict,
                     requests: requests.length }),
  );
} catch (error) {
  console.error(`playground test failed: ${error.message}`);
  console.error(problems.join("\n"));
  exitCode = 1;
} finally {
  await context.close();
  server.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(exitCode);
