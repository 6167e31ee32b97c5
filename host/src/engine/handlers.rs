//! Which handlers a component exports (docs/CONTRACT.md): the 0.1.0 `handler` taking every
//! trigger kind as one variant, and one interface per trigger kind from 0.1.1. Found and
//! type-checked once when a plugin loads; an invocation calls the one for its event.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use wasmtime::Store;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{
    ComponentExportIndex, ComponentNamedList, Instance, InstancePre, Lift, Lower, Resource,
};
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};

use super::Invocation;
use crate::bindings::events;
use crate::bindings::handler::{Event, Failure, Response};

/// The release of `orquesta:plugin` the host is built from. The names of its interfaces
/// carry it; wasmtime matches them to every semver-compatible release (0.1.x), so a
/// component built against 0.1.0 finds these.
pub const CONTRACT_VERSION: &str = "0.1.2";

/// The full name of an interface of the contract: `orquesta:plugin/NAME@VERSION`.
pub fn interface_name(name: &str) -> String {
    format!("orquesta:plugin/{name}@{CONTRACT_VERSION}")
}

/// What an invocation calls on its fresh instance: an export of the plugin, found and
/// type-checked when it loaded, with its arguments.
pub(super) trait Call: Send + 'static {
    type Output: Send + 'static;

    fn call<'a>(
        self,
        store: &'a mut Store<Invocation>,
        instance: Instance,
    ) -> Pin<Box<dyn Future<Output = wasmtime::Result<Self::Output>> + Send + 'a>>;
}

/// `wasi:http`'s incoming handler, served as an HTTP route (engine/wasi_http.rs); a
/// component built against any 0.2.x release matches the name.
pub(super) const WASI_HTTP_INCOMING: &str = "wasi:http/incoming-handler@0.2.0";

pub(super) type WasiHttpHandle = Export<
    (
        Resource<HostIncomingRequest>,
        Resource<HostResponseOutparam>,
    ),
    (),
>;

/// A function a component exports, type-checked as taking `P` and giving `R` when found.
/// Only valid with the plugin it was found in (its index names that component).
pub struct Export<P, R> {
    index: ComponentExportIndex,
    types: PhantomData<fn(P) -> R>,
}

impl<P, R> Clone for Export<P, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P, R> Copy for Export<P, R> {}

impl<P, R> Export<P, R>
where
    P: ComponentNamedList + Lower,
    R: ComponentNamedList + Lift,
{
    /// Finds `func` in the exported instance `interface` (a full name; a semver-compatible
    /// release of it matches too) and checks its type. `Ok(None)`: no such instance.
    pub(super) fn find(
        pre: &InstancePre<Invocation>,
        interface: &str,
        func: &str,
    ) -> wasmtime::Result<Option<Self>> {
        let component = pre.component();
        let Some((_, instance)) = component.get_export(None, interface) else {
            return Ok(None);
        };
        let (item, index) = component
            .get_export(Some(&instance), func)
            .ok_or_else(|| wasmtime::format_err!("`{interface}` does not export `{func}`"))?;
        match item {
            ComponentItem::ComponentFunc(f) => f
                .typecheck::<P, R>(&pre.instance_type())
                .map_err(|e| e.context(format!("type-checking `{func}`")))?,
            _ => wasmtime::bail!("`{interface}.{func}` is not a function"),
        }
        Ok(Some(Export {
            index,
            types: PhantomData,
        }))
    }

    pub(super) fn index(&self) -> ComponentExportIndex {
        self.index
    }
}

/// What a handler gives: its answer or the plugin's typed failure.
pub(super) type Handled<T> = (Result<T, Failure>,);

type Handler<P> = Option<Export<(P,), Handled<events::Response>>>;

/// The handlers one component exports.
#[derive(Clone)]
pub(super) struct Handlers {
    /// 0.1.0's `handler.handle`, for every kind that has no handler of its own.
    legacy: Option<Export<(Event,), Handled<Response>>>,
    http: Handler<events::HttpRequest>,
    queue: Handler<Vec<events::QueueMessage>>,
    topic: Handler<events::Notification>,
    bus: Handler<events::BusEvent>,
    schedule: Handler<events::ScheduledTick>,
    task: Handler<events::TaskInput>,
    /// `wasi:http/incoming-handler.handle`: the `http` kind's, when the component has no
    /// handler of the contract for it.
    wasi_http: Option<WasiHttpHandle>,
}

/// The handler interfaces of 0.1.1, by trigger kind (as `event_kind` names them).
const KINDS: [(&str, &str); 6] = [
    ("http", "http-handler"),
    ("queue", "queue-handler"),
    ("topic", "topic-handler"),
    ("bus", "bus-handler"),
    ("schedule", "schedule-handler"),
    ("task", "task-handler"),
];

