import { type FSWatcher, watch } from "node:fs";
import path from "node:path";

/**
 * watchConfigFile calls onChange when the file changes. It watches the
 * directory, not the file: editors and config managers replace a file by
 * renaming a new one over it, which ends a watch on the old inode. Events
 * come in bursts (write, rename, chmod), so they are coalesced.
 */
export function watchConfigFile(file: string, onChange: () => void, settleMs = 200): { close(): void } {
  const name = path.basename(file);
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(path.dirname(file), (_event, changed) => {
      if (changed !== null && changed !== name) return;
      clearTimeout(timer);
      timer = setTimeout(onChange, settleMs);
      timer.unref();
    });
    watcher.unref();
  } catch {
    // A directory that cannot be watched (gone, or too many watches): SIGHUP and the RPC still reload.
    watcher = undefined;
  }
  return {
    close() {
      clearTimeout(timer);
      watcher?.close();
    },
  };
}
