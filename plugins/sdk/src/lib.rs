//! The guest side of the orquesta contract (docs/CONTRACT.md): WIT bindings for
//! `orquesta:plugin` plus the few helpers every plugin wants. A plugin implements
//! [`Handler`] and calls `orquesta_sdk::export!(MyPlugin);` to export the handler of every
//! trigger kind, or `orquesta_sdk::export!(MyPlugin: http, task);` to export only those
//! (the host then routes only those triggers to it).

// The capabilities, and the types they use.
wit_bindgen::generate!({
    path: "../../wit",
    world: "capabilities",
});

pub use http_trigger::orquesta::plugin::events::{
    BusEvent, HttpRequest, HttpResponse, Identity, Notification, QueueMessage, Response,
    ScheduledTick, TaskInput,
};
pub use orquesta::plugin::types::{Failure, HostError};
pub use orquesta::plugin::{blob, config, http, kv, log, messaging, notify, sql, workflow_tasks};

pub mod tasks;

/// What triggered the invocation: the argument of the handler the host called.
#[derive(Debug, Clone)]
pub enum Event {
    Http(HttpRequest),
    Queue(Vec<QueueMessage>),
    Topic(Notification),
    Bus(BusEvent),
    Schedule(ScheduledTick),
    Task(TaskInput),
}

/// A plugin: one function for every trigger kind it exports (see [`export!`]).
pub trait Handler {
    /// Handle one event. An `Err` fails the whole invocation (for a queue batch: every
    /// message comes back).
    fn handle(event: Event) -> Result<Response, Failure>;
}

// One module per trigger kind: a world exporting only that kind's handler interface, so a
// plugin's component exports the handlers it names in `export!` and no others. Each
// `export_*!` macro also carries its world's type section into the plugin.

#[doc(hidden)]
pub mod http_trigger {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "http-trigger",
        // `events` is generated here, once: the other trigger worlds use it from here.
        with: {
            "orquesta:plugin/types@0.1.2": crate::orquesta::plugin::types,
            "orquesta:plugin/events@0.1.2": generate,
        },
        pub_export_macro: true,
        export_macro_name: "export_http",
        default_bindings_module: "orquesta_sdk::http_trigger",
    });
}

#[doc(hidden)]
pub mod queue_trigger {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "queue-trigger",
        with: {
            "orquesta:plugin/types@0.1.2": crate::orquesta::plugin::types,
            "orquesta:plugin/events@0.1.2": crate::http_trigger::orquesta::plugin::events,
        },
        pub_export_macro: true,
        export_macro_name: "export_queue",
        default_bindings_module: "orquesta_sdk::queue_trigger",
    });
}

#[doc(hidden)]
pub mod topic_trigger {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "topic-trigger",
        with: {
            "orquesta:plugin/types@0.1.2": crate::orquesta::plugin::types,
            "orquesta:plugin/events@0.1.2": crate::http_trigger::orquesta::plugin::events,
        },
        pub_export_macro: true,
        export_macro_name: "export_topic",
        default_bindings_module: "orquesta_sdk::topic_trigger",
    });
}

#[doc(hidden)]
pub mod bus_trigger {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "bus-trigger",
        with: {
            "orquesta:plugin/types@0.1.2": crate::orquesta::plugin::types,
            "orquesta:plugin/events@0.1.2": crate::http_trigger::orquesta::plugin::events,
        },
        pub_export_macro: true,
        export_macro_name: "export_bus",
        default_bindings_module: "orquesta_sdk::bus_trigger",
    });
}

#[doc(hidden)]
pub mod schedule_trigger {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "schedule-trigger",
        with: {
            "orquesta:plugin/types@0.1.2": crate::orquesta::plugin::types,
            "orquesta:plugin/events@0.1.2": crate::http_trigger::orquesta::plugin::events,
        },
        pub_export_macro: true,
        export_macro_name: "export_schedule",
        default_bindings_module: "orquesta_sdk::schedule_trigger",
    });
}

#[doc(hidden)]
pub mod task_trigger {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "task-trigger",
        with: {
            "orquesta:plugin/types@0.1.2": crate::orquesta::plugin::types,
            "orquesta:plugin/events@0.1.2": crate::http_trigger::orquesta::plugin::events,
        },
        pub_export_macro: true,
        export_macro_name: "export_task",
        default_bindings_module: "orquesta_sdk::task_trigger",
    });
}

