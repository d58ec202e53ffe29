//! Events as JSON, for people reading the bus (`shopmesh tail`) and for
//! logs. The wire format stays bincode; this is a view of it.

use super::{Event, EventPayload};
use serde_json::{Value, json};

/// `{"type", "schema_version", "event_id", "occurred_at_ms", "producer",
/// "user_id", "payload": {...}}`.
pub fn to_json(event: &Event) -> Value {
    let payload = match &event.payload {
        EventPayload::UserRegistered(p) => serde_json::to_value(p),
        EventPayload::UserLoggedIn(p) => serde_json::to_value(p),
        EventPayload::ProductCreated(p) => serde_json::to_value(p),
        EventPayload::ProductUpdated(p) => serde_json::to_value(p),
        EventPayload::ProductViewed(p) => serde_json::to_value(p),
        EventPayload::ProductSearched(p) => serde_json::to_value(p),
        EventPayload::ProductRated(p) => serde_json::to_value(p),
        EventPayload::CartItemAdded(p) => serde_json::to_value(p),
        EventPayload::CartItemRemoved(p) => serde_json::to_value(p),
        EventPayload::OrderPlaced(p) => serde_json::to_value(p),
        EventPayload::OrderCancelled(p) => serde_json::to_value(p),
    }
    .expect("payloads serialize to JSON");
    json!({
        "type": event.event_type().as_str(),
        "schema_version": event.schema_version(),
        "event_id": event.meta.event_id.to_string(),
        "occurred_at_ms": event.meta.occurred_at.as_millis(),
        "producer": event.meta.producer,
        "user_id": event.meta.user_id.map(|u| u.to_string()),
        "payload": payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::*;

    #[test]
    fn an_order_reads_as_json() {
        let user = UserId::new_v7();
        let order = OrderId::new_v7();
        let event = Event::new(
            EventMeta::new("order", Some(user)),
            OrderCancelled {
                order_id: order,
                lines: vec![],
            },
        );
        let value = to_json(&event);
        assert_eq!(value["type"], "order.cancelled");
        assert_eq!(value["user_id"], user.to_string());
        assert_eq!(value["payload"]["order_id"], order.to_string());
        assert_eq!(value["payload"]["lines"], json!([]));
    }
}
