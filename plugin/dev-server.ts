import * as fs from 'fs';
import type { IncomingMessage, ServerResponse } from 'http';

/**
 * Files a dev server hands out without a build: compiled models and their weights, straight from the
 * cache, under `/@sdc/<hash>/<name>`. Streamed, so multi-gigabyte weights never sit in memory.
 */
export class DevFiles {
  private readonly files = new Map<string, string>();

  constructor(readonly prefix: string) {}

  /** Registers `file` and returns the URL path it is served at. */
  add(hash: string, name: string, file: string): string {
    const url = `${this.prefix}@sdc/${hash}/${name}`;
    this.files.set(url, file);
    return url;
  }

  middleware() {
    return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
      const url = (req.url ?? '').split('?')[0];
      const file = this.files.get(url);
      if (!file) return next();
      if (!fs.existsSync(file)) {
        res.statusCode = 410;
        res.end(`sdc: ${url} was compiled into ${file}, which no longer exists; reload the page`);
        return;
      }
      res.setHeader('Content-Type', 'application/octet-stream');
      res.setHeader('Content-Length', String(fs.statSync(file).size));
      res.setHeader('Cache-Control', 'no-cache');
      fs.createReadStream(file).pipe(res);
    };
  }
}
