/** Thrown when an operation is refused; the message says what to do instead. */
export class OperationRefusedError extends Error {
  override name = 'OperationRefusedError';
}
