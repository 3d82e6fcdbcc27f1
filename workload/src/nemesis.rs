//! `--nemesis partition`: Jepsen's partition package as Maelstrom uses it. Starts and heals
//! alternate, each after a wait uniform in `[0, 2 × --nemesis-interval)` (the first at the
//! start of the main phase, as Jepsen's stagger does); each start picks one of Jepsen's
//! four shapes at random; the network is healed when the main phase ends, before the
//! recovery sleep.
//!
//! A shape becomes a grudge: for each node, the nodes whose messages it drops. Most shapes
//! are symmetric cuts; the majorities ring is not (each node drops the nodes outside its
//! own majority, which other nodes may still hear).

use std::fmt;

/// Jepsen's partition specs, in Jepsen's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// One random node is cut off from the rest.
    One,
    /// Up to, but not including, a third of the nodes are cut off (none below 4 nodes).
    MinorityThird,
    /// A clean split into a smaller and a larger half.
    Majority,
    /// Every node sees a majority, no two the same majority.
    MajoritiesRing,
}

impl Shape {
    pub const ALL: [Shape; 4] = [
        Shape::One,
        Shape::MinorityThird,
        Shape::Majority,
        Shape::MajoritiesRing,
    ];

    /// Jepsen's keyword.
    pub fn name(self) -> &'static str {
        match self {
            Shape::One => "one",
            Shape::MinorityThird => "minority-third",
            Shape::Majority => "majority",
            Shape::MajoritiesRing => "majorities-ring",
        }
    }
}

/// For each node (by index), the nodes whose messages it drops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grudge(pub Vec<Vec<usize>>);

impl Grudge {
    /// Nobody drops anything.
    pub fn none(nodes: usize) -> Grudge {
        Grudge(vec![Vec::new(); nodes])
    }

    /// Components that hear only themselves; nodes in no component are untouched.
    fn complete(nodes: usize, components: &[Vec<usize>]) -> Grudge {
        let universe: Vec<usize> = components.iter().flatten().copied().collect();
        let mut g = Grudge::none(nodes);
        for c in components {
            for &node in c {
                g.0[node] = universe
                    .iter()
                    .copied()
                    .filter(|x| !c.contains(x))
                    .collect();
                g.0[node].sort_unstable();
            }
        }
        g
    }

    pub fn drops(&self, dest: usize, src: usize) -> bool {
        self.0[dest].contains(&src)
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Vec::is_empty)
    }

    /// `{"n0": ["n1"], ...}`: Jepsen's `[:isolated grudge]` value, in JSON.
    pub fn to_json(&self, names: &[String]) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = self
            .0
            .iter()
            .enumerate()
            .filter(|(_, srcs)| !srcs.is_empty())
            .map(|(d, srcs)| {
                let srcs: Vec<&str> = srcs.iter().map(|s| names[*s].as_str()).collect();
                (names[d].clone(), serde_json::json!(srcs))
            })
            .collect();
        serde_json::json!(["isolated", map])
    }
}

/// Jepsen's `majority`: the smallest integer strictly greater than half.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// Jepsen's `minority-third`: the largest integer strictly less than a third.
pub fn minority_third(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

fn shuffled(n: usize, rng: &mut fastrand::Rng) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut v);
    v
}

/// The grudge for `shape` over `n` nodes.
pub fn grudge(shape: Shape, n: usize, rng: &mut fastrand::Rng) -> Grudge {
    if n == 0 {
        return Grudge::none(0);
    }
    match shape {
        Shape::One => {
            let loner = rng.usize(..n);
            let rest = (0..n).filter(|&x| x != loner).collect();
            Grudge::complete(n, &[vec![loner], rest])
        }
        Shape::Majority => {
            let nodes = shuffled(n, rng);
            let (small, large) = nodes.split_at(n / 2);
            Grudge::complete(n, &[small.to_vec(), large.to_vec()])
        }
        Shape::MinorityThird => {
            let nodes = shuffled(n, rng);
            let (small, large) = nodes.split_at(minority_third(n));
            Grudge::complete(n, &[small.to_vec(), large.to_vec()])
        }
        Shape::MajoritiesRing if n <= 5 => ring_perfect(n, rng),
        Shape::MajoritiesRing => ring_stochastic(n, rng),
    }
}

