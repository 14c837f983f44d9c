import { LimitWindow } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { LimitWindow as DomainWindow } from "../domain/index.js";

/** Domain values every reply renders the same way. */

export const windowToProto: Record<DomainWindow, LimitWindow> = {
  unknown: LimitWindow.UNSPECIFIED,
  five_hour: LimitWindow.FIVE_HOUR,
  seven_day: LimitWindow.SEVEN_DAY,
  seven_day_opus: LimitWindow.SEVEN_DAY_OPUS,
  seven_day_sonnet: LimitWindow.SEVEN_DAY_SONNET,
  overage: LimitWindow.OVERAGE,
};

/** usd rounds dollars to the micro-dollar: money below a millionth of a dollar is float noise. */
export function usd(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}

/** percent renders a 0-1 fraction as a 0-100 percentage with two decimals. */
export function percent(fraction: number): number {
  return Math.round(fraction * 100 * 100) / 100;
}

/** wholeMs reads a Duration as whole milliseconds (what a wait or a period is counted in). */
export function wholeMs(d: { seconds: bigint; nanos: number }): number {
  return Number(d.seconds) * 1000 + Math.floor(d.nanos / 1e6);
}
