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
