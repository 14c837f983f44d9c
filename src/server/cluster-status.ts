import os from "node:os";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { InstanceRole } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { PoolConfig } from "../config/index.js";
import type { PoolHost } from "../runtime/pool-host.js";
import type { ClusterStatusInit } from "./auth-pool-service.js";
import type { Listener } from "./listener.js";

/**
 * advertisedAddress is where other instances forward writes to this one:
 * cluster.advertiseUrl when set, else the listener's own URL, with the
 * machine's host name in place of a wildcard address (0.0.0.0, ::) that
 * another host could not dial.
 */
export function advertisedAddress(config: PoolConfig, listener: Listener): string {
  if (config.cluster.advertiseUrl !== undefined) return config.cluster.advertiseUrl.replace(/\/+$/, "");
  const wildcard = ["0.0.0.0", "::", "[::]", ""].includes(config.server.host);
  if (!wildcard) return listener.url.replace(/\/+$/, "");
  const scheme = listener.url.startsWith("https:") ? "https" : "http";
  return `${scheme}://${os.hostname()}:${listener.port}`;
}

/** clusterStatus is GetPoolStatusResponse.cluster for this instance. */
export function clusterStatus(host: PoolHost, instanceId: string, store: string): ClusterStatusInit {
  const lease = host.lease;
  const storeError = host.keeper.storeError ?? host.currentReplica?.lastError;
  return {
    role: host.role === "leader" ? InstanceRole.LEADER : InstanceRole.STANDBY,
    instanceId,
    leaderId: lease?.holder ?? "",
    leaderAddress: lease?.address ?? "",
    epoch: BigInt(lease?.epoch ?? 0),
    ...(lease !== undefined && lease.expiresAt > 0 ? { leaseExpiresAt: timestampFromMs(lease.expiresAt) } : {}),
    journalRecord: BigInt(host.currentJournal.headRecord),
    store,
    storeError: storeError ?? "",
  };
}
