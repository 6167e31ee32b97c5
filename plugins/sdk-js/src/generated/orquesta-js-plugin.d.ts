/// <reference path="./interfaces/orquesta-plugin-blob.d.ts" />
/// <reference path="./interfaces/orquesta-plugin-bus-handler.d.ts" />
/// <reference path="./interfaces/orquesta-plugin-config.d.ts" />
/// <reference path="./interfaces/orquesta-plugin-events.d.ts" />
/// <reference path="./interfaces/orquesta-plugin-http-handler.d.ts" />
/// <reference path="./interfaces/orquesta-plugin-http.d.ts" />
/// <reference path="./interfaces/orquesta-plugin-kv.d.ts" />
/// <reference path="./interfaces/orquesta-plugin-log.d.ts" />
/// <reference path="./interfaces/orquesta-plugin-messaging.d.ts" />
/// <reference path="./interfaces/orquesta-plugin-notify.d.ts" />
/// <reference path="./interfaces/orquesta-plugin-queue-handler.d.ts" />
/// <reference path="./interfaces/orquesta-plugin-schedule-handler.d.ts" />
/// <reference path="./interfaces/orquesta-plugin-sql.d.ts" />
/// <reference path="./interfaces/orquesta-plugin-task-handler.d.ts" />
/// <reference path="./interfaces/orquesta-plugin-topic-handler.d.ts" />
/// <reference path="./interfaces/orquesta-plugin-types.d.ts" />
/// <reference path="./interfaces/orquesta-plugin-workflow-tasks.d.ts" />
declare module 'orquesta:plugin/orquesta-js-plugin@0.1.2' {
  export type * as OrquestaPluginBlob012 from 'orquesta:plugin/blob@0.1.2'; // import orquesta:plugin/blob@0.1.2
  export type * as OrquestaPluginConfig012 from 'orquesta:plugin/config@0.1.2'; // import orquesta:plugin/config@0.1.2
  export type * as OrquestaPluginEvents012 from 'orquesta:plugin/events@0.1.2'; // import orquesta:plugin/events@0.1.2
  export type * as OrquestaPluginHttp012 from 'orquesta:plugin/http@0.1.2'; // import orquesta:plugin/http@0.1.2
  export type * as OrquestaPluginKv012 from 'orquesta:plugin/kv@0.1.2'; // import orquesta:plugin/kv@0.1.2
  export type * as OrquestaPluginLog012 from 'orquesta:plugin/log@0.1.2'; // import orquesta:plugin/log@0.1.2
  export type * as OrquestaPluginMessaging012 from 'orquesta:plugin/messaging@0.1.2'; // import orquesta:plugin/messaging@0.1.2
  export type * as OrquestaPluginNotify012 from 'orquesta:plugin/notify@0.1.2'; // import orquesta:plugin/notify@0.1.2
  export type * as OrquestaPluginSql012 from 'orquesta:plugin/sql@0.1.2'; // import orquesta:plugin/sql@0.1.2
  export type * as OrquestaPluginTypes012 from 'orquesta:plugin/types@0.1.2'; // import orquesta:plugin/types@0.1.2
  export type * as OrquestaPluginWorkflowTasks012 from 'orquesta:plugin/workflow-tasks@0.1.2'; // import orquesta:plugin/workflow-tasks@0.1.2
  export * as httpHandler from 'orquesta:plugin/http-handler@0.1.2'; // export orquesta:plugin/http-handler@0.1.2
  export * as queueHandler from 'orquesta:plugin/queue-handler@0.1.2'; // export orquesta:plugin/queue-handler@0.1.2
  export * as topicHandler from 'orquesta:plugin/topic-handler@0.1.2'; // export orquesta:plugin/topic-handler@0.1.2
  export * as busHandler from 'orquesta:plugin/bus-handler@0.1.2'; // export orquesta:plugin/bus-handler@0.1.2
  export * as scheduleHandler from 'orquesta:plugin/schedule-handler@0.1.2'; // export orquesta:plugin/schedule-handler@0.1.2
  export * as taskHandler from 'orquesta:plugin/task-handler@0.1.2'; // export orquesta:plugin/task-handler@0.1.2
}
