//! The subject hierarchy: where each event is published and how to subscribe.
//!
//! ```text
//! shopmesh.events.<domain>.<action>.<partition>
//!        e.g. shopmesh.events.product.viewed.17
//! ```
//!
//! | to receive                         | subscribe to                        |
//! |------------------------------------|-------------------------------------|
//! | everything                         | `shopmesh.events.>`                 |
//! | all order events                   | `shopmesh.events.order.>`           |
//! | all views                          | `shopmesh.events.product.viewed.*`  |
//! | one partition, every type          | `shopmesh.events.*.*.17`            |
//! | dead letters of every consumer     | `shopmesh.deadletter.>`             |
//!
//! **Partitions.** A user's events all land in one partition, chosen by
//! [`partition_for`]: FNV-1a (32 bit) over the 16 bytes of the user id, modulo
//! the partition count (default [`DEFAULT_PARTITIONS`] = 8). One partition is
//! consumed by one durable consumer at a time, so one user's events are applied
//! in the order they were published. Events without a user (`product.created`,
//! `product.updated`) go to **partition 0**. The partition count is part of
//! every subject: changing it needs a new stream, not a restart.
//!
//! The partition is the last token so that the human-facing filters (by domain
//! and type) read left to right, while an analytics instance filters on the
//! last token.

use crate::events::{EventType, UserId};
use std::fmt;

/// The first two tokens of every event subject.
pub const EVENTS_PREFIX: &str = "shopmesh.events";
/// The subjects of the events stream.
pub const EVENTS_WILDCARD: &str = "shopmesh.events.>";
/// The first two tokens of every dead-letter subject.
pub const DEAD_LETTER_PREFIX: &str = "shopmesh.deadletter";
/// The subjects of the dead-letter stream.
pub const DEAD_LETTER_WILDCARD: &str = "shopmesh.deadletter.>";
/// Partitions when settings name no other count. Eight: enough actors for
/// the cores of one machine and up to eight analytics instances, while each
/// partition is a stream and a consumer that nats-server pays for on every
/// message (`shopmesh bench` on 2 cores: ours 0.77 of raw JetStream with 8,
/// 0.65 with the 32 of before; docs/benchmarks.md). Raise it for more
/// instances, on a new backbone: the count cannot change under existing
/// streams.
pub const DEFAULT_PARTITIONS: u16 = 8;
/// The partition of events that have no user.
pub const NO_USER_PARTITION: Partition = Partition(0);

/// How many partitions the events are split into (1 to 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartitionCount(u16);

impl PartitionCount {
    pub const MAX: u16 = 1024;

    pub fn new(count: u16) -> Option<Self> {
        (1..=Self::MAX).contains(&count).then_some(Self(count))
    }

    pub const fn get(self) -> u16 {
        self.0
    }

    /// Every partition, in order.
    pub fn all(self) -> impl Iterator<Item = Partition> {
        (0..self.0).map(Partition)
    }
}

impl Default for PartitionCount {
    fn default() -> Self {
        Self(DEFAULT_PARTITIONS)
    }
}

/// One partition of the events stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition(u16);

impl Partition {
    /// `None` when `index` is outside `count`.
    pub fn new(index: u16, count: PartitionCount) -> Option<Self> {
        (index < count.get()).then_some(Self(index))
    }

