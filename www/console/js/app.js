// The console's shell: the session (GET /auth/me), the menu built from its
// permissions, the hash router (#/legal, #/audit: screen names only, never
// ids, emails or filters, so no PII reaches the URL, the history or a
// Referer), the sign-in form and the legal-acceptance gate. Screens get a
// ctx whose call() recovers from the refusals every screen can meet:
// 401 → the sign-in form over the screen, then the same request again
// (for another user, the screen afresh); 403 legal_acceptance_required →
// the pending documents with Accept, then the same request again.

import { api, ApiError, setCsrfToken } from './api.js';
import { h, field, formValues, formStatus, showError, clearErrors } from './ui.js';
import * as legal from './legal.js';
import * as compliance from './compliance.js';
import * as migration from './migration.js';
import * as incident from './incident.js';
import * as email from './email.js';
import * as monitoring from './monitoring.js';
import * as audit from './audit.js';
import * as users from './users.js';

// The screens, in the runbooks' order: the menu shows one only to a role
// holding its permission (or, for a list, one of them).
const ROUTES = [
	{ hash: '#/legal', title: 'Legal', perm: null, screen: legal },
	{ hash: '#/compliance', title: 'Compliance', perm: 'compliance.read', screen: compliance },
	{ hash: '#/migration', title: 'Migration', perm: 'migration.run', screen: migration },
	{ hash: '#/incident', title: 'Incident', perm: ['security.blocklist', 'security.sessions_flush', 'security.users_disable', 'security.tokens_revoke'], screen: incident },
	{ hash: '#/email', title: 'Email', perm: ['email.outbox', 'email.send_test'], screen: email },
	{ hash: '#/monitoring', title: 'Monitoring', perm: 'system.status', screen: monitoring },
	{ hash: '#/audit', title: 'Audit', perm: 'audit.read', screen: audit },
	{ hash: '#/users', title: 'Users and orgs', perm: ['users.read', 'orgs.read'], screen: users },
];

const session = { me: null, gen: 0 }; // gen counts sign-ins
const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const gateBox = document.getElementById('gate');
let gateOpen = null; // the legal gate's promise while it is shown
let reauthOpen = null; // the re-sign-in's promise while it is shown

function can(perm) {
	if (Array.isArray(perm)) return perm.some(can);
	return !perm || (session.me && session.me.permissions.includes(perm));
}

// A promise that never settles: the flow that met a 401 stops there, the
// sign-in form takes over and renders the screen afresh afterwards.
const never = () => new Promise(() => {});

async function call(method, path, opts) {
	for (;;) {
		const gen = session.gen; // the session the request goes out with
		try {
			return await api(method, path, opts);
		} catch (err) {
			if (!(err instanceof ApiError)) throw err;
			if (err.status === 401 && !path.startsWith('/auth/login')) {
				// sent before a sign-in that has completed since: just again
				if (session.me && session.gen !== gen) continue;
				if (!session.me && !reauthOpen) {
					showSignIn();
					return never();
				}
				if (!(await reauth())) return never(); // another user: the screen afresh
				await askPending();
				continue; // the same user again: the same request again
			}
			if (err.status === 403 && err.code === 'legal_acceptance_required') {
				await legalGate();
				continue; // accepted: the same request again
			}
			throw err;
		}
	}
}

// What a screen gets: call() as above, can(perm), and me(): the
// signed-in session as GET /auth/me answered it (user, roles,
// permissions, roleTable).
const ctx = { call, can, me: () => session.me };

function heading(text) {
	return h('h1', { tabindex: -1 }, text);
}

function show(...nodes) {
	main.replaceChildren(...nodes);
	const h1 = main.querySelector('h1');
	if (h1) h1.focus();
}

function renderMenu() {
	const here = location.hash;
	nav.replaceChildren(...(session.me ? ROUTES.filter((r) => can(r.perm)) : []).map((r) =>
		h('a', { href: r.hash, 'aria-current': here === r.hash ? 'page' : null }, r.title)));
	who.replaceChildren();
	if (!session.me) return;
	const u = session.me.user || {};
	who.append(h('span', { class: 'who-name' }, u.email || u.name || ''),
		h('button', { type: 'button', id: 'sign-out', onclick: signOut }, 'Sign out'));
}

async function route() {
	renderMenu();
	if (!session.me) return showSignIn();
	const r = ROUTES.find((x) => x.hash === location.hash);
	if (!r) {
		return show(heading('opsd console'),
			h('p', null, 'Choose a screen in the menu.'),
			h('ul', null, ROUTES.filter((x) => can(x.perm)).map((x) => h('li', null, h('a', { href: x.hash }, x.title)))));
	}
	if (!can(r.perm)) return show(heading(r.title), h('p', null, 'Your role does not give access to this screen.'));
	document.title = `${r.title} — opsd console`;
	const box = h('div');
	show(heading(r.title), box);
	try {
		await r.screen.render(box, ctx);
	} catch (err) {
		box.append(h('p', { class: 'form-status error', role: 'alert' }, err.describe ? err.describe() : String(err)));
	}
	const h1 = main.querySelector('h1');
	if (h1 && !main.contains(document.activeElement)) h1.focus();
}

async function loadMe() {
	const me = await api('GET', '/auth/me');
	session.me = { ...me, permissions: me.permissions || [] };
	session.gen++;
	setCsrfToken(me.csrfToken);
}

