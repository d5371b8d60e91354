// @ts-check
// The console's DOM helpers: elements, tables, forms and paged lists.
//
// Data reaches the page only as text (textContent, text nodes), never as
// HTML: h() turns every string into a text node (shared/console's Go tests
// check every module for the markup and storage APIs this rules out).

import { CursorPager } from './api.mjs';
import { browserZone, formatTime } from './format.mjs';

/**
 * What h() and the views accept as a child: nodes, text, and false, null or
 * undefined for "nothing here" (so `cond && node` reads naturally).
 * @typedef {Node | string | number | boolean | null | undefined} Child
 */

/**
 * An element's attributes; on<event> keys add listeners, class sets the
 * class name, true is an empty attribute, false, null and undefined none.
 * @typedef {Record<string, string | number | boolean | null | undefined | EventListener>} Props
 */

/**
 * h builds an element; strings become text nodes, never markup.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props} [props]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    else if (k === 'class') el.className = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  el.append(...present(children.flat()));
  return el;
}

/**
 * The children that show: nodes as they are, other values as text; false,
 * null, undefined and '' dropped.
 * @param {Child[]} children
 * @returns {(Node | string)[]}
 */
function present(children) {
  /** @type {(Node | string)[]} */
  const out = [];
  for (const c of children) {
    if (c === undefined || c === null || c === false || c === '') continue;
    out.push(c instanceof Node ? c : String(c));
  }
  return out;
}

/**
 * Replaces el's children with what shows of children (see present).
 * @param {Element} el
 * @param {(Child | Child[])[]} children
 */
export function fill(el, children) {
  el.replaceChildren(...present(children.flat()));
}

/**
 * The zone every time on the page is shown in: the browser's, named next to
 * each time (formatTime).
 */
export const displayZone = browserZone();

/**
 * A timestamp in the reader's locale and displayZone, labelled with the
 * zone, with the API's value as its title.
 * @param {string | null | undefined} iso
 * @returns {HTMLTimeElement | string}
 */
export function time(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : h('time', { datetime: iso, title: iso }, formatTime(d, displayZone));
}

/**
 * @param {string} hash
 * @param {Child} text
 */
export function link(hash, text) {
  return h('a', { href: hash }, text);
}

/**
 * Saves a file the API sent (a CSV export) as the browser saves downloads.
 * The export routes need the bearer token, so a plain link cannot fetch
 * them: the file is fetched first, then handed over as a blob: URL.
 * @param {import('./api.mjs').Download} file
 */
