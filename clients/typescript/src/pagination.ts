/**
 * Task listings: `session.tasks.list()` answers a {@link TaskPagePromise}. Awaited, it is the
 * first page, a {@link TaskPage}: an array of tasks that also knows its `nextCursor`. Iterated
 * with `for await`, it yields every task of every page, fetching pages as it goes.
 *
 * ```ts
 * const page = await session.tasks.list({ status: 'running' }) // Task[] (one page)
 * for await (const task of session.tasks.list()) { ... }       // every task, newest first
 * ```
 *
 * @module
 */
import type { RequestOptions, Task } from './types.js';

/** Fetches the page that starts at `cursor`. */
export type PageLoader = (cursor: string | undefined, options: RequestOptions) => Promise<TaskPage>;

/** One page of a task listing, newest first: an array of tasks, with the cursor of the next. */
export class TaskPage extends Array<Task> {
  /** `map`, `filter`, `slice`... answer plain arrays, not pages. */
  static override get [Symbol.species](): ArrayConstructor {
    return Array;
  }

  /** Pass as `cursor` for the next page; `null` on the last page. */
  readonly nextCursor: string | null;
  readonly #load: PageLoader;
  readonly #options: RequestOptions;

  /** @internal Pages are made by `session.tasks.list()`. */
  constructor(tasks: readonly Task[], nextCursor: string | null, load: PageLoader, options: RequestOptions) {
    super();
    this.push(...tasks);
    this.nextCursor = nextCursor;
    this.#load = load;
    this.#options = options;
  }

  /** The tasks of this page, as a plain array. */
  get data(): Task[] {
    return Array.from(this);
  }

  /** True when another page follows. */
  get hasMore(): boolean {
    return this.nextCursor !== null && this.length > 0;
  }

  /** The next page, with this page's filters and options; `null` after the last page. */
  async getNextPage(options: RequestOptions = {}): Promise<TaskPage | null> {
    if (!this.hasMore) return null;
    return this.#load(this.nextCursor ?? undefined, { ...this.#options, ...options });
  }

  /** This page and every page after it. */
  async *iterPages(): AsyncGenerator<TaskPage, void, undefined> {
    let page: TaskPage | null = this;
    while (page !== null) {
      yield page;
      page = await page.getNextPage();
    }
  }
}

/**
 * The answer of `session.tasks.list()`: a promise of the first page, and an async iterable over
 * every task of every page. Nothing is fetched until it is awaited or iterated.
 */
export class TaskPagePromise implements Promise<TaskPage>, AsyncIterable<Task> {
  readonly [Symbol.toStringTag] = 'Promise';
  readonly #load: PageLoader;
  readonly #options: RequestOptions;
  readonly #cursor: string | undefined;
  #first: Promise<TaskPage> | undefined;

  /** @internal Made by `session.tasks.list()`. */
  constructor(load: PageLoader, cursor: string | undefined, options: RequestOptions) {
    this.#load = load;
    this.#cursor = cursor;
    this.#options = options;
  }

  #page(): Promise<TaskPage> {
    this.#first ??= this.#load(this.#cursor, this.#options);
    return this.#first;
  }

  then<R1 = TaskPage, R2 = never>(
    onFulfilled?: ((page: TaskPage) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.#page().then(onFulfilled, onRejected);
  }

  catch<R = never>(onRejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<TaskPage | R> {
    return this.#page().catch(onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<TaskPage> {
    return this.#page().finally(onFinally);
  }

  /** Every page, from the first. */
  async *iterPages(): AsyncGenerator<TaskPage, void, undefined> {
    yield* (await this.#page()).iterPages();
  }

  /** Every task of every page, newest first. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Task, void, undefined> {
    for await (const page of this.iterPages()) yield* page;
  }
}
