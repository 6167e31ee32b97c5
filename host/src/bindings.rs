//! Host-side bindings of the `orquesta:plugin` package (`wit/plugin.wit`, docs/CONTRACT.md):
//! every capability the host links and every handler it may call.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "orquesta-host",
    imports: { default: async },
    exports: { default: async },
    additional_derives: [PartialEq],
});

// Every interface of the package, imported or exported, by its name
// (`crate::bindings::kv`, `crate::bindings::http_handler`): one added to the WIT is here
// with nothing to list.
pub use self::exports::orquesta::plugin::*;
pub use self::orquesta::plugin::*;

// The host's events and results are 0.1.0's `handler` records; the per-trigger handlers of
// 0.1.1 take the same records from `events`. Moved field by field at the call.

impl From<handler::Identity> for events::Identity {
    fn from(i: handler::Identity) -> Self {
        events::Identity {
            subject: i.subject,
            email: i.email,
            name: i.name,
            groups: i.groups,
            scopes: i.scopes,
        }
    }
}

impl From<handler::HttpRequest> for events::HttpRequest {
    fn from(r: handler::HttpRequest) -> Self {
        events::HttpRequest {
            method: r.method,
            path: r.path,
            params: r.params,
            query: r.query,
            headers: r.headers,
            body: r.body,
            identity: r.identity.map(Into::into),
        }
    }
}

impl From<handler::QueueMessage> for events::QueueMessage {
    fn from(m: handler::QueueMessage) -> Self {
        events::QueueMessage {
            id: m.id,
            queue: m.queue,
            body: m.body,
            attributes: m.attributes,
            group_id: m.group_id,
            receive_count: m.receive_count,
            sent_at: m.sent_at,
        }
    }
}

impl From<handler::Notification> for events::Notification {
    fn from(n: handler::Notification) -> Self {
        events::Notification {
            id: n.id,
            topic: n.topic,
            subject: n.subject,
            body: n.body,
            attributes: n.attributes,
        }
    }
}

impl From<handler::BusEvent> for events::BusEvent {
    fn from(e: handler::BusEvent) -> Self {
        events::BusEvent {
            id: e.id,
            bus: e.bus,
            source: e.source,
            detail_type: e.detail_type,
            detail: e.detail,
            time: e.time,
        }
    }
}

impl From<handler::ScheduledTick> for events::ScheduledTick {
    fn from(t: handler::ScheduledTick) -> Self {
        events::ScheduledTick {
            schedule: t.schedule,
            scheduled_at: t.scheduled_at,
            input: t.input,
        }
    }
}

impl From<handler::TaskInput> for events::TaskInput {
    fn from(t: handler::TaskInput) -> Self {
        events::TaskInput {
            execution_id: t.execution_id,
            state: t.state,
            input: t.input,
            context: t.context,
        }
    }
}

impl From<events::Response> for handler::Response {
    fn from(r: events::Response) -> Self {
        match r {
            events::Response::Http(r) => handler::Response::Http(handler::HttpResponse {
                status: r.status,
                headers: r.headers,
                body: r.body,
            }),
            events::Response::Json(text) => handler::Response::Json(text),
            events::Response::Batch(ids) => handler::Response::Batch(ids),
            events::Response::None => handler::Response::None,
        }
    }
}
