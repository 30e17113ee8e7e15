/** Thrown when a label key or value breaks the label rules; the message says which rule. */
export class InvalidLabelError extends Error {
  override name = 'InvalidLabelError';
}

/** Lowercase letters, digits and `.-_/`, starting and ending with a letter or digit, 1–63 characters. */
export const LABEL_KEY_PATTERN = /^[a-z0-9](?:[a-z0-9._/-]{0,61}[a-z0-9])?$/;
export const LABEL_VALUE_MAX = 256;
export const LABELS_PER_NODE_MAX = 64;

export function checkLabelKey(key: string): void {
  if (!LABEL_KEY_PATTERN.test(key)) {
    throw new InvalidLabelError(
      `label key ${JSON.stringify(key)} must be 1-63 lowercase letters, digits or ".-_/", starting and ending with a letter or digit`,
    );
  }
}

export function checkLabelValue(key: string, value: string): void {
  if (value.length > LABEL_VALUE_MAX) throw new InvalidLabelError(`label ${key} is longer than ${LABEL_VALUE_MAX} characters`);
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new InvalidLabelError(`label ${key} contains control characters`);
}

/** Parses `key=value` as written on the command line. */
export function parseLabelAssignment(text: string): { key: string; value: string } {
  const at = text.indexOf('=');
  if (at <= 0) throw new InvalidLabelError(`expected key=value, got ${JSON.stringify(text)}`);
  const key = text.slice(0, at);
  const value = text.slice(at + 1);
  checkLabelKey(key);
  checkLabelValue(key, value);
  return { key, value };
}
