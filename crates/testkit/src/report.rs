//! What `check` found, per key, in a form tests can assert on and people can read.

use crate::history::Operation;
use std::fmt;

/// How many operations of a long prefix an explanation prints: the end is where it broke.
const PREFIX_SHOWN: usize = 10;

/// The verdict on a whole history.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// One entry per key, in key order.
    pub keys: Vec<KeyReport>,
    /// Two keys' operations claiming the same revision (revisions name single changes).
    pub revision_conflicts: Vec<RevisionConflict>,
}

/// The verdict on one key.
#[derive(Debug, Clone)]
pub struct KeyReport {
    pub key: String,
    /// Operations that took part in the search.
    pub checked: usize,
    /// Operations left out because they cannot have had an effect and tell nothing: failed
    /// requests and reads whose answer never came.
    pub ignored: usize,
    /// Search steps used (one attempt to place an operation, or one backtrack).
    pub steps: u64,
    pub outcome: Outcome,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Linearizable,
    NotLinearizable(Box<Explanation>),
    /// The search gave up after this many steps without a verdict.
    BudgetExceeded {
        budget: u64,
    },
}

/// Why a key is not linearizable: how far the best attempt got and where it broke.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The longest sequence of this key's operations found that fits the register, in
    /// linearization order.
    pub prefix: Vec<Operation>,
    /// The register after that prefix, e.g. `"b" @12` or `absent, last change @7`.
    pub state_after_prefix: String,
    /// Operations invoked and not yet placed at that point.
    pub pending: Vec<Operation>,
    /// The operation that completed while no order of the above could place it.
    pub blocker: Operation,
}

/// Two operations on different keys that claim the same revision.
#[derive(Debug, Clone)]
pub struct RevisionConflict {
    pub revision: u64,
    pub first: Operation,
    pub second: Operation,
}

impl CheckReport {
    /// True only if every key was proven linearizable and no revision is claimed twice.
    pub fn is_linearizable(&self) -> bool {
        self.revision_conflicts.is_empty()
            && self
                .keys
                .iter()
                .all(|k| matches!(k.outcome, Outcome::Linearizable))
    }

    /// True if some key is proven not linearizable (an exceeded budget is no proof).
    pub fn has_violation(&self) -> bool {
        !self.revision_conflicts.is_empty() || self.violations().next().is_some()
    }

    pub fn violations(&self) -> impl Iterator<Item = &KeyReport> {
        self.keys
            .iter()
            .filter(|k| matches!(k.outcome, Outcome::NotLinearizable(_)))
    }

    pub fn key(&self, key: &str) -> Option<&KeyReport> {
        self.keys.iter().find(|k| k.key == key)
    }

    pub fn operations_checked(&self) -> usize {
        self.keys.iter().map(|k| k.checked).sum()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let steps: u64 = self.keys.iter().map(|k| k.steps).sum();
        let verdict = if self.is_linearizable() {
            "linearizable"
        } else if self.has_violation() {
            "NOT LINEARIZABLE"
        } else {
            "UNDECIDED"
        };
        writeln!(
            f,
            "{verdict}: {} keys, {} operations checked, {steps} search steps",
            self.keys.len(),
            self.operations_checked()
        )?;
        for key in &self.keys {
            if !matches!(key.outcome, Outcome::Linearizable) {
                write!(f, "{key}")?;
            }
        }
        for conflict in &self.revision_conflicts {
            writeln!(
                f,
                "revision {} claimed on two keys:\n    {:?}: {}\n    {:?}: {}",
                conflict.revision, conflict.first.key, conflict.first, conflict.second.key, conflict.second
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for KeyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Linearizable => writeln!(
                f,
                "key {:?}: linearizable ({} operations)",
                self.key, self.checked
            ),
            Outcome::BudgetExceeded { budget } => writeln!(
                f,
                "key {:?}: undecided, the search used its budget of {budget} steps ({} operations)",
                self.key, self.checked
            ),
            Outcome::NotLinearizable(explanation) => {
                writeln!(
                    f,
                    "key {:?}: NOT linearizable ({} operations)",
                    self.key, self.checked
                )?;
                write!(f, "{explanation}")
            }
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let skipped = self.prefix.len().saturating_sub(PREFIX_SHOWN);
        write!(
            f,
            "  longest linearizable prefix found: {} operations",
            self.prefix.len()
        )?;
        if skipped > 0 {
            write!(f, " (the first {skipped} not shown)")?;
        }
        writeln!(f)?;
        for op in &self.prefix[skipped..] {
            writeln!(f, "    {op}")?;
        }
        writeln!(f, "  after it the key is: {}", self.state_after_prefix)?;
        writeln!(f, "  invoked but not placed then:")?;
        for op in &self.pending {
            writeln!(f, "    {op}")?;
        }
        writeln!(
            f,
            "  dead end: {} completed, and no order of the pending operations lets it take effect",
            self.blocker
        )
    }
}