impl Handlers {
    /// Every handler `pre`'s component exports. Refused when it exports none, of the
    /// contract's nor of the `extra` interfaces (trigger kinds added to this engine).
    pub(super) fn find(pre: &InstancePre<Invocation>, extra: &[String]) -> wasmtime::Result<Self> {
        let find = |kind: &str| interface_name(kind);
        let handlers = Handlers {
            legacy: Export::find(pre, &find("handler"), "handle")?,
            http: Export::find(pre, &find(KINDS[0].1), "handle")?,
            queue: Export::find(pre, &find(KINDS[1].1), "handle")?,
            topic: Export::find(pre, &find(KINDS[2].1), "handle")?,
            bus: Export::find(pre, &find(KINDS[3].1), "handle")?,
            schedule: Export::find(pre, &find(KINDS[4].1), "handle")?,
            task: Export::find(pre, &find(KINDS[5].1), "handle")?,
            wasi_http: Export::find(pre, WASI_HTTP_INCOMING, "handle")?,
        };
        let component = pre.component();
        let exports_extra = extra
            .iter()
            .any(|i| component.get_export(None, i).is_some());
        if handlers.kinds().is_empty() && !exports_extra {
            let names: Vec<String> = KINDS.iter().map(|(_, i)| find(i)).collect();
            wasmtime::bail!(
                "it exports no handler: neither `{}` (0.1.0) nor any of `{}`, nor `{}`",
                find("handler"),
                names.join("`, `"),
                WASI_HTTP_INCOMING
            );
        }
        Ok(handlers)
    }

    /// The trigger kinds this component answers.
    pub(super) fn kinds(&self) -> Vec<&'static str> {
        let own = [
            self.http.is_some() || self.wasi_http.is_some(),
            self.queue.is_some(),
            self.topic.is_some(),
            self.bus.is_some(),
            self.schedule.is_some(),
            self.task.is_some(),
        ];
        KINDS
            .iter()
            .zip(own)
            .filter(|(_, own)| *own || self.legacy.is_some())
            .map(|((kind, _), _)| *kind)
            .collect()
    }

    /// The call for `event`: which export, with which arguments.
    pub(super) fn route(&self, event: &Event) -> Option<Route> {
        Some(match (event, self) {
            (Event::Http(r), Handlers { http: Some(h), .. }) => {
                Route::Http(*h, (r.clone().into(),))
            }
            (
                Event::Http(r),
                Handlers {
                    wasi_http: Some(h), ..
                },
            ) => Route::WasiHttp(*h, r.clone()),
            (Event::Queue(m), Handlers { queue: Some(h), .. }) => {
                Route::Queue(*h, (m.iter().cloned().map(Into::into).collect(),))
            }
            (Event::Topic(n), Handlers { topic: Some(h), .. }) => {
                Route::Topic(*h, (n.clone().into(),))
            }
            (Event::Bus(e), Handlers { bus: Some(h), .. }) => Route::Bus(*h, (e.clone().into(),)),
            (
                Event::Schedule(t),
                Handlers {
                    schedule: Some(h), ..
                },
            ) => Route::Schedule(*h, (t.clone().into(),)),
            (Event::Task(t), Handlers { task: Some(h), .. }) => {
                Route::Task(*h, (t.clone().into(),))
            }
            (
                event,
                Handlers {
                    legacy: Some(h), ..
                },
            ) => Route::Legacy(*h, (event.clone(),)),
            _ => return None,
        })
    }
}

/// One invocation's export and arguments.
pub(super) enum Route {
    Legacy(Export<(Event,), Handled<Response>>, (Event,)),
    Http(
        Export<(events::HttpRequest,), Handled<events::Response>>,
        (events::HttpRequest,),
    ),
    Queue(
        Export<(Vec<events::QueueMessage>,), Handled<events::Response>>,
        (Vec<events::QueueMessage>,),
    ),
    Topic(
        Export<(events::Notification,), Handled<events::Response>>,
        (events::Notification,),
    ),
    Bus(
        Export<(events::BusEvent,), Handled<events::Response>>,
        (events::BusEvent,),
    ),
    Schedule(
        Export<(events::ScheduledTick,), Handled<events::Response>>,
        (events::ScheduledTick,),
    ),
    Task(
        Export<(events::TaskInput,), Handled<events::Response>>,
        (events::TaskInput,),
    ),
    /// A `wasi:http` component's `handle`, with the request it is given.
    WasiHttp(WasiHttpHandle, crate::bindings::handler::HttpRequest),
}

/// The trigger kind of `event`, as docs and errors name it.
pub(super) fn event_kind(event: &Event) -> &'static str {
    match event {
        Event::Http(_) => "http",
        Event::Queue(_) => "queue",
        Event::Topic(_) => "topic",
        Event::Bus(_) => "bus",
        Event::Schedule(_) => "schedule",
        Event::Task(_) => "task",
    }
}

/// The interface a plugin must export to receive `event`'s kind.
pub(super) fn handler_interface(event: &Event) -> String {
    let kind = event_kind(event);
    let name = KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("handler", |(_, i)| *i);
    interface_name(name)
}
