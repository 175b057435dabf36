//! A nemesis: injects faults into a running cluster on a seeded random schedule, one fault at
//! a time, each held for a random while and then healed. The same seed gives the same
//! schedule (which member is hit can differ: it depends on who leads at the time). The log
//! of what was done is printed with the seed, so a failure can be replayed.
//!
//! Faults: a member cut off from the others (both ways), the followers' answers to the leader
//! dropped (one way), `kill -9` and restart, SIGSTOP and SIGCONT, a full disk (its tmpfs
//! filled to below the reserve), a clock skewed ±10 minutes or stepped back an hour, and a
//! member replaced: removed from the cluster (the leader too, which hands over first), its
//! disk wiped, started again empty with its usual flags, and added back (it catches up as a
//! learner and is promoted).

use super::faketime::set_offset;
use super::{Cluster, Net, Tmpfs};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a membership change may take (a handover, a snapshot to a wiped member).
const MEMBERSHIP_WAIT: Duration = Duration::from_secs(60);

/// SplitMix64: small, seeded, good enough to pick faults.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// The member is cut off from both others, both ways.
    Isolate(u64),
    /// Nothing the other members send reaches the leader (it still reaches them).
    AnswersLost(u64),
    Kill(u64),
    Pause(u64),
    DiskFull(u64),
    /// The member's wall clock is moved by this many seconds.
    Clock(u64, i64),
    /// Removed, wiped and restarted empty; added back when healed. With a second member, the
    /// removal starts while that one is cut off from the others, and is completed after the
    /// cut heals (the change needs a majority of the old and of the new configuration).
    Replace(u64, Option<u64>),
}

impl Fault {
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Isolate(_) => "partition (member isolated)",
            Fault::AnswersLost(_) => "partition (one way, to the leader)",
            Fault::Kill(_) => "kill -9 and restart",
            Fault::Pause(_) => "SIGSTOP / SIGCONT",
            Fault::DiskFull(_) => "disk full",
            Fault::Clock(_, _) => "clock skew or step",
            Fault::Replace(_, None) => "member removed, wiped, added back",
            Fault::Replace(_, Some(_)) => "member removed during a partition, wiped, added back",
        }
    }
}

/// One injected fault: when (since the nemesis started), what, for how long.
pub struct Injected {
    pub at: Duration,
    pub fault: Fault,
    pub held: Duration,
}

/// What the nemesis works with: the cluster, its network, each member's disk and clock file.
pub struct Nemesis<'a> {
    pub cluster: &'a mut Cluster,
    pub net: &'a Net,
    pub disks: &'a [Tmpfs],
    pub clocks: &'a [PathBuf],
    /// Writes are refused below this much free space (`--disk-reserve`).
    pub disk_reserve: u64,
    pub seed: u64,
    rng: Rng,
    pub log: Vec<Injected>,
}

