//! HR@10, NDCG@10 and Recall@10 with binary relevance, averaged over users
//! (offline) or over scored events (prequential, one relevant item each).

use serde::Serialize;

pub const K: usize = 10;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Metrics {
    pub hr10: f64,
    pub ndcg10: f64,
    pub recall10: f64,
}

/// Sums of per-case figures, averaged at the end.
#[derive(Debug, Clone, Copy, Default)]
pub struct Accumulator {
    hits: f64,
    ndcg: f64,
    recall: f64,
    cases: u64,
}

impl Accumulator {
    /// One case: the ranked list (top `K` used) against its relevant items.
    pub fn add<T: PartialEq>(&mut self, ranked: &[T], relevant: &[T]) {
        if relevant.is_empty() {
            return;
        }
        let mut hits = 0usize;
        let mut dcg = 0.0;
        for (rank, item) in ranked.iter().take(K).enumerate() {
            if relevant.contains(item) {
                hits += 1;
                dcg += 1.0 / ((rank + 2) as f64).log2();
            }
        }
        let ideal = relevant.len().min(K);
        let idcg: f64 = (0..ideal)
            .map(|rank| 1.0 / ((rank + 2) as f64).log2())
            .sum();
        self.hits += f64::from(u8::from(hits > 0));
        self.ndcg += dcg / idcg;
        self.recall += hits as f64 / ideal as f64;
        self.cases += 1;
    }

    pub fn cases(&self) -> u64 {
        self.cases
    }

    pub fn metrics(&self) -> Metrics {
        let n = self.cases.max(1) as f64;
        Metrics {
            hr10: self.hits / n,
            ndcg10: self.ndcg / n,
            recall10: self.recall / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_follow_the_definitions() {
        let mut acc = Accumulator::default();
        // Hit at rank 2 of 2 relevant items: DCG 1/log2(3), IDCG 1 + 1/log2(3).
        acc.add(&[1, 7, 3], &[7, 9]);
        let m = acc.metrics();
        assert_eq!(m.hr10, 1.0);
        assert!((m.ndcg10 - (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2())).abs() < 1e-12);
        assert_eq!(m.recall10, 0.5);
        // A miss halves the averages.
        acc.add(&[1], &[2]);
        assert_eq!(acc.metrics().hr10, 0.5);
        assert_eq!(acc.cases(), 2);
    }
}
