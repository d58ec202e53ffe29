//! The ground truth the crash, restart and two-instance tests compare the
//! service with (here and in the cli's fault tests): every event of the
//! stream applied in stream order, one partition at a time, on one thread,
//! through the service's own `PartitionState::apply`; and comparisons of
//! answers that went through JSON with the recomputed ones.

use crate::recommend::Recommendation;
use crate::settings::AggregateSettings;
use crate::state::{PartitionState, UserProfile};
use shopmesh_shared::events::Event;
use std::collections::BTreeMap;

/// Every partition's state after applying `(stream sequence, partition,
/// event)` in the order given (stream order).
pub fn recompute<'a>(
    events: impl IntoIterator<Item = (u64, u16, &'a Event)>,
    config: &AggregateSettings,
) -> BTreeMap<u16, PartitionState> {
    let mut states: BTreeMap<u16, PartitionState> = BTreeMap::new();
    for (sequence, partition, event) in events {
        states
            .entry(partition)
            .or_default()
            .apply(sequence, event, config);
    }
    states
}

/// Profiles equal; affinity scores up to JSON's decimal round trip of f64.
pub fn assert_profile_eq(got: &UserProfile, expected: &UserProfile) {
    let strip = |p: &UserProfile| UserProfile {
        top_categories: Vec::new(),
        ..p.clone()
    };
    assert_eq!(strip(got), strip(expected));
    assert_eq!(got.top_categories.len(), expected.top_categories.len());
    for (g, e) in got.top_categories.iter().zip(&expected.top_categories) {
        assert_eq!(g.category, e.category);
        assert!(close(g.score, e.score), "{g:?} vs {e:?}");
    }
}

/// The same items in the same order; scores up to JSON's round trip.
pub fn assert_same_items(got: &[Recommendation], expected: &[Recommendation], what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}");
    for (g, e) in got.iter().zip(expected) {
        assert!(close(g.score, e.score), "{what}: {g:?} vs {e:?}");
        let same = Recommendation {
            score: e.score,
            ..g.clone()
        };
        assert_eq!(&same, e, "{what}");
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}
