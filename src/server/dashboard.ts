import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The web dashboard's files, served by the pool itself at GET / beside the
 * RPCs (same origin: the page calls the pool through the Connect protocol
 * without CORS). The files are public: the page holds no data; every call
 * it makes carries the operator's token and is checked like any other.
 */

interface Request {
  url?: string;
  method?: string;
}
interface Response {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body: string | Buffer): unknown;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
};

/** uPlot and the meters set inline styles; nothing else but this origin is allowed. */
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/** dashboardDir finds the built dashboard (dist/web), from the sources or from dist; undefined when not built. */
export function dashboardDir(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // src/server -> <root>/dist/web; dist/src/server -> <root>/dist/web.
  for (const candidate of [path.resolve(here, "../../dist/web"), path.resolve(here, "../../web")]) {
    if (existsSync(path.join(candidate, "index.html"))) return candidate;
  }
  return undefined;
}

/**
 * dashboardFallback answers GET / and the dashboard's files from `dir`,
 * and hands every other request to `next` (GET /metrics, then 404). Only
 * the files present at start are served, by name: no path from a request
 * reaches the file system.
 */
export function dashboardFallback<Req extends Request, Res extends Response>(
  dir: string | undefined,
  next: (req: Req, res: Res) => void,
): (req: Req, res: Res) => void {
  const files = new Map<string, { type: string; body: Buffer }>();
  if (dir !== undefined)
    for (const name of readdirSync(dir)) {
      const type = TYPES[path.extname(name)];
      if (type !== undefined) files.set(`/${name}`, { type, body: readFileSync(path.join(dir, name)) });
    }
  return (req, res) => {
    const url = (req.url ?? "").split("?")[0] ?? "";
    const name = url === "/" ? "/index.html" : url;
    const file = req.method === "GET" || req.method === "HEAD" ? files.get(name) : undefined;
    if (file === undefined) {
      if (url === "/" && dir === undefined) {
        res.writeHead(404, { "content-type": "text/plain" });
        res.end("the dashboard is not built: run `npm run build`\n");
        return;
      }
      next(req, res);
      return;
    }
    res.writeHead(200, {
      "content-type": file.type,
      "cache-control": name === "/index.html" ? "no-cache" : "public, max-age=300",
      ...SECURITY_HEADERS,
    });
    res.end(req.method === "HEAD" ? "" : file.body);
  };
}
