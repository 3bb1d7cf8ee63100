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
await page.exposeFunction('__opsdCsp', (v) => problems.push(`CSP violation: ${v}`));
await page.addInitScript(() => {
	document.addEventListener('securitypolicyviolation', (e) =>
		window.__opsdCsp(`${e.violatedDirective} blocked ${e.blockedURI}`));
});

// At every screen: no console error or CSP violation so far, no serious or
// critical axe violation, and a screenshot at each size.
export async function screen(name) {
	await page.waitForTimeout(100);
	check(`${name}: no console error or CSP violation`, problems.length === 0, problems.join('\n'));
	problems.length = 0;
	await page.evaluate(axeSource);
	const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
	const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
	check(`${name}: axe finds no serious or critical violation`, bad.length === 0,
		bad.map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`).join('\n'));
	for (const [w, hgt] of [[1280, 800], [390, 844]]) {
		await page.setViewportSize({ width: w, height: hgt });
		await page.screenshot({ path: `${SCREENS}/${name}-${w}x${hgt}.png`, fullPage: true });
	}
	await page.setViewportSize({ width: 1280, height: 800 });
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
		await browser.close();
	}
	process.exit(failed ? 1 : 0);
}
