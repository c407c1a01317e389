import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { parseEventLine, type TrainerEvent } from './events.js';
import { findPython } from './python.js';
import { TERMINAL_EVENTS, type RuntimeInfo, type TrainerHandle, type TrainerRunner, type WorkerExit, type WorkerStart } from './runner.js';

const STDERR_TAIL_LINES = 40;

export interface LocalProcessRunnerOptions {
  /** XRAY_PYTHON; empty = discover (see findPython). */
  python: string;
  /** The folder that holds the `trainer` package (the project root). */
  cwd: string;
  logger?: Logger;
  /** Extra environment for the worker. */
  env?: Record<string, string>;
}

/** A small async queue: producers push, one consumer iterates until `end()`. */
class EventQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #waiting: ((r: IteratorResult<T>) => void) | null = null;
  #ended = false;
  #iterated = false;

  push(item: T): void {
    if (this.#ended) return;
    if (this.#waiting) {
      const resolve = this.#waiting;
      this.#waiting = null;
      resolve({ value: item, done: false });
    } else this.#items.push(item);
  }

  end(): void {
    this.#ended = true;
    if (this.#waiting && this.#items.length === 0) {
      const resolve = this.#waiting;
      this.#waiting = null;
      resolve({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.#iterated) throw new Error('worker events can be iterated once');
    this.#iterated = true;
    return {
      next: () => {
        const item = this.#items.shift();
        if (item !== undefined) return Promise.resolve({ value: item, done: false });
        if (this.#ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.#waiting = resolve));
      },
    };
  }
}

class LocalHandle implements TrainerHandle {
  readonly events: EventQueue<TrainerEvent> = new EventQueue();
  readonly exit: Promise<WorkerExit>;
  readonly #child: ChildProcess;
  readonly #stderr: string[] = [];
  readonly #log: WriteStream | null;
  readonly #logger: Logger | undefined;
  #terminalSeen = false;
  /** torchrun and its ranks run in their own process group (the launcher is its leader). */
  readonly #group: boolean;

  constructor(child: ChildProcess, terminal: readonly string[], log: WriteStream | null, logger: Logger | undefined, group = false) {
    this.#child = child;
    this.#group = group;
    this.#log = log;
    this.#logger = logger;

    const stdoutDone = new Promise<void>((resolve) => {
      const lines = createInterface({ input: child.stdout!, crlfDelay: Infinity });
      lines.on('line', (line) => {
        const event = parseEventLine(line);
        if (!event) {
          if (line.trim()) this.#writeLog(`[stdout] ${line}`);
          return;
        }
        if (event.event === 'other' && event.problem) this.#logger?.warn({ event: event.name, problem: event.problem }, 'worker event did not match the protocol');
        // A trial's `failed`/`cancelled` inside a study is not the end of the worker.
        const topLevel = event.event === 'other' || (event as { trial?: number }).trial === undefined;
        if (topLevel && terminal.includes(event.event)) this.#terminalSeen = true;
        this.events.push(event);
      });
      lines.on('close', resolve);
    });
    const stderrDone = new Promise<void>((resolve) => {
      const lines = createInterface({ input: child.stderr!, crlfDelay: Infinity });
      lines.on('line', (line) => {
        this.#stderr.push(line);
        if (this.#stderr.length > STDERR_TAIL_LINES) this.#stderr.shift();
        this.#writeLog(line);
      });
      lines.on('close', resolve);
    });
    const exited = new Promise<WorkerExit>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (err) => {
        this.#stderr.push(`spawn failed: ${err.message}`);
        resolve({ code: null, signal: null });
      });
    });
    this.exit = (async () => {
      const status = await exited;
      // Ranks left behind by a launcher that died would hold the pipes open (and the CPU).
      if (group) this.#signalGroup('SIGKILL');
      await Promise.all([stdoutDone, stderrDone]);
      if (!this.#terminalSeen) {
        const how = status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
        const tail = this.stderrTail();
        this.events.push({
          event: 'failed',
          reason: `the worker ${how} without reporting a result${tail ? `; stderr tail:\n${tail}` : ''}`,
          error_type: 'WorkerDied',
          exit_code: status.code,
          signal: status.signal,
          stderr_tail: tail,
        });
      }
      this.events.end();
      await new Promise<void>((resolve) => (this.#log ? this.#log.end(resolve) : resolve()));
      return status;
    })();
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  #writeLog(line: string): void {
    this.#log?.write(line + '\n');
    this.#logger?.debug({ worker: this.#child.pid }, line);
  }

  #signal(signal: NodeJS.Signals): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      try {
        this.#child.kill(signal);
      } catch {
        /* already gone */
      }
    }
  }

  #signalGroup(signal: NodeJS.Signals): void {
    if (this.#child.pid === undefined) return;
    try {
      process.kill(-this.#child.pid, signal);
    } catch {
      /* the group is gone */
    }
  }

  /** torchrun forwards SIGTERM to every rank and waits for them: each checkpoints (rank 0 writes). */
  cancel(): void {
    this.#signal('SIGTERM');
  }

  kill(): void {
    if (this.#group) this.#signalGroup('SIGKILL');
    else this.#signal('SIGKILL');
  }

  stderrTail(): string {
    return this.#stderr.slice(-15).join('\n');
  }
}

/**
 * Runs the worker as a local subprocess: `<python> -m trainer <command> --spec <file>` in the
 * project root, events read line by line from stdout, stderr appended to the job's log. A job of
 * N > 1 processes runs under torchrun on this machine (`python -m trainer.torchrun --standalone
 * --nproc_per_node N -m trainer run --spec <file>`); every rank shares the one stdout, where only
 * rank 0 writes events.
 */
export class LocalProcessRunner implements TrainerRunner {
  readonly kind = 'local';
  readonly #options: LocalProcessRunnerOptions;

  constructor(options: LocalProcessRunnerOptions) {
    this.#options = Object.freeze({ ...options });
  }

  runtime(): Promise<RuntimeInfo> {
    return findPython(this.#options.python);
  }

  async start(options: WorkerStart): Promise<TrainerHandle> {
    const { python } = await this.runtime();
    mkdirSync(path.dirname(options.specPath), { recursive: true });
    writeFileSync(options.specPath, JSON.stringify(options.spec, null, 1));
    const threads = String(Math.max(1, options.threads));
    const processes = Math.max(1, options.processes ?? 1);
    const worker = ['-m', 'trainer', options.command, '--spec', options.specPath];
    const args = processes > 1 ? ['-m', 'trainer.torchrun', '--standalone', '--nnodes=1', `--nproc_per_node=${processes}`, '--monitor_interval=1', ...worker] : worker;
    const child = spawn(python, args, {
      cwd: this.#options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: processes > 1,
      env: {
        ...process.env,
        OMP_NUM_THREADS: threads,
        MKL_NUM_THREADS: threads,
        OPENBLAS_NUM_THREADS: threads,
        PYTHONUNBUFFERED: '1',
        PYTHONDONTWRITEBYTECODE: '1',
        ...this.#options.env,
      },
      windowsHide: true,
    });
    let log: WriteStream | null = null;
    if (options.logPath) {
      mkdirSync(path.dirname(options.logPath), { recursive: true });
      log = createWriteStream(options.logPath, { flags: 'a' });
      log.on('error', () => {});
    }
    return new LocalHandle(child, TERMINAL_EVENTS[options.command], log, this.#options.logger, processes > 1);
  }
}
