/** UsageError is bad input commander cannot see, such as an unreadable --file: exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}
