import { afterEach, describe, expect, it } from 'vitest';
import ConnectionIndicator from '../src/lib/components/ConnectionIndicator.svelte';
import EventFeed from '../src/lib/components/EventFeed.svelte';
import LabelEditor from '../src/lib/components/LabelEditor.svelte';
import PlacementView from '../src/lib/components/PlacementView.svelte';
import ReplicationView from '../src/lib/components/ReplicationView.svelte';
import RevokeNode from '../src/lib/components/RevokeNode.svelte';
import SignIn from '../src/lib/components/SignIn.svelte';
import type { ConsoleDecision } from '../src/lib/signing.ts';
import type { DecisionResult, FleetEvent } from '../src/lib/types.ts';
import { member } from './fixtures.ts';
import { click, input, render, settle } from './render.ts';

let view: ReturnType<typeof render> | undefined;
afterEach(() => {
  view?.destroy();
  view = undefined;
});

const text = (selector: string): string => view?.target.querySelector(selector)?.textContent?.trim() ?? '';

function recorder(fail?: string) {
  const decisions: ConsoleDecision[] = [];
  const decide = async (decision: ConsoleDecision): Promise<DecisionResult> => {
    decisions.push(decision);
    if (fail !== undefined) throw new Error(fail);
    return { decision: 'sig', node: member(1).peerId, labels: {}, revoked: null };
  };
  return { decisions, decide };
}

describe('the connection indicator', () => {
  it('says live, reconnecting with the reason, or refused', () => {
    view = render(ConnectionIndicator, { connection: { kind: 'live', peerId: member(0).peerId, sinceMs: 0 }, base: 'http://127.0.0.1:7420' });
    expect(text('[data-testid=connection]')).toBe('Live');
    view.destroy();
    view = render(ConnectionIndicator, { connection: { kind: 'reconnecting', attempt: 3, retryInMs: 1000, reason: 'the connection to the node closed' }, base: 'http://n' });
    expect(text('[data-testid=connection]')).toBe('Reconnecting (try 3)');
    expect(view.target.querySelector('[data-testid=connection]')?.getAttribute('title')).toContain('the connection to the node closed');
    view.destroy();
    view = render(ConnectionIndicator, { connection: { kind: 'refused', reason: 'revoked', retryInMs: 1 }, base: 'http://n' });
    expect(text('[data-testid=connection]')).toBe('Key refused');
  });
});

describe('the event feed', () => {
  const events: FleetEvent[] = [
    { id: '2', kind: 'member.dead', severity: 'high', at: 2_000, subject: member(1).peerId, detail: { after: 'suspect' }, source: member(0).peerId },
    { id: '1', kind: 'singleton.moved', severity: 'low', at: 1_000, detail: 'to node-0001', source: { peer: member(0).peerId, singleton: 'scheduler', epoch: 3 } },
  ];

  it('shows an empty state when the node has no event feed', () => {
    view = render(EventFeed, { events: null });
    expect(text('[data-testid=events-unsupported]')).toContain('does not provide a fleet event feed yet');
  });

  it('lists events and asks for a filter by kind and severity', () => {
    const filters: unknown[] = [];
    view = render(EventFeed, { events, filter: { kind: '', severity: '' }, setFilter: (f: unknown) => filters.push(f) });
    const rows = view.target.querySelectorAll('[data-testid=event]');
    expect([...rows].map((r) => r.getAttribute('data-kind'))).toEqual(['member.dead', 'singleton.moved']);
    expect(rows[0]?.textContent).toContain('{"after":"suspect"}');
    expect(rows[1]?.textContent).toContain('scheduler #3 on');
    const severity = view.target.querySelector('[data-testid=event-severity]') as HTMLSelectElement;
    severity.value = 'high';
    severity.dispatchEvent(new Event('change', { bubbles: true }));
    input(view.target.querySelector('[data-testid=event-kind]'), 'member.dead');
    (view.target.querySelector('form') as HTMLFormElement).requestSubmit();
    expect(filters).toEqual([{ kind: '', severity: 'high' }, { kind: 'member.dead', severity: '' }]);
  });
});

