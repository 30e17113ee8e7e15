import { type Component, flushSync, mount, unmount } from 'svelte';

/** Mounts a component into a fresh element; `destroy` unmounts it. */
export function render<Props extends Record<string, unknown>>(component: Component<Props>, props: Props): { target: HTMLElement; destroy: () => void } {
  const target = document.createElement('div');
  document.body.appendChild(target);
  const instance = mount(component, { target, props });
  flushSync();
  return {
    target,
    destroy: () => {
      void unmount(instance);
      target.remove();
    },
  };
}

/** Lets pending promises settle, then flushes Svelte's updates. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
  await new Promise((resolve) => setTimeout(resolve, 0));
  flushSync();
}

export function input(element: Element | null, value: string): void {
  const field = element as HTMLInputElement;
  field.value = value;
  field.dispatchEvent(new Event('input', { bubbles: true }));
  flushSync();
}

export function click(element: Element | null): void {
  (element as HTMLElement).click();
  flushSync();
}
