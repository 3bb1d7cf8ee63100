// DOM helpers. Text always goes in as text (never as HTML), so nothing the
// API returns can become markup.

let seq = 0;

// h('p', {class: 'x', onclick: fn}, 'text', child, …)
export function h(tag, attrs, ...children) {
	const el = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === undefined || v === null || v === false) continue;
		if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
		else if (k === 'class') el.className = v;
		else el.setAttribute(k, v === true ? '' : String(v));
	}
	for (const c of children.flat()) {
		if (c === undefined || c === null || c === false) continue;
		el.append(c instanceof Node ? c : document.createTextNode(String(c)));
	}
	return el;
}

// A labelled control: { label, name, type, required, options, hint, value }.
// The control gets an id, its label a for=, and a slot for its field error.
export function field(o) {
	const id = `f${++seq}-${o.name}`;
	let input;
	if (o.type === 'textarea') {
		input = h('textarea', { id, name: o.name, required: o.required, rows: o.rows || 8 });
		if (o.value) input.value = o.value;
	} else if (o.type === 'select') {
		input = h('select', { id, name: o.name, required: o.required },
			o.options.map((v) => h('option', { value: v }, v)));
	} else {
		input = h('input', {
			id, name: o.name, type: o.type || 'text', required: o.required,
			autocomplete: o.autocomplete || 'off', placeholder: o.placeholder, value: o.value,
		});
	}
	const hintId = o.hint ? `${id}-hint` : null;
	const errId = `${id}-err`;
	input.setAttribute('aria-describedby', [hintId, errId].filter(Boolean).join(' '));
	return h('div', { class: 'field', 'data-field': o.name },
		h('label', { for: id }, o.label),
		input,
		o.hint ? h('small', { id: hintId, class: 'hint' }, o.hint) : null,
		h('span', { id: errId, class: 'field-error', role: 'alert' }));
}

export function formValues(form) {
	const out = {};
	for (const el of form.elements) {
		if (!el.name) continue;
		out[el.name] = el.type === 'checkbox' ? el.checked : el.value.trim();
	}
	return out;
}

// Shows an ApiError: in words in the form's status area and each
// details.fields entry next to its field.
export function showError(form, err) {
	clearErrors(form);
	const status = form.querySelector('.form-status');
	const fields = err.fields || {};
	for (const [name, msg] of Object.entries(fields)) {
		const box = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
		if (!box) continue;
		box.querySelector('.field-error').textContent = String(msg);
		box.querySelector('input,select,textarea').setAttribute('aria-invalid', 'true');
	}
	if (status) {
		status.className = 'form-status error';
		status.textContent = err.describe ? err.describe() : String(err.message || err);
	}
}

export function showOk(form, text) {
	clearErrors(form);
	const status = form.querySelector('.form-status');
	status.className = 'form-status ok';
	status.textContent = text;
}

export function clearErrors(form) {
	for (const e of form.querySelectorAll('.field-error')) e.textContent = '';
	for (const e of form.querySelectorAll('[aria-invalid]')) e.removeAttribute('aria-invalid');
	const status = form.querySelector('.form-status');
	if (status) {
		status.className = 'form-status';
		status.textContent = '';
	}
}

export function formStatus() {
	return h('p', { class: 'form-status', role: 'status', 'aria-live': 'polite' });
}

// A table from rows and [{ head, cell(row) }]; caption for screen readers.
export function table(caption, columns, rows) {
	return h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': caption },
		h('table', null,
			h('caption', null, caption),
			h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col' }, c.head)))),
			h('tbody', null, rows.map((r) => h('tr', null, columns.map((c) => h('td', null, c.cell(r))))))));
}

// A list the API pages with nextCursor, in a section titled o.title:
// { id, path, title, more, query, empty, limit }. The list lives in
// #list-<id>; reload() shows its first page again (with o.query, which a
// caller may change before), and the button named o.more appends the next
// page. The button is disabled while its page is on the way (a double
// click appends it once), and a reply to an older reload is dropped, so a
// slow first page never lands under a newer query (answers null then).
export function pagedList(ctx, o, columns) {
	const results = h('div', { id: `list-${o.id}`, 'aria-live': 'polite' });
	const status = h('p', { class: 'form-status', role: 'status' });
	let gen = 0;
	const page = async (cursor, mine) => {
		const r = await ctx.call('GET', o.path, { query: { ...(o.query || {}), cursor, limit: o.limit || 50 } });
		if (mine !== gen) return null;
		const items = r.items || [];
		if (!cursor) results.replaceChildren();
		results.querySelector('.more')?.remove();
		if (!cursor && !items.length) results.append(h('p', null, o.empty || 'None.'));
		if (items.length) results.append(table(o.title, columns, items));
		if (r.nextCursor) {
			const more = h('button', { type: 'button', class: 'more', onclick: () => {
				more.disabled = true;
				status.textContent = '';
				page(r.nextCursor, mine).catch((e) => {
					more.disabled = false;
					status.textContent = e.describe ? e.describe() : String(e);
				});
			} }, o.more || 'Next');
			results.append(more);
		}
		return r;
	};
	const section = h('section', { 'aria-labelledby': `${o.id}-h` }, h('h2', { id: `${o.id}-h` }, o.title), results, status);
	// fail(err) shows a refusal of reload() in the list's status line
	const fail = (e) => {
		results.replaceChildren();
		status.textContent = e.describe ? e.describe() : String(e);
	};
	return { section, results, fail, reload: () => { status.textContent = ''; return page(null, ++gen); } };
}

// A time as the operator reads it: in the browser's zone, with the UTC
// value the API gave on hover (title) and in datetime=. Empty for none.
const LOCAL = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
export function time(iso) {
	if (!iso) return '';
	const d = new Date(iso);
	if (Number.isNaN(d.getTime())) return String(iso);
	return h('time', { datetime: iso, title: `${iso} (UTC)` }, LOCAL.format(d));
}

// Confirms a destructive action by typing its reason: a modal dialog that
// says what will happen (o.title, o.text), a required Reason and the
// o.action button. Resolves to the reason typed, or null when cancelled
// (Cancel or Escape). The reason goes into the request, so the audit log
// records why.
export function confirmReason(o) {
	return new Promise((resolve) => {
		const reason = field({ label: 'Reason', name: 'reason', type: 'textarea', rows: 3, required: true,
			hint: o.hint || 'Required: it is recorded in the audit log.' });
		const form = h('form', { method: 'dialog', novalidate: true },
			h('h2', { id: 'confirm-h' }, o.title),
			o.text ? h('p', null, o.text) : null,
			reason,
			h('div', { class: 'actions' },
				h('button', { type: 'submit', class: 'danger' }, o.action || 'Confirm'),
				h('button', { type: 'button', class: 'secondary', onclick: () => dlg.close('') }, 'Cancel')));
		const dlg = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-h' }, form);
		const input = reason.querySelector('textarea');
		form.addEventListener('submit', (ev) => {
			const v = input.value.trim();
			if (!v) {
				ev.preventDefault();
				reason.querySelector('.field-error').textContent = 'Type the reason to confirm.';
				input.setAttribute('aria-invalid', 'true');
				input.focus();
				return;
			}
			dlg.returnValue = v;
		});
		dlg.addEventListener('close', () => {
			dlg.remove();
			resolve(dlg.returnValue || null);
		});
		document.body.append(dlg);
		dlg.showModal();
		input.focus();
	});
}
