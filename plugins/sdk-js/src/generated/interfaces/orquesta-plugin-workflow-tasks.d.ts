/// <reference path="./orquesta-plugin-types.d.ts" />
declare module 'orquesta:plugin/workflow-tasks@0.1.2' {
  /**
   * The task ends with `output` (JSON) as its result.
   */
  export function sendTaskSuccess(taskToken: string, output: string): void;
  /**
   * The task fails with `error` and `cause`, which its state's `Retry` and `Catch`
   * match as any task error.
   */
  export function sendTaskFailure(taskToken: string, error: string | undefined, cause: string | undefined): void;
  /**
   * The task is still being worked on: its `HeartbeatSeconds` start again.
   */
  export function sendTaskHeartbeat(taskToken: string): void;
  export type HostError = import('orquesta:plugin/types@0.1.2').HostError;
  /**
   * Why an answer was refused: the cloud's error names, then the host's own.
   */
  export type TaskError = TaskErrorInvalidToken | TaskErrorTaskDoesNotExist | TaskErrorTaskTimedOut | TaskErrorInvalidOutput | TaskErrorHost;
  /**
   * Not a token: empty, over 1,024 characters, or with characters no token has.
   */
  export interface TaskErrorInvalidToken {
    tag: 'invalid-token',
    val: string,
  }
  /**
   * No task of this tenant has this token: made up, or another tenant's (both
   * answered alike).
   */
  export interface TaskErrorTaskDoesNotExist {
    tag: 'task-does-not-exist',
    val: string,
  }
  /**
   * The task no longer waits: answered already (a token is answered once), timed
   * out, retried with a new token, or its execution ended.
   */
  export interface TaskErrorTaskTimedOut {
    tag: 'task-timed-out',
    val: string,
  }
  /**
   * An output that is not JSON or is over 256 KiB, an error over 256 characters,
   * a cause over 32,768.
   */
  export interface TaskErrorInvalidOutput {
    tag: 'invalid-output',
    val: string,
  }
  /**
   * Not granted (`denied`), not available on this host, too many answers in one
   * invocation (`invalid`), or the store failed.
   */
  export interface TaskErrorHost {
    tag: 'host',
    val: HostError,
  }
}
