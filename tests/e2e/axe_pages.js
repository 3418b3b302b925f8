// SPDX-FileCopyrightText: 2026 the ingestd authors
// SPDX-License-Identifier: MIT
//
// axe_pages.js - drives Debian's chromium with playwright-core for
// test_pages.py. Reads one JSON job from stdin:
//
//   {"mode": "audit", "pages": [{"name": N, "url": U}], "widths": [375, 1280],
//    "shots": DIR or null}
//     Each page at each width: axe-core's violations (every rule axe runs
//     by default, WCAG A/AA and best practices), the Content-Security-
//     Policy violations the page reported, whether the page scrolls
//     sideways, and a screenshot DIR/<name>-<width>.png. Prints one JSON
//     array of results.
//
//   {"mode": "live", "url": U, "until": CSS, "timeout_ms": T}
//     Opens U, prints "opened", then waits (never navigating itself) until
//     an element matching CSS exists: the page's own script must get it
//     there. Prints a JSON {"ok", "reloaded", "before" (the class of the
//     first badge when opened), "csp", "html" (when not ok)}.
//
// Modules come from tests/e2e/node_modules (scripts/test-deps.sh). The
// pages are audited under their real CSP: axe is injected over CDP, which
// the CSP does not govern, and the page's own script still has to pass it.
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const EXE = process.env.CHROMIUM || '/usr/bin/chromium';

function readStdin() {
  return new Promise((resolve) => {
    let s = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d) => { s += d; });
    process.stdin.on('end', () => resolve(s));
  });
}

async function launch() {
  return chromium.launch({
    executablePath: EXE,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

// Records what the CSP blocked, before any of the page's own code runs.
const CSP_HOOK = `window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
});`;

async function audit(job) {
  const browser = await launch();
  const out = [];
  try {
    for (const width of job.widths) {
      const ctx = await browser.newContext({ viewport: { width, height: width < 600 ? 812 : 900 } });
      await ctx.addInitScript(CSP_HOOK);
      for (const p of job.pages) {
        const page = await ctx.newPage();
        const resp = await page.goto(p.url, { waitUntil: 'load' });
        await page.evaluate(AXE);
        const res = await page.evaluate(() => axe.run(document, { resultTypes: ['violations'] }));
        const csp = await page.evaluate(() => window.__csp);
        const overflow = await page.evaluate(
          () => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        let shot = null;
        if (job.shots) {
          shot = path.join(job.shots, `${p.name}-${width}.png`);
          await page.screenshot({ path: shot, fullPage: job.full_page === true });
        }
        out.push({
          name: p.name, width, status: resp ? resp.status() : 0, csp, overflow, shot,
          violations: res.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ': ' + n.failureSummary),
          })),
        });
        await page.close();
      }
      await ctx.close();
    }
  } finally {
    await browser.close();
  }
  return out;
}

async function live(job) {
  const browser = await launch();
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await ctx.addInitScript(CSP_HOOK);
    const page = await ctx.newPage();
    await page.goto(job.url, { waitUntil: 'load' });
    // gone after a reload: tells a page that reloaded from one updated in place
    await page.evaluate(() => { window.__mark = true; });
    const before = await page.evaluate(() => document.querySelectorAll('.badge')[0]?.className || '');
    process.stdout.write('opened\n');
    let ok = true;
    try {
      await page.waitForSelector(job.until, { timeout: job.timeout_ms, state: 'attached' });
    } catch (e) {
      ok = false;
    }
    if (ok) await page.waitForLoadState('load');
    const csp = await page.evaluate(() => window.__csp);
    const reloaded = await page.evaluate(() => window.__mark !== true);
    const html = ok ? '' : (await page.content()).slice(0, 3000);
    return { ok, reloaded, before, csp, html };
  } finally {
    await browser.close();
  }
}

(async () => {
  const job = JSON.parse(await readStdin());
  const res = job.mode === 'live' ? await live(job) : await audit(job);
  process.stdout.write(JSON.stringify(res) + '\n');
})().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
