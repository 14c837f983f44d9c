/**
 * ExitCode is the contract between `authpool` and the scripts that run it:
 * each failure a script may want to branch on has its own code, and the
 * numbers never change meaning. 75 and 78 are sysexits.h's EX_TEMPFAIL and
 * EX_CONFIG, which supervisors (systemd, daemontools) already understand.
 */
export const ExitCode = {
  /** The command did what it was asked. */
  ok: 0,
  /** The server answered with an error not listed below. */
  error: 1,
  /** Bad usage: unknown option or command, missing or invalid argument. */
  usage: 2,
  /** The server could not be reached at the URL, or the URL and the pool disagree about TLS. */
  unreachable: 3,
  /** UNAUTHENTICATED or PERMISSION_DENIED: a missing or wrong token, or one without the call's role. */
  unauthenticated: 4,
  /** NOT_FOUND: no such subscription or session. */
  notFound: 5,
  /**
   * RESOURCE_EXHAUSTED: no subscription can take the session, a limit of the
   * client refuses it (with its fallback off), or a wait ran out (EX_TEMPFAIL).
   */
  noSubscription: 75,
  /** The configuration (or its store) cannot be used (EX_CONFIG). */
  config: 78,
} as const;

/** ExitCodeValue is one of the numbers in ExitCode. */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** exitCodesHelp is the exit-code table shown at the end of `--help`. */
export const exitCodesHelp = `Exit codes:
  0   ok
  1   the server answered an error not listed here
  2   bad usage (unknown option or command, missing argument)
  3   server unreachable (start it with \`authpool serve\` or \`npm start\`),
      or http:// and https:// mixed up, or no --ca for its certificate
  4   UNAUTHENTICATED or PERMISSION_DENIED (pass --token or set AUTHPOOL_TOKEN;
      a token without the call's role needs one that has it)
  5   NOT_FOUND (no such subscription or session)
  75  RESOURCE_EXHAUSTED: no subscription available, a client limit, or the
      wait ran out (exec: and no fallback)
  78  configuration error (serve)`;