/// Nodes in a random ring; each window of `majority(n)` consecutive nodes is the majority
/// of its middle node, which drops everyone else.
fn ring_perfect(n: usize, rng: &mut fastrand::Rng) -> Grudge {
    let ring = shuffled(n, rng);
    let m = majority(n);
    let mut g = Grudge::none(n);
    for start in 0..n {
        let window: Vec<usize> = (0..m).map(|i| ring[(start + i) % n]).collect();
        let middle = window[m / 2];
        g.0[middle] = (0..n).filter(|x| !window.contains(x)).collect();
    }
    g
}

/// Larger clusters: link least-connected nodes until each hears a majority (itself
/// included), then drop the rest.
fn ring_stochastic(n: usize, rng: &mut fastrand::Rng) -> Grudge {
    let m = majority(n);
    let mut conns: Vec<Vec<bool>> = (0..n).map(|i| (0..n).map(|j| i == j).collect()).collect();
    let degree = |c: &Vec<Vec<bool>>, i: usize| c[i].iter().filter(|x| **x).count();
    loop {
        let mut order = shuffled(n, rng);
        order.sort_by_key(|&i| degree(&conns, i));
        let a = order[0];
        if degree(&conns, a) >= m {
            break;
        }
        let Some(&b) = order.iter().find(|&&b| !conns[a][b]) else {
            break;
        };
        conns[a][b] = true;
        conns[b][a] = true;
    }
    Grudge(
        (0..n)
            .map(|i| (0..n).filter(|&j| !conns[i][j]).collect())
            .collect(),
    )
}

/// One nemesis operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Start(Shape, Grudge),
    Stop,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Start(s, _) => write!(f, "start-partition {}", s.name()),
            Op::Stop => f.write_str("stop-partition"),
        }
    }
}

/// The schedule: what to do next and when.
#[derive(Debug)]
pub struct Nemesis {
    nodes: usize,
    /// Twice the mean interval, ns: each wait is uniform below it.
    span: u64,
    due: u64,
    partitioned: bool,
    rng: fastrand::Rng,
}

