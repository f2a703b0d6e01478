// Texts built from broker data for VS Code's own UI (notifications, status
// bar). No VS Code import, so that they can be tested alone.
import type { ApprovalRequest } from '@credbroker/client';
import { durationToMs } from '@credbroker/client';

// Broker text in a notification: VS Code renders [text](target) in one as a
// link, so that pattern is broken up; the text itself stays readable.
export function plain(s: string): string {
  return s.replace(/\]\(/g, '] (').replace(/[\r\n]+/g, ' ');
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s % 86400 === 0) return `${s / 86400}d`;
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}

// "node, pid 4242, /usr/bin/node asks for aws/default to "deploy" …".
export function notificationText(r: ApprovalRequest): string {
  const need = r.need;
  const who = r.agentPeer !== '' ? r.agentPeer : 'An agent the broker could not identify';
  const what = `${need?.provider ?? '?'}/${need?.profile || 'default'}`;
  const scope: string[] = [];
  const ttl = durationToMs(need?.requestedTtl);
  if (ttl !== undefined && ttl > 0) scope.push(`for ${formatDuration(ttl)}`);
  const context = Object.entries(need?.context ?? {}).map(([k, v]) => `${k}=${v}`);
  if (context.length > 0) scope.push(`on ${context.join(', ')}`);
  let text = `credbroker: ${who} asks for ${what} credentials to "${need?.action ?? ''}"` +
    `${scope.length > 0 ? ` ${scope.join(' ')}` : ''}.`;
  if (r.missingFields.length > 0) text += ` The credential needs input (${r.missingFields.join(', ')}).`;
  if (r.bindingNote !== '') text += ` Note: ${r.bindingNote}`;
  return plain(text);
}
