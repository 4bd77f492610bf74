/**
 * File source. In: a YAML config path. Out: each saved, valid version of the file as a Config,
 * or a ConfigError naming the file, the config path, line and column (a file over the size cap is
 * refused unread, naming its size and the cap). Watches the file's folder
 * (editors save by writing a temp file and renaming it over the original, which a watch on the
 * file itself would lose) and re-reads on any event for that name; identical content emits nothing.
 * Texts are parsed by the given ConfigParser (`serve` passes its worker thread; default in-process).
 */
import { watch, type FSWatcher } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { checkConfigSize, type ParseOptions } from '../config/parse.js';
import { inProcessParser, type ConfigParser } from '../config/parse-worker.js';
import type { Config } from '../config/schema.js';
import { ConsulXdsError } from '../errors.js';

/**
 * A config file's text, shared by `serve`, `validate` and `kv put`. A file over the cap
 * (ParseOptions.maxBytes) is refused from its size alone: it is never read into memory.
 */
export async function readConfigFile(file: string, opts: ParseOptions = {}): Promise<string> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(file, 'r');
    checkConfigSize(file, (await handle.stat()).size, opts.maxBytes);
    return await handle.readFile('utf8');
  } catch (err) {
    if (err instanceof ConsulXdsError) throw err;
    throw new ConsulXdsError('CXDS_CONFIG_FILE', `${file}: cannot read config file: ${(err as Error).message}`, { cause: err });
  } finally {
    await handle?.close();
  }
}

export interface ConfigFileHandlers {
  onConfig(config: Config, origin: string): void;
  onError(error: Error): void;
}

export class ConfigFileSource {
  private readonly file: string;
  private readonly handlers: ConfigFileHandlers;
  private readonly opts: ParseOptions;
  private readonly parser: ConfigParser;
  private watcher?: FSWatcher;
  private lastText?: string;
  private pending?: NodeJS.Timeout;
  private reading: Promise<void> = Promise.resolve();

  constructor(file: string, handlers: ConfigFileHandlers, opts: ParseOptions = {}, parser: ConfigParser = inProcessParser) {
    this.file = path.resolve(file);
    this.handlers = handlers;
    this.opts = opts;
    this.parser = parser;
  }

  /** Reads the file once (throws if it is missing or invalid: there is nothing to serve), then watches it. */
  async start(): Promise<Config> {
    const text = await readConfigFile(this.file, this.opts);
    const config = await this.parser.parse(text, this.file, this.opts);
    this.lastText = text;
    this.watcher = watch(path.dirname(this.file), { persistent: false }, (_event, name) => {
      if (name !== null && name !== path.basename(this.file)) return;
      // Several events arrive per save; read once they settle.
      if (this.pending) clearTimeout(this.pending);
      this.pending = setTimeout(() => {
        this.pending = undefined;
        this.reading = this.reading.then(() => this.reload());
      }, 15);
    });
    return config;
  }

  close(): void {
    this.watcher?.close();
    if (this.pending) clearTimeout(this.pending);
  }

  private async reload(): Promise<void> {
    let text: string;
    try {
      text = await readConfigFile(this.file, this.opts);
    } catch (err) {
      // A rename-in-progress, a deleted file or one over the cap: keep the last good config.
      this.handlers.onError(err as Error);
      return;
    }
    if (text === this.lastText) return;
    this.lastText = text;
    try {
      this.handlers.onConfig(await this.parser.parse(text, this.file, this.opts), this.file);
    } catch (err) {
      this.handlers.onError(err as Error);
    }
  }
}
