import type { Event } from "../../gen/authpool/v1/auth_pool_pb.js";
import { formatEvent } from "../cli/event-line.js";
import { el } from "./dom.js";

/** EVENTS_KEPT: the list shows the newest this many. */
const EVENTS_KEPT = 200;

/** prependEvent puts a live event at the top of the list, in the CLI's words (`authpool events`). */
export function prependEvent(list: HTMLOListElement, event: Event): void {
  list.prepend(el("li", { class: `event event-${event.payload.case ?? "unknown"}` }, formatEvent(event)));
  while (list.children.length > EVENTS_KEPT) list.lastElementChild?.remove();
}