function showSignIn() {
	session.me = null;
	gateBox.hidden = true; // a gate left open belongs to the old session
	gateBox.replaceChildren();
	gateOpen = null;
	reauthOpen = null; // a re-sign-in left open too
	main.hidden = false;
	setCsrfToken(null);
	renderMenu();
	document.title = 'Sign in — opsd console';
	show(heading('Sign in'), signInForm(() => {
		route(); // back to the screen the hash names
		askPending();
	}));
}

// The sign-in form; then() runs once the new session is loaded.
function signInForm(then) {
	const form = h('form', { id: 'sign-in', novalidate: true },
		field({ label: 'Email', name: 'email', type: 'email', required: true, autocomplete: 'username' }),
		field({ label: 'Password', name: 'password', type: 'password', required: true, autocomplete: 'current-password' }),
		h('button', { type: 'submit' }, 'Sign in'),
		formStatus());
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		const v = formValues(form);
		try {
			const r = await api('POST', '/auth/login', { body: { email: v.email, password: v.password } });
			setCsrfToken(r.csrfToken);
			await loadMe();
		} catch (err) {
			if (err instanceof ApiError) return showError(form, err);
			throw err;
		}
		then();
	});
	return form;
}

// A session that ends under the operator's feet (idle expiry, a flush):
// the sign-in form over the screen, which stays as it was (a half-filled
// form keeps its values). Resolves true when the same user signs in again
// (the refused request then goes on), false for another user (whose
// screen is drawn afresh). One at a time: every request refused meanwhile
// waits for the same sign-in.
function reauth() {
	if (!reauthOpen) reauthOpen = openReauth().finally(() => (reauthOpen = null));
	return reauthOpen;
}

function openReauth() {
	const before = session.me && session.me.user ? session.me.user.id : null;
	session.me = null;
	setCsrfToken(null);
	renderMenu();
	return new Promise((resolve) => {
		gateBox.replaceChildren(h('h1', { id: 'gate-h', tabindex: -1 }, 'Sign in again'),
			h('p', null, 'Your session has ended. Sign in to go on where you were: the screen and what you entered are kept.'),
			signInForm(() => {
				gateBox.hidden = true;
				gateBox.replaceChildren();
				main.hidden = false;
				renderMenu();
				const same = before !== null && session.me.user && session.me.user.id === before;
				if (!same) {
					route(); // once, however many requests were waiting
					askPending();
				}
				resolve(same);
			}));
		main.hidden = true;
		gateBox.hidden = false;
		gateBox.querySelector('h1').focus();
	});
}

async function signOut() {
	try {
		await api('POST', '/auth/logout');
	} catch {
		// the session is gone either way
	}
	showSignIn();
}

// The documents waiting for the operator's acceptance, over the screen
// (hidden meanwhile, so that it is intact when the refused request goes
// on); resolves once each is accepted. One gate at a time.
function legalGate() {
	if (!gateOpen) gateOpen = openGate().finally(() => (gateOpen = null));
	return gateOpen;
}

function openGate() {
	return new Promise((resolve) => {
		const box = h('div');
		gateBox.replaceChildren(h('h1', { id: 'gate-h', tabindex: -1 }, 'Documents to accept'),
			h('p', null, 'The current versions of these documents need your acceptance before you continue.'), box);
		main.hidden = true;
		gateBox.hidden = false;
		gateBox.querySelector('h1').focus();
		const done = () => {
			gateBox.hidden = true;
			gateBox.replaceChildren();
			main.hidden = false;
			const h1 = main.querySelector('h1');
			if (h1) h1.focus();
			resolve();
		};
		const refresh = async () => {
			const st = await api('GET', '/legal/acceptance/status');
			const pending = st.pending || [];
			if (!pending.length) return done();
			box.replaceChildren();
			for (const p of pending) {
				const doc = await api('GET', `/legal/${encodeURIComponent(p.type)}`);
				const form = h('form', { class: 'gate-doc' },
					h('h2', null, `${p.type}, version ${p.version}`),
					h('pre', { class: 'doc-text', tabindex: 0, 'aria-label': `${p.type} text` }, doc.content || ''),
					h('button', { type: 'submit' }, `Accept ${p.type} ${p.version}`),
					formStatus());
				form.addEventListener('submit', async (ev) => {
					ev.preventDefault();
					try {
						await api('POST', '/legal/acceptance', { body: { type: p.type, version: p.version } });
						await refresh();
					} catch (err) {
						showError(form, err);
					}
				});
				box.append(form);
			}
			box.querySelector('button').focus();
		};
		refresh().catch((err) => box.append(h('p', { class: 'form-status error', role: 'alert' }, err.describe ? err.describe() : String(err))));
	});
}

// After sign-in: while the gate is enforced, pending documents are asked
// for at once (the routes a role may use meanwhile still answer).
async function askPending() {
	try {
		const st = await api('GET', '/legal/acceptance/status');
		if (st.enforced && (st.pending || []).length) await legalGate();
	} catch {
		// the screens' own requests will meet the refusal
	}
}

window.addEventListener('hashchange', route);
loadMe().then(() => (route(), askPending()), (err) => {
	if (err instanceof ApiError && err.status === 401) return showSignIn();
	show(heading('opsd console'), h('p', { class: 'form-status error', role: 'alert' }, err.describe ? err.describe() : String(err)));
});
