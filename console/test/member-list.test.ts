import { afterEach, describe, expect, it } from 'vitest';
import MemberList from '../src/lib/components/MemberList.svelte';
import { filterMembers } from '../src/lib/members.ts';
import { member } from './fixtures.ts';
import { click, input, render } from './render.ts';

describe('the member list', () => {
  let view: ReturnType<typeof render> | undefined;
  afterEach(() => {
    view?.destroy();
    view = undefined;
  });

  const thousand = Array.from({ length: 1_000 }, (_, i) => member(i));

  it('renders a screenful of 1,000 members, not all of them', () => {
    view = render(MemberList, { members: thousand });
    const rows = view.target.querySelectorAll('[data-testid=member]');
    expect(rows.length).toBeGreaterThan(10);
    expect(rows.length).toBeLessThan(60);
    expect(view.target.querySelector('[role=list]')?.getAttribute('data-rows')).toBe('1000');
    expect(view.target.querySelector('[data-testid=member-summary]')?.textContent).toContain('1000 members');
  });

  it('counts members by state and lists trouble first', () => {
    view = render(MemberList, { members: thousand });
    expect(view.target.querySelector('[data-testid=count-alive]')?.textContent).toBe('600');
    expect(view.target.querySelector('[data-testid=count-suspect]')?.textContent).toBe('200');
    expect(view.target.querySelector('[data-testid=count-dead]')?.textContent).toBe('200');
    expect(view.target.querySelector('[data-testid=member]')?.getAttribute('data-state')).toBe('dead');
  });

  it('filters by state and searches names, labels and addresses', () => {
    view = render(MemberList, { members: thousand });
    click(view.target.querySelector('[data-testid=filter-suspect]'));
    expect(view.target.querySelector('[data-testid=member-summary]')?.textContent).toContain('200 of 1000');
    for (const row of view.target.querySelectorAll('[data-testid=member]')) expect(row.getAttribute('data-state')).toBe('suspect');
    click(view.target.querySelector('[data-testid=filter-suspect]'));
    input(view.target.querySelector('[data-testid=member-search]'), 'role=gateway');
    expect(view.target.querySelector('[data-testid=member-summary]')?.textContent).toContain('100 of 1000');
    input(view.target.querySelector('[data-testid=member-search]'), 'node-0042');
    const rows = view.target.querySelectorAll('[data-testid=member]');
    expect(rows.length).toBe(1);
    expect(rows[0]?.textContent).toContain('node-0042');
    input(view.target.querySelector('[data-testid=member-search]'), 'tcp/10999');
    expect(view.target.querySelectorAll('[data-testid=member]').length).toBe(1);
    input(view.target.querySelector('[data-testid=member-search]'), 'no-such-thing');
    expect(view.target.textContent).toContain('No member matches');
  });

  it('filters 1,000 members in a few milliseconds', () => {
    const started = performance.now();
    for (let i = 0; i < 20; i++) filterMembers(thousand, { text: `eu-${i % 3} host`, states: new Set(['alive']) });
    expect((performance.now() - started) / 20).toBeLessThan(20);
  });
});
