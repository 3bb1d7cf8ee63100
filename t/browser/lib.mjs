// What every browser test of the console shares (t/README): Debian's
// chromium driven by playwright-core, axe-core for accessibility, and the
// checks each screen gets. Importing it launches the browser.
//   CONSOLE_URL      https://127.0.0.1:PORT (self-signed)
//   CONSOLE_SCREENS  where the screenshots go
// check() prints "ok - name" / "not ok - name" lines (and "# " diagnostics)
// that the Perl test turns into its own tests (OpsdTest::Browser).
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';

export const env = process.env;
export const BASE = env.CONSOLE_URL;
const SCREENS = env.CONSOLE_SCREENS;
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let failed = 0;
export function check(name, cond, diag) {
	console.log(`${cond ? 'ok' : 'not ok'} - ${name}`);
	if (!cond) {
		failed++;
		if (diag) console.log(String(diag).split('\n').map((l) => `# ${l}`).join('\n'));
	}
	return cond;
}

mkdirSync(SCREENS, { recursive: true });
export const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
export const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
export const page = await context.newPage();
page.setDefaultTimeout(10000);

// What the page reports: console errors and CSP violations. A refusal the
// test provokes on purpose (the first GET /auth/me before sign-in, a
// duplicate version) is listed in `expected` before it happens.
export const problems = [];
export const expected = [];
page.on('console', (m) => {
	if (m.type() !== 'error') return;
	const url = (m.location() && m.location().url) || '';
	const i = expected.findIndex((e) => url.includes(e.path) && m.text().includes(`status of ${e.status}`));
	if (i >= 0) return void expected.splice(i, 1);
	problems.push(`console error: ${m.text()} (${url})`);
});
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
// every address the page's history held (hash changes included)
const visited = [];
page.on('framenavigated', (f) => {
	if (f === page.mainFrame()) visited.push(f.url());
});
await page.exposeFunction('__opsdCsp', (v) => problems.push(`CSP violation: ${v}`));
await page.addInitScript(() => {
	document.addEventListener('securitypolicyviolation', (e) =>
		window.__opsdCsp(`${e.violatedDirective} blocked ${e.blockedURI}`));
	// layout shifts not caused by the operator's own input, summed as the
	// cumulative layout shift score (CLS) since the last screen() check
	window.__opsdShift = { score: 0, nodes: [] };
	new PerformanceObserver((list) => {
		for (const e of list.getEntries()) {
			if (e.hadRecentInput) continue;
			window.__opsdShift.score += e.value;
			for (const s of e.sources || [])
				if (s.node && s.node.nodeType === 1) window.__opsdShift.nodes.push(s.node.id || s.node.tagName);
		}
	}).observe({ type: 'layout-shift', buffered: true });
});

