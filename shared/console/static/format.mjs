// @ts-check
// How the console writes values as text. No DOM here: `node --test` runs it.

/**
 * A local date as YYYY-MM-DD.
 * @param {Date} d
 */
export function isoDate(d) {
  const p = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/**
 * The day after a YYYY-MM-DD date, as YYYY-MM-DD: the exclusive end of a
 * range whose last day is inclusive.
 * @param {string} day
 */
export function nextDay(day) {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}

/**
 * The default range of daily averages: the 30 days up to today, inclusive.
 * @param {Date} today
 */
export function defaultRange(today) {
  const from = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 29);
  return { from: isoDate(from), to: isoDate(today) };
}

/**
 * The time zone the browser shows times in (its IANA name), UTC when the
 * browser names none.
 */
export function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** @type {Map<string, Intl.DateTimeFormat>} */
const timeFormats = new Map();

/**
 * A timestamp as the reader's locale writes it in zone, followed by the
 * zone's name so that no time on the page is ambiguous ("2 Dec 2026,
 * 14:05:03 Europe/Berlin"); the value as given when it is not a time, a
 * dash when there is none.
 * @param {string | Date | null | undefined} value
 * @param {string} zone an IANA time zone
 * @param {string} [locale] (default the reader's)
 */
export function formatTime(value, zone, locale) {
  if (!value) return '–';
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  const key = `${locale ?? ''}\u0000${zone}`;
  let f = timeFormats.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'medium', timeZone: zone });
    timeFormats.set(key, f);
  }
  return `${f.format(d)} ${zone}`;
}

/**
 * A duration in seconds as the largest two units ("2 h 05 min", "45 s").
 * @param {unknown} seconds
 */
export function formatDuration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return '–';
  const s = Math.round(seconds);
  const p = (/** @type {number} */ n) => String(n).padStart(2, '0');
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${p(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${p(Math.floor((s % 3600) / 60))} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/**
 * A temperature in °C with two decimals, or a dash when there is none.
 * @param {unknown} v
 */
export function formatTemp(v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  return `${v.toFixed(2)} °C`;
}

/**
 * What a list shows of a dead letter's first bytes: its head as text, with
 * an ellipsis when the message is longer, or how long it is when the bytes
 * are not text.
 * @param {{ head?: string, head_text?: string | null, size: number }} item
 *   head is base64; head_text is present when those bytes are text
 */
export function describeHead(item) {
  const shown = item.head ? Math.floor((item.head.length * 3) / 4) - (item.head.match(/=+$/)?.[0].length ?? 0) : 0;
  if (typeof item.head_text !== 'string') return `(not text, ${item.size} bytes)`;
  return item.size > shown ? `${item.head_text}…` : item.head_text;
}
