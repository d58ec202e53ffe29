//! One product's summed co-occurrence weights in the recommender's view,
//! keyed by the view's dense product index: an open-addressing table with
//! linear probing whose slots hold the key and the weight side by side.
//!
//! Why not a `HashMap`: the view's lists are the sums over every partition
//! (thousands of entries for a popular product) and an event changes up to
//! 18 of them at random places, so each change is a cache miss. A SwissTable
//! keeps its control bytes apart from its slots, two misses per change; here
//! the probe starts in the slot itself, one miss.

/// The key of an empty slot; the view's indexes never reach it.
const EMPTY: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Slot {
    key: u32,
    weight: u64,
}

const VACANT: Slot = Slot {
    key: EMPTY,
    weight: 0,
};

/// Weights by dense index; a weight that falls to zero is removed.
#[derive(Debug, Clone, Default)]
pub struct NeighbourSums {
    /// A power of two in length (or empty), at most three quarters full.
    slots: Box<[Slot]>,
    len: usize,
}

impl NeighbourSums {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every (index, weight), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.slots
            .iter()
            .filter(|slot| slot.key != EMPTY)
            .map(|slot| (slot.key, slot.weight))
    }

    /// Only the tests look one weight up: readers iterate the whole list.
    #[cfg(test)]
    fn get(&self, key: u32) -> Option<u64> {
        if self.slots.is_empty() {
            return None;
        }
        let mut at = self.home(key);
        loop {
            match self.slots[at] {
                Slot { key: k, weight } if k == key => return Some(weight),
                Slot { key: EMPTY, .. } => return None,
                _ => at = (at + 1) & self.mask(),
            }
        }
    }

    /// Adds `delta` to the weight of `key` (absent: zero), saturating at
    /// zero; a weight of zero is removed.
    pub fn add(&mut self, key: u32, delta: i64) {
        debug_assert_ne!(key, EMPTY, "index {EMPTY} is reserved");
        if delta == 0 || (delta < 0 && self.slots.is_empty()) {
            return;
        }
        if self.slots.is_empty() {
            self.grow();
        }
        let mut at = self.home(key);
        loop {
            let slot = &mut self.slots[at];
            if slot.key == key {
                slot.weight = slot.weight.saturating_add_signed(delta);
                if slot.weight == 0 {
                    self.remove_at(at);
                }
                return;
            }
            if slot.key == EMPTY {
                if delta > 0 {
                    *slot = Slot {
                        key,
                        weight: delta as u64,
                    };
                    self.len += 1;
                    if self.len * 4 > self.slots.len() * 3 {
                        self.grow();
                    }
                }
                return;
            }
            at = (at + 1) & self.mask();
        }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Where `key`'s probe starts: the high bits of a multiplicative hash
    /// (dense indexes are consecutive; their low bits alone would cluster).
    fn home(&self, key: u32) -> usize {
        ((u64::from(key).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize) & self.mask()
    }

    /// Backward-shift deletion: entries after the hole that may live in it
    /// move up, so that no probe stops early and no tombstones accumulate.
    fn remove_at(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut next = hole;
        loop {
            next = (next + 1) & mask;
            let key = self.slots[next].key;
            if key == EMPTY {
                break;
            }
            let home = self.home(key);
            if next.wrapping_sub(home) & mask >= next.wrapping_sub(hole) & mask {
                self.slots[hole] = self.slots[next];
                hole = next;
            }
        }
        self.slots[hole] = VACANT;
        self.len -= 1;
        if self.len == 0 {
            self.slots = Box::default();
        }
    }

    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(8);
        let old = std::mem::replace(&mut self.slots, vec![VACANT; capacity].into_boxed_slice());
        for slot in old.iter().filter(|slot| slot.key != EMPTY) {
            let mut at = self.home(slot.key);
            while self.slots[at].key != EMPTY {
                at = (at + 1) & self.mask();
            }
            self.slots[at] = *slot;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// Any sequence of additions and subtractions leaves the same
        /// weights as a plain map that saturates at zero and drops zeros.
        #[test]
        fn behaves_like_a_map_that_drops_zero_weights(
            changes in prop::collection::vec((0u32..200, -12i64..20), 0..600)
        ) {
            let mut sums = NeighbourSums::default();
            let mut model: BTreeMap<u32, u64> = BTreeMap::new();
            for (key, delta) in changes {
                sums.add(key, delta);
                let weight = model.get(&key).copied().unwrap_or(0).saturating_add_signed(delta);
                if weight == 0 {
                    model.remove(&key);
                } else {
                    model.insert(key, weight);
                }
                prop_assert_eq!(sums.len(), model.len());
                prop_assert_eq!(sums.get(key), model.get(&key).copied());
            }
            let mut all: Vec<(u32, u64)> = sums.iter().collect();
            all.sort();
            prop_assert_eq!(all, model.into_iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn an_emptied_list_gives_its_memory_back() {
        let mut sums = NeighbourSums::default();
        for key in 0..100 {
            sums.add(key, 3);
        }
        assert_eq!(sums.len(), 100);
        assert!(sums.slots.len() >= 128);
        for key in 0..100 {
            sums.add(key, -3);
        }
        assert!(sums.is_empty());
        assert!(sums.slots.is_empty());
        assert_eq!(sums.get(5), None);
    }
}