impl<'a> Nemesis<'a> {
    pub fn new(
        cluster: &'a mut Cluster,
        net: &'a Net,
        disks: &'a [Tmpfs],
        clocks: &'a [PathBuf],
        disk_reserve: u64,
        seed: u64,
    ) -> Nemesis<'a> {
        Nemesis {
            cluster,
            net,
            disks,
            clocks,
            disk_reserve,
            seed,
            rng: Rng::new(seed),
            log: Vec::new(),
        }
    }

    /// Injects faults for `duration`: each held 0.5–3 s, then healed, then 0.5–1.5 s of calm.
    pub fn run(&mut self, duration: Duration) {
        let started = Instant::now();
        while started.elapsed() < duration {
            let fault = self.pick();
            let held = self.rng.millis(500, 3_000);
            let at = started.elapsed();
            self.apply(fault);
            std::thread::sleep(held);
            self.heal(fault);
            self.log.push(Injected { at, fault, held });
            std::thread::sleep(self.rng.millis(500, 1_500));
        }
    }

    /// A fault, aimed at the leader half of the time (the interesting member), else at any.
    fn pick(&mut self) -> Fault {
        let n = self.cluster.members.len() as u64;
        let any = 1 + self.rng.below(n);
        let aimed_at_leader = self.rng.below(2) == 0;
        let victim = if aimed_at_leader {
            self.cluster.leader_seen_by(any).unwrap_or(any)
        } else {
            any
        };
        match self.rng.below(7) {
            0 => Fault::Isolate(victim),
            1 => Fault::AnswersLost(self.cluster.leader_seen_by(any).unwrap_or(victim)),
            2 => Fault::Kill(victim),
            3 => Fault::Pause(victim),
            4 => Fault::DiskFull(victim),
            5 => {
                let others = self.others(victim);
                let cut = others[self.rng.below(others.len() as u64) as usize];
                Fault::Replace(victim, (self.rng.below(2) == 0).then_some(cut))
            }
            _ => Fault::Clock(victim, [600, -600, -3_600][self.rng.below(3) as usize]),
        }
    }

    fn apply(&mut self, fault: Fault) {
        match fault {
            Fault::Isolate(id) => self.net.isolate(id as u32),
            Fault::AnswersLost(leader) => {
                for other in self.others(leader) {
                    self.net.cut(other as u32, leader as u32);
                }
            }
            Fault::Kill(id) => self.cluster.kill(id),
            Fault::Pause(id) => self.cluster.pause(id, true),
            Fault::DiskFull(id) => self.disks[id as usize - 1].fill_leaving(self.disk_reserve / 2),
            Fault::Clock(id, seconds) => set_offset(&self.clocks[id as usize - 1], &format!("{seconds:+}")),
            Fault::Replace(id, cut) => {
                // Asked through a member that stays connected.
                let via = self.others(id).into_iter().find(|o| Some(*o) != cut).unwrap();
                if let Some(cut) = cut {
                    // The removal is asked for while `cut` is away, and the cut heals 2 s later
                    // whether or not the request has been answered: it cannot commit meanwhile
                    // (the new configuration's majority needs `cut`), and with it no write can.
                    self.net.isolate(cut as u32);
                    let cluster = &*self.cluster;
                    std::thread::scope(|scope| {
                        scope.spawn(|| cluster.change_membership(via, "DELETE", id, Duration::ZERO));
                        std::thread::sleep(Duration::from_secs(2));
                        self.net.heal();
                    });
                }
                if let Err(last) = self.cluster.change_membership(via, "DELETE", id, MEMBERSHIP_WAIT) {
                    panic!("removing member {id}: {last}\n{self}");
                }
                self.cluster.kill(id);
                self.cluster.wipe(id);
                self.cluster.start_member(id);
            }
        }
    }

    fn heal(&mut self, fault: Fault) {
        match fault {
            Fault::Isolate(_) | Fault::AnswersLost(_) => self.net.heal(),
            Fault::Kill(id) => self.cluster.start_member(id),
            Fault::Pause(id) => self.cluster.pause(id, false),
            Fault::DiskFull(id) => self.disks[id as usize - 1].free(),
            Fault::Clock(id, _) => set_offset(&self.clocks[id as usize - 1], "+0"),
            Fault::Replace(id, _) => {
                let via = self.others(id)[0];
                if let Err(last) = self.cluster.change_membership(via, "POST", id, MEMBERSHIP_WAIT) {
                    panic!("adding member {id} back: {last}\n{self}");
                }
            }
        }
    }

    fn others(&self, id: u64) -> Vec<u64> {
        (1..=self.cluster.members.len() as u64)
            .filter(|o| *o != id)
            .collect()
    }

    /// Faults injected, by kind.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for injected in &self.log {
            *counts.entry(injected.fault.kind()).or_insert(0) += 1;
        }
        counts
    }
}

impl fmt::Display for Nemesis<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "nemesis seed {} ({} faults):", self.seed, self.log.len())?;
        for injected in &self.log {
            writeln!(
                f,
                "  at {:>7.1?} for {:>6.1?}: {:?}",
                injected.at, injected.held, injected.fault
            )?;
        }
        Ok(())
    }
}
