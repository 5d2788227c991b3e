/** A msg that cannot be written as it is. `field` names the node property or msg part at fault. */
export class InputError extends Error {
  override readonly name = "InputError";
  readonly code = "INVALID_INPUT";
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field} ${problem}`);
  }
}