describe('the placement view', () => {
  it('shows an empty state when the node does not report singletons', () => {
    view = render(PlacementView, { singletons: undefined, members: [member(0)] });
    expect(text('[data-testid=placement-unsupported]')).toContain('does not report control-plane placement yet');
  });

  it('shows each singleton with its owner, the owner\'s state and the epoch', () => {
    const owner = member(4);
    view = render(PlacementView, { singletons: [{ name: 'scheduler', owner: owner.peerId, epoch: 7, since: Date.now() - 5_000 }], members: [member(0), owner] });
    const row = view.target.querySelector('[data-testid=singleton]');
    expect(row?.textContent).toContain('scheduler');
    expect(row?.textContent).toContain(owner.name);
    expect(row?.textContent).toContain('dead');
    expect(row?.textContent).toContain('7');
  });
});

describe('the replication view', () => {
  it('lists each peer session with its counters', () => {
    const peer = member(1);
    view = render(ReplicationView, {
      peers: [{ peer: peer.peerId, open: true, bytesIn: 2048, bytesOut: 100, messagesIn: 3, messagesOut: 4, snapshotsIn: 1, refusedIn: 0, lastMessageAt: Date.now() }],
      members: [member(0), peer],
      connectedPeers: [peer.peerId],
    });
    const row = view.target.querySelector('[data-testid=peer-session]');
    expect(row?.textContent).toContain(peer.name);
    expect(row?.textContent).toContain('2.0 KiB');
  });
});

describe('label actions', () => {
  it('signs a decision to set a label and one to remove a label', async () => {
    const { decisions, decide } = recorder();
    view = render(LabelEditor, { peerId: member(1).peerId, labels: { zone: 'eu-1' }, decide });
    input(view.target.querySelector('[data-testid=label-key]'), 'role');
    input(view.target.querySelector('[data-testid=label-value]'), 'gateway');
    (view.target.querySelector('form') as HTMLFormElement).requestSubmit();
    await settle();
    click(view.target.querySelector('[aria-label="Remove label zone"]'));
    await settle();
    expect(decisions).toEqual([
      { kind: 'labels', content: { node: member(1).peerId, set: { role: 'gateway' }, remove: [] } },
      { kind: 'labels', content: { node: member(1).peerId, set: {}, remove: ['zone'] } },
    ]);
  });

  it('shows the node\'s refusal in words', async () => {
    const { decide } = recorder('The node refused it: label key "Role" must be 1-63 lowercase letters.');
    view = render(LabelEditor, { peerId: member(1).peerId, labels: {}, decide });
    input(view.target.querySelector('[data-testid=label-key]'), 'Role');
    (view.target.querySelector('form') as HTMLFormElement).requestSubmit();
    await settle();
    expect(text('[data-testid=label-error]')).toContain('must be 1-63 lowercase letters');
  });
});

describe('revoking a node', () => {
  it('asks for the node\'s name before it signs the revocation', async () => {
    const { decisions, decide } = recorder();
    const target = member(2);
    view = render(RevokeNode, { peerId: target.peerId, name: target.name, revoked: undefined, decide });
    click(view.target.querySelector('[data-testid=revoke-start]'));
    const confirm = view.target.querySelector('[data-testid=revoke-confirm]') as HTMLButtonElement;
    expect(confirm.disabled).toBe(true);
    input(view.target.querySelector('[data-testid=revoke-confirm-name]'), 'node-9999');
    expect(confirm.disabled).toBe(true);
    input(view.target.querySelector('[data-testid=revoke-confirm-name]'), target.name);
    expect(confirm.disabled).toBe(false);
    click(confirm);
    await settle();
    expect(decisions).toEqual([{ kind: 'revoke-node', content: { node: target.peerId, reason: '' } }]);
  });
});

describe('the sign-in page', () => {
  it('explains where the key file is and shows why an import failed', async () => {
    const signIn = async (): Promise<void> => {
      throw new Error('that is the fleet root key, not an operator key: keep it offline and import operator.key instead');
    };
    view = render(SignIn, { apiBase: 'http://127.0.0.1:7420', signIn, switchNode: () => {} });
    expect(view.target.textContent).toContain('operator.key');
    expect(view.target.textContent).toContain('the node never receives it');
    const textarea = view.target.querySelector('textarea') as HTMLTextAreaElement;
    textarea.value = '{"kind":"powernode-root-key"}';
    textarea.dispatchEvent(new Event('input', { bubbles: true }));
    await settle();
    click(view.target.querySelector('details button'));
    await settle();
    expect(text('[data-testid=sign-in-error]')).toContain('fleet root key');
  });
});
