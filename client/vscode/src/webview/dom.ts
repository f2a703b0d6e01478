// DOM and text helpers for the credential form's webview: elements built
// from text only (never markup), and the form's time and duration formats.

type Attrs = Record<string, string | boolean | undefined>;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K, attrs: Attrs = {}, ...children: Array<Node | string | null | undefined>
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return e;
}

export function clear(e: Element): void {
  while (e.firstChild) e.removeChild(e.firstChild);
}

export function byId<T extends HTMLElement>(id: string): T | null {
  return document.getElementById(id) as T | null;
}

// Field names as the broker reports them: "values.access_key_id" in a
// violation, "access_key_id" in a finding.
export function fieldOf(name: string): string {
  return name.startsWith('values.') ? name.slice('values.'.length) : name;
}

export function formatTime(iso: string): string {
  if (iso === '') return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function formatDuration(seconds: number): string {
  if (seconds <= 0) return '';
  if (seconds % 86400 === 0) return `${seconds / 86400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

// "90s", "15m", "2h", "30d", "1h30m"; "" is 0 (the broker's default).
// undefined when it cannot be read.
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (t === '') return 0;
  const re = /(\d+)\s*([smhd])/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(t)) !== null) {
    total += Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'];
    end = re.lastIndex;
  }
  return end === t.length && total > 0 ? total : undefined;
}