export function saveDownload(file) {
  const url = URL.createObjectURL(file.blob);
  const a = h('a', { href: url, download: file.filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  // The browser has taken the blob when click() returns, but some start
  // reading it only after this task: revoking waits for the next one.
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

/**
 * A button that fetches a file and saves it (saveDownload), saying which
 * file it saved or why it could not.
 * @param {string} text
 * @param {() => Promise<import('./api.mjs').Download>} fetchFile
 */
export function downloadButton(text, fetchFile) {
  const said = h('span', { class: 'notice', role: 'status' });
  const err = h('span', { class: 'field-error', role: 'alert' });
  const b = h('button', { type: 'button', class: 'secondary' }, text);
  b.addEventListener('click', async () => {
    said.replaceChildren();
    err.replaceChildren();
    b.disabled = true;
    try {
      const file = await fetchFile();
      saveDownload(file);
      said.textContent = `Saved ${file.filename}.`;
    } catch (e) {
      err.textContent = messageOf(e);
    } finally {
      b.disabled = false;
    }
  });
  return h('span', { class: 'row-actions' }, b, said, err);
}

/**
 * A table of rows under headings, or the empty text when there are none.
 * @param {string[]} headings
 * @param {Node[]} rows
 * @param {string} empty
 */
export function table(headings, rows, empty) {
  if (rows.length === 0) return h('p', { class: 'muted' }, empty);
  // The table scrolls inside its box: a wide table never widens the page (a phone's included).
  return h('div', { class: 'table-scroll' },
    h('table', {}, h('thead', {}, h('tr', {}, headings.map((t) => h('th', {}, t)))), h('tbody', {}, rows)));
}

/**
 * One field of form().
 * @typedef {object} Field
 * @property {string} name
 * @property {string} label
 * @property {string} [type] the input's type (default text)
 * @property {boolean} [required]
 * @property {string} [autocomplete] (default off)
 * @property {string} [placeholder]
 * @property {string | number} [min]
 * @property {string | number} [max]
 * @property {string | number} [step]
 * @property {string} [value] the initial value (the selected option's, for a select)
 * @property {[string, string][]} [options] a select's [value, text] pairs
 */

/**
 * What a form's submit handler gets: each field's value by name.
 * @typedef {Record<string, string>} Values
 */

/**
 * form builds a form whose submit runs onSubmit(values); an error it throws
 * (an ApiError or invalid()'s) shows next to the form: its message on top,
 * each field's message by the field. A string onSubmit returns is shown as
 * a notice.
 * @param {Field[]} fields
 * @param {string} submitText
 * @param {(values: Values) => Promise<string | void>} onSubmit
 * @param {{ inline?: boolean }} [options]
 */
export function form(fields, submitText, onSubmit, { inline = false } = {}) {
  const summary = h('div', { class: 'form-error', role: 'alert' });
  const notice = h('div', { class: 'notice', role: 'status' });
  /** @type {Record<string, HTMLElement>} */
  const errorOf = {};
  /** @type {Record<string, HTMLInputElement | HTMLSelectElement>} */
  const inputs = {};
  const button = h('button', { type: 'submit' }, submitText);
  const el = h('form', { class: inline ? 'inline' : 'stacked', novalidate: true }, summary);
  for (const f of fields) {
    const attrs = {
      name: f.name,
      type: f.type || 'text',
      required: f.required,
      autocomplete: f.autocomplete || 'off',
      placeholder: f.placeholder,
      min: f.min,
      max: f.max,
      step: f.step,
      value: f.value,
    };
    let input;
    if (f.options) {
      input = h('select', { name: f.name, required: f.required },
        f.options.map(([value, text]) => h('option', { value, selected: value === f.value }, text)));
    } else {
      input = h('input', attrs);
    }
    inputs[f.name] = input;
    const error = h('span', { class: 'field-error' });
    errorOf[f.name] = error;
    el.append(h('label', {}, f.label, input, error));
  }
  el.append(h('div', { class: 'row-actions' }, button, notice));

  function clearErrors() {
    summary.replaceChildren();
    notice.replaceChildren();
    for (const [name, span] of Object.entries(errorOf)) {
      span.replaceChildren();
      inputs[name].removeAttribute('aria-invalid');
    }
  }

  /** @param {unknown} err */
  function showError(err) {
    const unplaced = [];
    for (const [name, msg] of Object.entries(fieldsOf(err))) {
      if (errorOf[name]) {
        errorOf[name].textContent = msg;
        inputs[name].setAttribute('aria-invalid', 'true');
      } else {
        unplaced.push(h('li', {}, `${name}: ${msg}`));
      }
    }
    summary.append(messageOf(err) || 'Something went wrong.');
    if (unplaced.length) summary.append(h('ul', {}, unplaced));
  }

  el.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors();
    /** @type {Values} */
    const values = {};
    for (const [name, input] of Object.entries(inputs)) values[name] = input.value;
    button.disabled = true;
    try {
      const done = await onSubmit(values);
      if (typeof done === 'string') notice.textContent = done;
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  });
  return { el, inputs, showError, reset: () => el.reset() };
}

/**
 * A client-side check failed: shown like an API validation problem.
 * @param {Record<string, string>} fields each bad field's message
 */
export function invalid(fields) {
  return Object.assign(new Error('Please correct the marked fields.'), { fields });
}

/**
 * The message of a thrown value ('' when it has none).
 * @param {unknown} err
 * @returns {string}
 */
export function messageOf(err) {
  return err instanceof Error ? err.message : '';
}

/**
 * The field messages of a thrown value: an ApiError's or invalid()'s.
 * @param {unknown} err
 * @returns {Record<string, string>}
 */
export function fieldsOf(err) {
  if (err instanceof Error && 'fields' in err && err.fields && typeof err.fields === 'object') {
    return /** @type {Record<string, string>} */ (err.fields);
  }
  return {};
}

/**
 * A box showing what went wrong.
 * @param {unknown} err
 */
export function errorBox(err) {
  return h('div', { class: 'form-error', role: 'alert' }, messageOf(err) || String(err));
}

/**
 * A list shown page by page (see pagedList).
 * @typedef {{ el: HTMLElement, reload: (report?: boolean) => Promise<unknown> }} PagedList
 */

/**
 * pagedList renders a list route page by page with Previous/Next; load(cursor)
 * returns the page, row(item) its table row. reload() goes back to the first
 * page and returns the error of the load, if any, shown in the list unless
 * the caller shows it (reload(false), for a form that asked for the list).
 * @template T
 * @param {string[]} headings
 * @param {string} empty what the list says when it has no items
 * @param {(cursor: string) => Promise<import('./api.mjs').Page<T>>} load
 * @param {(item: T) => Node} row
 * @returns {PagedList}
 */
export function pagedList(headings, empty, load, row) {
  const pager = new CursorPager();
  const body = h('div', {});
  const prev = h('button', { type: 'button', class: 'secondary' }, 'Previous');
  const next = h('button', { type: 'button', class: 'secondary' }, 'Next');
  const number = h('span', { class: 'muted' });
  const el = h('div', {}, body, h('div', { class: 'pager' }, prev, number, next));
  let loading = 0;

  async function show(report = true) {
    // Busy from the first request to the last row drawn: a list of several
    // sources (the alarms, state by state) answers more than once per load.
    loading++;
    el.setAttribute('aria-busy', 'true');
    prev.disabled = next.disabled = true;
    /** @type {unknown} */
    let failed = null;
    try {
      const page = await load(pager.cursor);
      pager.loaded(page);
      body.replaceChildren(table(headings, page.items.map(row), empty));
    } catch (err) {
      failed = err;
      pager.loaded(null);
      body.replaceChildren(...(report ? [errorBox(err)] : []));
    }
    prev.disabled = !pager.hasPrevious;
    next.disabled = !pager.hasNext;
    number.textContent = `Page ${pager.number}`;
    if (--loading === 0) el.removeAttribute('aria-busy');
    return failed;
  }
  prev.addEventListener('click', () => pager.back() && show());
  next.addEventListener('click', () => pager.forward() && show());
  return {
    el,
    reload(report = true) {
      pager.reset();
      return show(report);
    },
  };
}

/**
 * createCard is a card with a creation form: create(values) makes the thing
 * and returns what to say; then the form clears and the list reloads.
 * @param {string} title
 * @param {Field[]} fields
 * @param {string} submitText
 * @param {PagedList} list
 * @param {(values: Values) => Promise<string>} create
 */
export function createCard(title, fields, submitText, list, create) {
  const f = form(fields, submitText, async (v) => {
    const said = await create(v);
    f.reset();
    await list.reload();
    return said;
  });
  return h('section', { class: 'card' }, h('h2', {}, title), f.el);
}
