//! The topic trigger (SNS): a publication goes to every subscription whose filter policy
//! matches. Queue subscriptions are written before the call returns; plugin and webhook
//! subscriptions become deliveries in the store, made by `deliveries`. A queue
//! subscription receives SNS's notification document (`envelope`, held to
//! `envelope::max_document_bytes`) unless it sets `raw_message_delivery`.

pub mod envelope;

use serde_json::Value;

use super::deliveries::pending::Pending;
use super::fanout::{LOG_LINE, TenantFanout, now_ms};
use crate::capabilities::messaging::check_message_size;
use crate::capabilities::notify::Publication;
use crate::capabilities::{Caller, CapError};
use crate::pattern::Numbers;
use crate::tenants::{FilterScope, Target};

pub(crate) async fn publish(
    fanout: &TenantFanout,
    caller: &Caller<'_>,
    publication: Publication,
) -> Result<String, CapError> {
    let topic = fanout.topics.get(&publication.topic).ok_or_else(|| {
        CapError::Invalid(format!(
            "topic `{}` is not one of the tenant's topics",
            publication.topic
        ))
    })?;
    // As SNS counts: the message, its subject and every attribute's name and value.
    let size = publication.body.len()
        + publication.subject.as_ref().map_or(0, String::len)
        + publication
            .attributes
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>();
    check_message_size(
        "a topic publication",
        size,
        fanout.limits.max_message_bytes(),
    )?;
    let depth = caller.depth;
    let id = uuid::Uuid::new_v4().to_string();
    let notice = envelope::Notice {
        id: &id,
        tenant: &fanout.tenant,
        topic: &publication.topic,
        subject: publication.subject.as_deref(),
        body: &publication.body,
        attributes: &publication.attributes,
        time_ms: now_ms(),
    };
    // What attribute policies read: JSON-array values are SNS `String.Array`s.
    let policy_attributes = crate::pattern::attributes_document(&publication.attributes);
    // A body policy needs a JSON body; a body that is not JSON matches none.
    let body_doc: Option<Value> = serde_json::from_str(&publication.body).ok();
    let mut matched = Vec::new();
    for sub in &topic.subscriptions {
        let policy = sub.policy().map_err(|e| CapError::Invalid(e.to_string()))?;
        let passes = match (&policy, sub.filter_scope) {
            (None, _) => true,
            (Some(p), FilterScope::Attributes) => {
                p.matches(&policy_attributes, Numbers::FromStrings)
            }
            (Some(p), FilterScope::Body) => body_doc
                .as_ref()
                .is_some_and(|d| p.matches(d, Numbers::Json)),
        };
        if passes {
            matched.push((
                sub,
                sub.target().map_err(|e| CapError::Invalid(e.to_string()))?,
            ));
        }
    }
    // SNS's document, built and held to its bound before any subscription receives the
    // publication, when one that gets it matched: a publication whose wrapping would
    // pass the bound reaches none of them.
    let wrapped = matched.iter().any(|(sub, target)| match target {
        Target::Queue(_) => !sub.raw_message_delivery,
        Target::Webhook(_) => true,
        _ => false,
    });
    let document = if wrapped {
        let doc = envelope::notification(&notice);
        let max = fanout.limits.max_message_bytes();
        Some(envelope::bounded_text(&doc, max).map_err(CapError::Invalid)?)
    } else {
        None
    };
    let delivered = matched.len() as u32;
    for (sub, target) in matched {
        match target {
            Target::Queue(q) if sub.raw_message_delivery => {
                // Raw message delivery: the body as published, with its attributes.
                fanout
                    .to_queue(
                        q,
                        publication.body.clone(),
                        publication.attributes.clone(),
                        depth,
                    )
                    .await?;
            }
            Target::Queue(q) => {
                let text = built(&document)?;
                // The document is held to `envelope::max_document_bytes`, past the
                // queue's message cap by at most half of it (its wrapping).
                let mut sending = fanout.sending(depth);
                sending.max_bytes = envelope::max_document_bytes(sending.max_bytes);
                fanout.to_queue_with(q, text, Vec::new(), sending).await?;
            }
            Target::Plugin(p) => {
                let event = Pending::Topic {
                    id: id.clone(),
                    topic: publication.topic.clone(),
                    subject: publication.subject.clone(),
                    body: publication.body.clone(),
                    attributes: publication.attributes.clone(),
                };
                let policy =
                    sub.delivery_policy(envelope::topic_arn(&fanout.tenant, &publication.topic));
                fanout.to_plugin(p, &event, depth, "topic", policy).await?;
            }
            Target::Webhook(url) => {
                let text = built(&document)?;
                let policy =
                    sub.delivery_policy(envelope::topic_arn(&fanout.tenant, &publication.topic));
                fanout.to_webhook(url, text, depth, policy).await?;
            }
            // A subscription cannot name a workflow (as with SNS).
            Target::Workflow(_) => {}
            Target::Log => {
                if fanout.logs.admit() {
                    tracing::info!(
                        tenant = %fanout.tenant, topic = %publication.topic, id = %id,
                        subject = ?publication.subject,
                        body = %crate::text::escape_within(&publication.body, LOG_LINE),
                        "topic message"
                    );
                }
            }
        }
    }
    let labels = [
        ("tenant", fanout.tenant.clone()),
        ("topic", publication.topic.clone()),
    ];
    metrics::counter!("orquesta_topic_published_total", &labels).increment(1);
    metrics::counter!("orquesta_topic_deliveries_total", &labels).increment(u64::from(delivered));
    Ok(id)
}

/// The document built before the deliveries (whenever a subscription that receives it
/// matched).
fn built(document: &Option<String>) -> Result<String, CapError> {
    document
        .clone()
        .ok_or_else(|| CapError::Failed("SNS's notification document was not built".into()))
}

/// Topics: publications are made as plugins and the admin API publish; what waits is
/// made by `deliveries`.
pub struct Topics;

impl super::Trigger for Topics {
    fn name(&self) -> &'static str {
        "topic"
    }
}