    pub const fn index(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// FNV-1a, 32 bit: tiny, stable across versions and languages, and spreads
/// UUIDv7s (whose leading bytes are a timestamp) evenly.
fn fnv1a_32(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for &byte in bytes {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// The partition of an event about `user` (partition 0 when there is none).
pub fn partition_for(user: Option<&UserId>, count: PartitionCount) -> Partition {
    match user {
        Some(user) => {
            let hash = fnv1a_32(user.as_uuid().as_bytes());
            Partition((hash % u32::from(count.get())) as u16)
        }
        None => NO_USER_PARTITION,
    }
}

/// The subject an event of `event_type` in `partition` is published on.
pub fn event_subject(event_type: EventType, partition: Partition) -> String {
    format!(
        "{EVENTS_PREFIX}.{}.{}.{}",
        event_type.domain(),
        event_type.action(),
        partition
    )
}

/// Every event of one partition: what a partition's consumer filters on.
pub fn partition_filter(partition: Partition) -> String {
    format!("{EVENTS_PREFIX}.*.*.{partition}")
}

/// Every event of one domain (`order`, `product`, ...).
pub fn domain_filter(domain: &str) -> String {
    format!("{EVENTS_PREFIX}.{domain}.>")
}

/// Every event of one type, all partitions.
pub fn type_filter(event_type: EventType) -> String {
    format!(
        "{EVENTS_PREFIX}.{}.{}.*",
        event_type.domain(),
        event_type.action()
    )
}

/// Where a consumer named `consumer` sends what it could not decode.
pub fn dead_letter_subject(consumer: &str) -> String {
    format!("{DEAD_LETTER_PREFIX}.{consumer}")
}

/// The event type and partition named by an event subject, if it is one.
pub fn parse_event_subject(subject: &str) -> Option<(EventType, u16)> {
    let rest = subject.strip_prefix(EVENTS_PREFIX)?.strip_prefix('.')?;
    let mut tokens = rest.split('.');
    let (domain, action, partition) = (tokens.next()?, tokens.next()?, tokens.next()?);
    if tokens.next().is_some() {
        return None;
    }
    let event_type = EventType::parse(&format!("{domain}.{action}"))?;
    Some((event_type, partition.parse().ok()?))
}

/// The subjects both `a` and `b` match (NATS wildcards: `*` one token, `>`
/// one or more at the end), as one subject, or `None` when they share none.
/// `shopmesh tail --history` filters each partition's stream with its
/// intersection with the subject asked for: a filter the stream's subjects
/// contain, whatever was asked.
pub fn subject_intersection(a: &str, b: &str) -> Option<String> {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    let mut tokens = Vec::with_capacity(a.len().max(b.len()));
    let mut i = 0;
    loop {
        match (a.get(i).copied(), b.get(i).copied()) {
            (None, None) => return Some(tokens.join(".")),
            (Some(">"), Some(_)) => {
                tokens.extend_from_slice(&b[i..]);
                return Some(tokens.join("."));
            }
            (Some(_), Some(">")) => {
                tokens.extend_from_slice(&a[i..]);
                return Some(tokens.join("."));
            }
            (Some("*"), Some(t)) | (Some(t), Some("*")) => tokens.push(t),
            (Some(x), Some(y)) if x == y => tokens.push(x),
            _ => return None,
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersections_keep_what_both_subjects_match() {
        let stream = "shopmesh.events.*.*.3";
        let cases = [
            ("shopmesh.events.>", Some(stream)),
            ("shopmesh.events.order.>", Some("shopmesh.events.order.*.3")),
            (
                "shopmesh.events.product.viewed.*",
                Some("shopmesh.events.product.viewed.3"),
            ),
            ("shopmesh.events.*.*.3", Some(stream)),
            (">", Some(stream)),
            ("shopmesh.events.*.*.4", None),
            ("shopmesh.events.order.placed", None),
            ("shopmesh.events.order.placed.3.x", None),
            ("shopmesh.deadletter.>", None),
        ];
        for (asked, expected) in cases {
            assert_eq!(
                subject_intersection(asked, stream).as_deref(),
                expected,
                "{asked}"
            );
            assert_eq!(
                subject_intersection(stream, asked).as_deref(),
                expected,
                "{asked}, swapped"
            );
        }
        assert_eq!(
            subject_intersection("a.>", "*.b.>").as_deref(),
            Some("a.b.>")
        );
    }

    /// NATS subject matching, enough for these tests: `*` one token, `>` the rest.
    fn matches(filter: &str, subject: &str) -> bool {
        let mut f = filter.split('.');
        let mut s = subject.split('.');
        loop {
            match (f.next(), s.next()) {
                (Some(">"), Some(_)) => return true,
                (Some("*"), Some(_)) => {}
                (Some(a), Some(b)) if a == b => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }

    #[test]
    fn wildcards_select_by_domain_type_and_partition() {
        let count = PartitionCount::default();
        let user = UserId::new_v7();
        let p = partition_for(Some(&user), count);
        let placed = event_subject(EventType::OrderPlaced, p);
        let viewed = event_subject(EventType::ProductViewed, p);

        assert!(matches(&domain_filter("order"), &placed));
        assert!(!matches(&domain_filter("order"), &viewed));
        assert!(matches(&type_filter(EventType::ProductViewed), &viewed));
        assert!(!matches(&type_filter(EventType::ProductViewed), &placed));
        assert!(matches(&partition_filter(p), &placed));
        assert!(matches(&partition_filter(p), &viewed));
        assert!(matches(EVENTS_WILDCARD, &viewed));
        let other = Partition::new((p.index() + 1) % count.get(), count).unwrap();
        assert!(!matches(&partition_filter(other), &viewed));
    }

    #[test]
    fn one_user_always_maps_to_one_partition() {
        let count = PartitionCount::new(32).unwrap();
        let user = UserId::parse("01938a6e-7c1e-7d2a-9b1c-3e5f7a9b1c2d").unwrap();
        let first = partition_for(Some(&user), count);
        for _ in 0..10 {
            assert_eq!(partition_for(Some(&user), count), first);
        }
        // Pinned: a change of hash would move every user to another partition
        // and reorder their events across a deploy.
        assert_eq!(
            first.index(),
            fnv1a_32(user.as_uuid().as_bytes()) as u16 % 32
        );
        assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
    }

    #[test]
    fn events_without_a_user_use_partition_zero() {
        assert_eq!(
            partition_for(None, PartitionCount::default()),
            NO_USER_PARTITION
        );
        assert_eq!(NO_USER_PARTITION.index(), 0);
    }

    #[test]
    fn users_spread_over_all_partitions() {
        let count = PartitionCount::new(32).unwrap();
        let mut seen = [0u32; 32];
        for _ in 0..32_000 {
            seen[partition_for(Some(&UserId::new_v7()), count).index() as usize] += 1;
        }
        // 1000 expected per partition; a broken hash piles them up.
        assert!(seen.iter().all(|&n| (700..1300).contains(&n)), "{seen:?}");
    }

    #[test]
    fn subjects_parse_back() {
        let p = Partition::new(17, PartitionCount::new(32).unwrap()).unwrap();
        let subject = event_subject(EventType::CartItemAdded, p);
        assert_eq!(subject, "shopmesh.events.cart.item_added.17");
        assert_eq!(
            parse_event_subject(&subject),
            Some((EventType::CartItemAdded, 17))
        );
        assert_eq!(parse_event_subject("shopmesh.events.cart.item_added"), None);
        assert_eq!(parse_event_subject("other.events.cart.item_added.1"), None);
    }

    #[test]
    fn partition_count_bounds() {
        assert!(PartitionCount::new(0).is_none());
        assert!(PartitionCount::new(1025).is_none());
        assert_eq!(PartitionCount::new(8).unwrap().all().count(), 8);
        assert!(Partition::new(8, PartitionCount::new(8).unwrap()).is_none());
    }
}
