// Approve and save: checks what the broker would refuse anyway (a lifetime,
// the PIN typed twice), then posts the decision; empties the secret inputs
// once it went through.
import { addMessage, clearMessages } from './messages';
import { byId, parseDuration } from './dom';
import { selectedScope } from './decision';
import { chosenFiles, post, setBusy, setStatus, state } from './state';
import { collect, hasInput } from './validate';

export function onApprove(): void {
  const form = state.form;
  if (state.busy || form === undefined) return;
  state.submitted = true;
  clearMessages();
  const c = collect();
  const ttlText = byId<HTMLInputElement>('ttl')?.value ?? '';
  const ttlSeconds = parseDuration(ttlText);
  if (ttlSeconds === undefined) {
    addMessage('ttl', 'error', 'Write a lifetime as e.g. 15m, 2h or 30d.');
    byId('ttl')?.focus();
    return;
  }
  const scope = selectedScope();
  const pin = byId<HTMLInputElement>('pin')?.value ?? '';
  const newPin = byId<HTMLInputElement>('new-pin')?.value ?? '';
  const newPinRepeat = byId<HTMLInputElement>('new-pin-repeat')?.value ?? '';
  const storePassphrase = byId<HTMLInputElement>('store-passphrase')?.value ?? '';
  const choosing = form.pin.known && !form.pin.pinSet && (form.pin.required || newPin !== '' || newPinRepeat !== '');
  if (choosing) {
    if (newPin.length < 4) {
      addMessage('new_pin', 'error', 'Choose a PIN of at least 4 characters.');
      byId('new-pin')?.focus();
      return;
    }
    if (newPin !== newPinRepeat) {
      addMessage('new_pin', 'error', 'The two PINs differ: type the same PIN twice.');
      byId('new-pin-repeat')?.focus();
      return;
    }
    if (form.pin.firstPinNeedsPassphrase && storePassphrase === '') {
      addMessage('store_passphrase', 'error', 'Type the store\'s passphrase to set the first PIN.');
      byId('store-passphrase')?.focus();
      return;
    }
  } else if (form.pin.known && form.pin.pinSet && form.pin.windowUntil === '' && pin === '') {
    addMessage('pin', 'error', 'Type your approval PIN.');
    byId('pin')?.focus();
    return;
  }
  setBusy(true);
  setStatus('Approving…');
  post({
    type: 'approve',
    values: c.values,
    generate: c.generate,
    scope,
    ttlSeconds,
    actionPattern: scope === 'standing' ? (byId<HTMLInputElement>('action-pattern')?.value.trim() ?? '') : '',
    pin,
    newPin,
    newPinRepeat,
    storePassphrase,
  });
}

// The same decision as onApprove, with the passkey for the PIN: the
// extension runs the ceremony in the browser and answers done or failed.
export function onApproveWithPasskey(): void {
  const form = state.form;
  if (state.busy || form === undefined) return;
  state.submitted = true;
  clearMessages();
  const c = collect();
  const ttlSeconds = parseDuration(byId<HTMLInputElement>('ttl')?.value ?? '');
  if (ttlSeconds === undefined) {
    addMessage('ttl', 'error', 'Write a lifetime as e.g. 15m, 2h or 30d.');
    byId('ttl')?.focus();
    return;
  }
  const scope = selectedScope();
  setBusy(true);
  setPasskeyWaiting(true);
  setStatus('Opening the passkey page in your browser…');
  post({
    type: 'approveWithPasskey',
    values: c.values,
    generate: c.generate,
    scope,
    ttlSeconds,
    actionPattern: scope === 'standing' ? (byId<HTMLInputElement>('action-pattern')?.value.trim() ?? '') : '',
  });
}

// While the passkey ceremony runs, "Cancel passkey" stops waiting for it.
export function setPasskeyWaiting(on: boolean): void {
  const cancel = byId<HTMLButtonElement>('cancel-passkey');
  if (cancel !== null) cancel.hidden = !on;
}

export function onSave(): void {
  const form = state.form;
  if (state.busy || form === undefined) return;
  state.submitted = true;
  clearMessages();
  const c = collect();
  const profile = byId<HTMLInputElement>('profile')?.value.trim() ?? form.profile;
  if (!hasInput(c)) {
    addMessage('', 'error', 'Nothing to save: fill in the fields (or choose a file).');
    return;
  }
  setBusy(true);
  setStatus('Saving…');
  post({ type: 'save', profile, values: c.values, generate: c.generate });
}

export function clearPinInputs(): void {
  for (const id of ['pin', 'new-pin', 'new-pin-repeat', 'store-passphrase']) {
    const i = byId<HTMLInputElement>(id);
    if (i !== null) i.value = '';
  }
}

// Empties every input that can hold a secret, once it has been submitted.
export function clearSecrets(): void {
  for (const i of Array.from(document.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>(
    'input, textarea'))) {
    if (i.type === 'checkbox' || i.type === 'radio') continue;
    i.value = '';
    i.disabled = true;
  }
  chosenFiles.clear();
}
