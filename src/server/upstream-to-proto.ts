import type { MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type ExternalUsageSchema,
  FigureBasis,
  type ModelPriceSchema,
  ObservationSource,
  PriceBasis as ProtoPriceBasis,
  RateLimitStatus,
  type UpstreamUtilizationSchema,
  type UsageFigureSchema,
  type UsagePollingSchema,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import type {
  CalibratedWindow,
  Fraction,
  ObservationSource as DomainSource,
  LearnedPrice,
  PriceBasis,
  SubscriptionView,
} from "../domain/index.js";
import { ratesOf } from "../domain/index.js";
import type { TranscriptScanStatus } from "../transcripts/index.js";
import type { PollStatus } from "../upstream/index.js";
import { percent, usd, windowToProto } from "./proto-values.js";

/**
 * Where each usage figure in a status comes from, and how old it is: the
 * upstream observations, the basis of the weekly and 5-hour percentages,
 * use found outside the pool, and the usage endpoint's polling.
 */

const sourceToProto: Record<DomainSource, ObservationSource> = {
  stream: ObservationSource.STREAM_EVENT,
  headers: ObservationSource.RESPONSE_HEADERS,
  report: ObservationSource.REPORT,
  oauth: ObservationSource.OAUTH_USAGE,
  transcript: ObservationSource.TRANSCRIPT,
};

const statusToProto = {
  allowed: RateLimitStatus.ALLOWED,
  allowed_warning: RateLimitStatus.ALLOWED_WARNING,
  rejected: RateLimitStatus.REJECTED,
} as const;

/** figureToProto explains one percent-used figure: its basis, and for upstream ones the observation. */
export function figureToProto(
  v: SubscriptionView,
  f: Fraction,
  window: CalibratedWindow,
): MessageInitShape<typeof UsageFigureSchema> {
  const basis =
    f.basis === "upstream"
      ? f.stale
        ? FigureBasis.UPSTREAM_STALE
        : FigureBasis.UPSTREAM
      : f.learned
        ? FigureBasis.LEARNED_ESTIMATE
        : FigureBasis.BUDGET_ESTIMATE;
  const o = f.basis === "upstream" ? f.observation : undefined;
  return {
    percentUsed: percent(f.value),
    basis,
    source: o === undefined ? ObservationSource.UNSPECIFIED : sourceToProto[o.source ?? "report"],
    observedAt: o === undefined ? undefined : timestampFromMs(o.observedAt),
    age: o === undefined ? undefined : durationFromMs(Math.max(0, Math.round(v.at - o.observedAt))),
    resetsAt: o?.resetsAt === undefined ? undefined : timestampFromMs(o.resetsAt),
    usdPerWindow: round2(1 / f.perUsd),
    usdPerWindowLearned: f.learned,
    calibrationSamples: v.state.calibration?.[window]?.samples ?? 0,
  };
}

/** upstreamToProto lists the observations whose window has not reset. */
export function upstreamToProto(v: SubscriptionView): MessageInitShape<typeof UpstreamUtilizationSchema>[] {
  return v.upstream.map(({ window, observation: o, stale }) => ({
    window: windowToProto[window],
    utilization: o.utilization,
    resetsAt: o.resetsAt === undefined ? undefined : timestampFromMs(o.resetsAt),
    observedAt: timestampFromMs(o.observedAt),
    status: o.status === undefined ? RateLimitStatus.UNSPECIFIED : statusToProto[o.status],
    source: sourceToProto[o.source ?? "report"],
    age: durationFromMs(Math.max(0, Math.round(v.at - o.observedAt))),
    stale,
    costSinceUsd: usd(o.costSinceUsd),
  }));
}

/** externalToProto shows use found in transcripts; unset when none was ever found and reading is off. */
export function externalToProto(
  v: SubscriptionView,
  scan: TranscriptScanStatus | undefined,
): MessageInitShape<typeof ExternalUsageSchema> | undefined {
  if (scan === undefined && v.state.externalSeenAt === undefined) return undefined;
  return {
    weeklyUsd: usd(v.weeklyExternalUsd),
    weeklyEstimatedUsd: usd(v.weeklyExternalEstimatedUsd),
    fiveHourUsd: usd(v.windowExternalUsd),
    lastSeenAt: v.state.externalSeenAt === undefined ? undefined : timestampFromMs(v.state.externalSeenAt),
    scannedAt: scan?.scannedAt === undefined ? undefined : timestampFromMs(scan.scannedAt),
    scanError: scan?.error ?? "",
    files: scan?.files ?? 0,
  };
}

/** pollingToProto shows the usage endpoint's polling of one account; unset when it is not polled. */
export function pollingToProto(poll: PollStatus | undefined): MessageInitShape<typeof UsagePollingSchema> | undefined {
  if (poll === undefined) return undefined;
  return {
    lastPolledAt: poll.lastPolledAt === undefined ? undefined : timestampFromMs(poll.lastPolledAt),
    nextPollAt: timestampFromMs(poll.nextPollAt),
    lastError: poll.lastError ?? "",
  };
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

const basisToProto: Record<PriceBasis, ProtoPriceBasis> = {
  line: ProtoPriceBasis.CLI,
  cli: ProtoPriceBasis.CLI,
  list: ProtoPriceBasis.LIST,
  estimate: ProtoPriceBasis.ESTIMATE,
};

/** modelPricesToProto shows what each learned model's tokens are priced at, and on what basis. */
export function modelPricesToProto(
  prices: ReadonlyArray<LearnedPrice & { model: string }>,
): MessageInitShape<typeof ModelPriceSchema>[] {
  return prices
    .map(({ model, ...learned }) => {
      const { price, basis } = ratesOf(model, learned);
      return {
        model,
        basis: basisToProto[basis],
        inputUsdPerMtok: usd(price.inputPerMTok),
        outputUsdPerMtok: usd(price.outputPerMTok),
        cacheWriteUsdPerMtok: usd(price.cacheWritePerMTok),
        cacheReadUsdPerMtok: usd(price.cacheReadPerMTok),
        learnedAt: timestampFromMs(learned.at),
      };
    })
    .sort((a, b) => a.model.localeCompare(b.model));
}