// Keyboard only: Tab from the top of the page visits every visible control
// (a page with more than 300 fails: a list that long should be paged), and
// each shows a focus ring when it has the focus.
async function tabWalk() {
	return page.evaluate(async () => {
		const sel = 'a[href], button:not(:disabled), input:not(:disabled):not([type=hidden]), select:not(:disabled), textarea:not(:disabled), [tabindex]:not([tabindex="-1"])';
		const shown = (el) => !el.closest('[hidden]') && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
		// a modal dialog makes the rest of the page inert: Tab stays in it
		const scope = document.querySelector('dialog[open]') || document;
		const all = [...scope.querySelectorAll(sel)].filter(shown);
		const name = (el) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.name ? '[name=' + el.name + ']' : ''} "${(el.getAttribute('aria-label') || el.textContent || '').trim().slice(0, 30)}"`;
		return { all: all.length, names: all.map(name) };
	});
}

export async function keyboardCheck(label) {
	const { all, names } = await tabWalk();
	if (!all) return;
	// start at the first control as a keyboard user would reach it (Tab
	// then Shift+Tab, so that it shows :focus-visible), and put the focus
	// back where it was afterwards
	await page.evaluate(() => {
		window.__opsdWasFocused = document.activeElement;
		const sel = 'a[href], button:not(:disabled), input:not(:disabled):not([type=hidden]), select:not(:disabled), textarea:not(:disabled), [tabindex]:not([tabindex="-1"])';
		const scope = document.querySelector('dialog[open]') || document;
		const first = [...scope.querySelectorAll(sel)].find((el) => !el.closest('[hidden]') && el.getClientRects().length > 0);
		first.focus();
	});
	await page.keyboard.press('Tab');
	await page.keyboard.press('Shift+Tab');
	const seen = new Set();
	const noRing = [];
	let first = null;
	for (let i = 0; i < Math.min(all, 300) + 40; i++) {
		const f = await page.evaluate(() => {
			const el = document.activeElement;
			if (!el || el === document.body) return null;
			const cs = getComputedStyle(el);
			const ring = (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0) || cs.boxShadow !== 'none';
			const n = `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.name ? '[name=' + el.name + ']' : ''} "${(el.getAttribute('aria-label') || el.textContent || '').trim().slice(0, 30)}"`;
			return { n, ring };
		});
		if (!f || f.n === first) break; // round the page and back
		first ??= f.n;
		if (!seen.has(f.n)) {
			seen.add(f.n);
			if (!f.ring) noRing.push(f.n);
		}
		await page.keyboard.press('Tab');
	}
	await page.evaluate(() => {
		const el = window.__opsdWasFocused;
		if (el && el !== document.body && el.isConnected) el.focus();
		else document.activeElement && document.activeElement.blur();
	});
	const missed = all <= 300 ? names.filter((n) => !seen.has(n)) : [`all of them: ${all} controls, more than 300`];
	check(`${label}: Tab reaches every control (${seen.size} of ${all}) and each shows its focus`,
		missed.length === 0 && noRing.length === 0,
		[missed.length ? `not reached: ${missed.join(', ')}` : '', noRing.length ? `no focus ring: ${noRing.join(', ')}` : ''].join('\n'));
}

// At every screen: no console error or CSP violation so far, no serious or
// critical axe violation, and a screenshot at each size.
export async function screen(name) {
	await page.waitForTimeout(100);
	check(`${name}: no console error or CSP violation`, problems.length === 0, problems.join('\n'));
	problems.length = 0;
	const shift = await page.evaluate(() => {
		const s = window.__opsdShift;
		window.__opsdShift = { score: 0, nodes: [] };
		return s;
	});
	check(`${name}: no layout shift while data loads (CLS ${shift.score.toFixed(3)} ≤ 0.1)`, shift.score <= 0.1,
		`shifted: ${[...new Set(shift.nodes)].join(', ')}`);
	await page.evaluate(axeSource);
	const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
	const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
	check(`${name}: axe finds no serious or critical violation`, bad.length === 0,
		bad.map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`).join('\n'));
	await keyboardCheck(name);
	for (const [w, hgt] of [[1280, 800], [390, 844]]) {
		await page.setViewportSize({ width: w, height: hgt });
		await page.screenshot({ path: `${SCREENS}/${name}-${w}x${hgt}.png`, fullPage: true });
	}
	await page.setViewportSize({ width: 1280, height: 800 });
}

// One part of the page (a selector) at 1280x800, for the README's
// pictures (script/console-screenshots): <name>-part-1280x800.png.
export async function partShot(name, selector) {
	await page.locator(selector).screenshot({ path: `${SCREENS}/${name}-part-1280x800.png` });
}

export async function signIn(email, password, label) {
	const form = page.locator('#sign-in');
	await form.waitFor();
	await form.getByLabel('Email').fill(email);
	await form.getByLabel('Password').fill(password);
	await form.getByLabel('Password').press('Enter'); // the keyboard submits
	const out = page.getByRole('button', { name: 'Sign out' });
	await out.waitFor().catch(() => {});
	return check(`${label} signs in through the form`, await out.isVisible(), await page.locator('main').innerText());
}

// LEGAL_ENFORCE=1: after sign-in the pending terms are asked for; accept.
export async function acceptGate(label, version = env.CONSOLE_TERMS_VERSION, content = 'Terms of the console test.') {
	const gate = page.locator('#gate');
	await gate.locator('pre').waitFor().catch(() => {});
	const text = await gate.innerText().catch(() => '');
	check(`${label} is shown the pending terms with their text`, text.includes(`terms, version ${version}`)
		&& text.includes(content), text);
	await screen(`gate-${label}`);
	await page.keyboard.press('Enter'); // the focused Accept button
	await gate.waitFor({ state: 'hidden' }).catch(() => {});
	check(`${label} accepts with the keyboard and the gate closes`, await gate.isHidden());
}

export async function signOut() {
	await page.getByRole('button', { name: 'Sign out' }).click();
	await page.locator('#sign-in').waitFor();
}


// Runs the body; any exception is a failed check with the page's text.
// Then: every provoked refusal was seen, the browser closes, the exit
// status says whether everything passed.
export async function run(body) {
	try {
		await body();
	} catch (err) {
		check('the browser run completes', false, `${err.stack}\n${await page.locator('body').innerText().catch(() => '')}`);
	} finally {
		check('every refusal the test provoked was seen', expected.length === 0, JSON.stringify(expected));
		// no PII in the page's URL or history: no address, no query string
		// (screens keep their filters in forms), the hash names a screen only
		const bad = visited.filter((u) => /@|%40/.test(u) || new URL(u).search !== '' || !/^(#\/[a-z-]*)?$/.test(new URL(u).hash));
		check(`the page's addresses hold no PII (${visited.length} visited)`, visited.length > 0 && bad.length === 0, bad.join('\n'));
		await browser.close();
	}
	process.exit(failed ? 1 : 0);
}
