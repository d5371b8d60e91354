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
 * The default range of daily averages: the 30 days up to today, inclusive.
 * @param {Date} today
 */
export function defaultRange(today) {
  const from = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 29);
  return { from: isoDate(from), to: isoDate(today) };
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
