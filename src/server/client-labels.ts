/**
 * OTHER_CLIENTS is the `client` label of every client past the bound. It
 * cannot be a client's name: names start with a letter or digit.
 */
export const OTHER_CLIENTS = "(other)";

/** MAX_CLIENT_LABELS is how many clients outside the config get a label of their own. */
export const MAX_CLIENT_LABELS = 100;

/** ClientLabelsOptions say which names are always labelled, and how many others are. */
export interface ClientLabelsOptions {
  /** True for a name the config lists (or "default"): those are bounded by the config already. */
  isKnown: (client: string) => boolean;
  /** Default: MAX_CLIENT_LABELS. */
  limit?: number;
}

/**
 * createClientLabels returns the `client` label for a client's name in the
 * per-client metrics. A call without a named token may name any client, so
 * the names are not bounded by the config: known names always get their
 * own label, the first `limit` others too, and the rest share
 * OTHER_CLIENTS, so no caller can mint series without end. A name that
 * has its own label keeps it, so its counters never move between series.
 */
export function createClientLabels(options: ClientLabelsOptions): (client: string) => string {
  const limit = options.limit ?? MAX_CLIENT_LABELS;
  const labelled = new Set<string>();
  let others = 0;
  return (client) => {
    if (labelled.has(client)) return client;
    if (options.isKnown(client)) {
      labelled.add(client);
      return client;
    }
    if (others >= limit) return OTHER_CLIENTS;
    others++;
    labelled.add(client);
    return client;
  };
}