impl Nemesis {
    /// Partitions among `nodes`, the first due at `start`.
    pub fn new(nodes: usize, mean_interval: u64, start: u64, seed: u64) -> Nemesis {
        Nemesis {
            nodes,
            span: mean_interval.saturating_mul(2).max(1),
            due: start,
            partitioned: false,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// When the next operation is due.
    pub fn due(&self) -> u64 {
        self.due
    }

    pub fn partitioned(&self) -> bool {
        self.partitioned
    }

    /// The operation due now: a start after a heal, a heal after a start.
    pub fn step(&mut self) -> Op {
        self.due += self.rng.u64(..self.span);
        self.partitioned = !self.partitioned;
        if self.partitioned {
            let shape = Shape::ALL[self.rng.usize(..Shape::ALL.len())];
            Op::Start(shape, grudge(shape, self.nodes, &mut self.rng))
        } else {
            Op::Stop
        }
    }

    /// The final heal, before the recovery sleep (Jepsen's final generator always sends it).
    pub fn heal(&mut self) -> Op {
        self.partitioned = false;
        self.due = u64::MAX;
        Op::Stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Who hears whom: `hears[d][s]`.
    fn hears(g: &Grudge, n: usize) -> Vec<Vec<bool>> {
        (0..n)
            .map(|d| (0..n).map(|s| !g.drops(d, s)).collect())
            .collect()
    }

    #[test]
    fn jepsen_sizes() {
        assert_eq!(
            (1..=7).map(majority).collect::<Vec<_>>(),
            [1, 2, 2, 3, 3, 4, 4]
        );
        assert_eq!(
            (1..=10).map(minority_third).collect::<Vec<_>>(),
            [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]
        );
    }

    #[test]
    fn one_isolates_exactly_one_node() {
        let mut rng = fastrand::Rng::with_seed(3);
        assert_eq!(grudge(Shape::One, 2, &mut rng).0.concat().len(), 2);
        for n in [3, 5] {
            let g = grudge(Shape::One, n, &mut rng);
            let loners: Vec<usize> = (0..n).filter(|&d| g.0[d].len() == n - 1).collect();
            assert_eq!(loners.len(), 1, "{g:?}");
            let l = loners[0];
            for d in (0..n).filter(|&d| d != l) {
                assert_eq!(g.0[d], vec![l]);
            }
        }
    }

    #[test]
    fn majority_splits_cleanly_and_symmetrically() {
        let mut rng = fastrand::Rng::with_seed(4);
        for n in [2, 3, 4, 5] {
            let g = grudge(Shape::Majority, n, &mut rng);
            let h = hears(&g, n);
            for (a, row) in h.iter().enumerate() {
                for (b, heard) in row.iter().enumerate() {
                    assert_eq!(*heard, h[b][a]);
                }
                let side = row.iter().filter(|x| **x).count();
                assert!(side == n / 2 || side == n - n / 2, "{g:?}");
            }
        }
    }

    #[test]
    fn minority_third_needs_four_nodes() {
        let mut rng = fastrand::Rng::with_seed(5);
        assert!(grudge(Shape::MinorityThird, 3, &mut rng).is_empty());
        let g = grudge(Shape::MinorityThird, 7, &mut rng);
        let cut: Vec<usize> = (0..7).filter(|&d| g.0[d].len() == 5).collect();
        assert_eq!(cut.len(), 2, "{g:?}");
    }

    #[test]
    fn majorities_ring_gives_everyone_a_different_majority() {
        let mut rng = fastrand::Rng::with_seed(6);
        for n in [3, 4, 5, 7, 9] {
            let g = grudge(Shape::MajoritiesRing, n, &mut rng);
            let h = hears(&g, n);
            for (d, row) in h.iter().enumerate() {
                assert!(row[d], "a node always hears itself");
                let seen = row.iter().filter(|x| **x).count();
                assert!(seen >= majority(n), "n={n}: {g:?}");
            }
            if n <= 5 {
                for a in 0..n {
                    assert_eq!(h[a].iter().filter(|x| **x).count(), majority(n));
                    for b in a + 1..n {
                        assert_ne!(h[a], h[b], "n={n}: two nodes see the same majority");
                    }
                }
            }
        }
        // Two nodes: the only majority is both, so the ring cuts nothing.
        assert!(grudge(Shape::MajoritiesRing, 2, &mut rng).is_empty());
    }

    #[test]
    fn schedule_alternates_and_waits_about_the_interval() {
        let mut n = Nemesis::new(3, 10, 100, 9);
        assert_eq!(n.due(), 100);
        let mut shapes = std::collections::HashSet::new();
        let mut waits = Vec::new();
        for i in 0..4000 {
            let before = n.due();
            let op = n.step();
            waits.push(n.due() - before);
            match op {
                Op::Start(s, _) => {
                    assert_eq!(i % 2, 0);
                    assert!(n.partitioned());
                    shapes.insert(s);
                }
                Op::Stop => {
                    assert_eq!(i % 2, 1);
                    assert!(!n.partitioned());
                }
            }
        }
        assert_eq!(shapes.len(), 4, "every shape is drawn");
        assert!(waits.iter().all(|w| *w < 20));
        let mean = waits.iter().sum::<u64>() as f64 / waits.len() as f64;
        assert!((9.0..10.0).contains(&mean), "mean wait {mean}");
        n.step();
        assert!(n.partitioned());
        assert_eq!(n.heal(), Op::Stop);
        assert!(!n.partitioned());
        assert_eq!(n.due(), u64::MAX);
    }

    #[test]
    fn grudge_json_names_nodes() {
        let names: Vec<String> = ["n0", "n1", "n2"].map(String::from).to_vec();
        let g = Grudge::complete(3, &[vec![1], vec![0, 2]]);
        assert_eq!(
            g.to_json(&names),
            serde_json::json!(["isolated", {"n0": ["n1"], "n1": ["n0", "n2"], "n2": ["n1"]}])
        );
    }
}
