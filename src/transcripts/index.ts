/**
 * Transcripts: the JSONL files Claude Code appends to under a config dir's
 * `projects/`, tailed read-only so the pool can see usage done outside it.
 */
export {
  DEFAULT_MAX_BYTES_PER_FILE,
  DEFAULT_MAX_BYTES_TOTAL,
  PROJECTS_DIR,
  TRANSCRIPT_EXTENSION,
  listTranscriptFiles,
  readTranscripts,
} from "./tailer.js";
export type {
  FileCursor,
  ReadTranscriptsOptions,
  ReadTranscriptsResult,
  TranscriptChunk,
  TranscriptCursors,
  TranscriptLine,
  TranscriptReadError,
} from "./tailer.js";
export { TranscriptReconciler } from "./reconciler.js";
export type { ReconciledSubscription, TranscriptReconcilerOptions, TranscriptScanStatus } from "./reconciler.js";
