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

  /** Several required fields missing at once, each named by where it is read from: "missing msg.stream, msg.deviceId". */
  static missing(sources: string[]): InputError {
    const error = new InputError(sources.join(", "), "are missing");
    error.message = `missing ${sources.join(", ")}`;
    return error;
  }
}