/// A [`Handler`] seen as each trigger kind's handler interface; what [`export!`] exports.
#[doc(hidden)]
pub struct Exported<T>(core::marker::PhantomData<T>);

impl<T: Handler> http_trigger::exports::orquesta::plugin::http_handler::Guest for Exported<T> {
    fn handle(request: HttpRequest) -> Result<Response, Failure> {
        T::handle(Event::Http(request))
    }
}

impl<T: Handler> queue_trigger::exports::orquesta::plugin::queue_handler::Guest for Exported<T> {
    fn handle(messages: Vec<QueueMessage>) -> Result<Response, Failure> {
        T::handle(Event::Queue(messages))
    }
}

impl<T: Handler> topic_trigger::exports::orquesta::plugin::topic_handler::Guest for Exported<T> {
    fn handle(notification: Notification) -> Result<Response, Failure> {
        T::handle(Event::Topic(notification))
    }
}

impl<T: Handler> bus_trigger::exports::orquesta::plugin::bus_handler::Guest for Exported<T> {
    fn handle(event: BusEvent) -> Result<Response, Failure> {
        T::handle(Event::Bus(event))
    }
}

impl<T: Handler> schedule_trigger::exports::orquesta::plugin::schedule_handler::Guest
    for Exported<T>
{
    fn handle(tick: ScheduledTick) -> Result<Response, Failure> {
        T::handle(Event::Schedule(tick))
    }
}

impl<T: Handler> task_trigger::exports::orquesta::plugin::task_handler::Guest for Exported<T> {
    fn handle(task: TaskInput) -> Result<Response, Failure> {
        T::handle(Event::Task(task))
    }
}

/// Exports a [`Handler`] as the handler of every trigger kind (`export!(MyPlugin)`) or of
/// the kinds listed (`export!(MyPlugin: http, queue, topic, bus, schedule, task)`).
#[macro_export]
macro_rules! export {
    ($ty:ident) => {
        $crate::export!($ty: http, queue, topic, bus, schedule, task);
    };
    ($ty:ident : $($kind:ident),+ $(,)?) => {
        const _: () = {
            type OrquestaExported = $crate::Exported<$ty>;
            $( $crate::__export_trigger!($kind OrquestaExported); )+
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_trigger {
    (http $ty:ident) => {
        $crate::http_trigger::export_http!($ty with_types_in $crate::http_trigger);
    };
    (queue $ty:ident) => {
        $crate::queue_trigger::export_queue!($ty with_types_in $crate::queue_trigger);
    };
    (topic $ty:ident) => {
        $crate::topic_trigger::export_topic!($ty with_types_in $crate::topic_trigger);
    };
    (bus $ty:ident) => {
        $crate::bus_trigger::export_bus!($ty with_types_in $crate::bus_trigger);
    };
    (schedule $ty:ident) => {
        $crate::schedule_trigger::export_schedule!($ty with_types_in $crate::schedule_trigger);
    };
    (task $ty:ident) => {
        $crate::task_trigger::export_task!($ty with_types_in $crate::task_trigger);
    };
}

impl Failure {
    /// A typed failure: `error` is what workflow `ErrorEquals` matches.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Failure {
            error: error.into(),
            cause: cause.into(),
        }
    }
}
impl From<HostError> for Failure {
    fn from(e: HostError) -> Self {
        let (name, cause) = match e {
            HostError::Denied(c) => ("Denied", c),
            HostError::Unavailable(c) => ("Unavailable", c),
            HostError::Invalid(c) => ("Invalid", c),
            HostError::Timeout(c) => ("Timeout", c),
            HostError::Failed(c) => ("HostFailed", c),
        };
        Failure::new(name, cause)
    }
}

impl Response {
    /// A JSON result (a task's output).
    pub fn json(value: &serde_json::Value) -> Self {
        Response::Json(value.to_string())
    }

    /// An HTTP answer with a JSON body.
    pub fn http_json(status: u16, value: &serde_json::Value) -> Self {
        Response::Http(HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: value.to_string().into_bytes(),
        })
    }
}

/// Parse a JSON document handed over by the host (task input, message body).
pub fn parse_json(text: &str) -> Result<serde_json::Value, Failure> {
    serde_json::from_str(text).map_err(|e| Failure::new("InvalidJson", e.to_string()))
}

/// Look a name up in name/value pairs (headers are matched case-insensitively by callers
/// that need it).
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Log at info level with no fields.
pub fn info(message: &str) {
    log::log(log::Level::Info, message, &[]);
}
