// The values the form would send, and the live validation: a `validate`
// message to the extension 300 ms after the last keystroke.
import { byId } from './dom';
import { showFindings } from './messages';
import { chosenFiles, generateBox, inputOf, keepBox, post, state } from './state';

interface Collected {
  values: Record<string, string>;
  keep: string[];
  generate: string[];
}

export function collect(): Collected {
  const out: Collected = { values: {}, keep: [], generate: [] };
  const form = state.form;
  if (form === undefined) return out;
  for (const f of form.fields) {
    if (keepBox(f.name)?.checked) {
      out.keep.push(f.name);
      continue;
    }
    if (generateBox(f.name)?.checked) {
      out.generate.push(f.name);
      continue;
    }
    const input = inputOf(f.name);
    if (input === null) continue;
    const v = input.value;
    if (v === '') continue;
    // An unchanged stored non-sensitive value need not be sent again.
    if (!f.sensitive && v === f.currentValue && form.mode !== 'add') {
      out.keep.push(f.name);
      continue;
    }
    out.values[f.name] = v;
  }
  if (form.arbitraryFields) {
    for (const row of Array.from(document.querySelectorAll('.custom-row'))) {
      const name = row.querySelector<HTMLInputElement>('.custom-name')?.value.trim() ?? '';
      const value = row.querySelector<HTMLInputElement>('.custom-value')?.value ?? '';
      if (name !== '' && value !== '') out.values[name] = value;
    }
  }
  return out;
}

export function hasInput(c: Collected): boolean {
  return Object.keys(c.values).length > 0 || c.generate.length > 0 || chosenFiles.size > 0;
}

// While a validation is scheduled or on its way, #app carries
// data-validating (tests and assistive styling can wait on it).
export function setValidating(on: boolean): void {
  const app = byId('app');
  if (on) app?.setAttribute('data-validating', 'true');
  else app?.removeAttribute('data-validating');
}

export function scheduleValidate(): void {
  if (state.validateTimer !== undefined) clearTimeout(state.validateTimer);
  setValidating(true);
  state.validateTimer = setTimeout(runValidate, 300);
}

export function runValidate(): void {
  state.validateTimer = undefined;
  const c = collect();
  if (!hasInput(c)) {
    showFindings([], []);
    setValidating(false);
    return;
  }
  state.validateSeq += 1;
  post({ type: 'validate', seq: state.validateSeq, values: c.values, keep: c.keep });
}
