/// <reference path="./orquesta-plugin-events.d.ts" />
/// <reference path="./orquesta-plugin-types.d.ts" />
declare module 'orquesta:plugin/task-handler@0.1.2' {
  /**
   * `json` is the state's output; an `err` is the state's error (`Retry`/`Catch`).
   */
  export function handle(task: TaskInput): Response;
  export type Failure = import('orquesta:plugin/types@0.1.2').Failure;
  export type TaskInput = import('orquesta:plugin/events@0.1.2').TaskInput;
  export type Response = import('orquesta:plugin/events@0.1.2').Response;
}
