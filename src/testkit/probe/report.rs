//! What the battery reports: each attempt, what it should come to, and what it came to.

use std::fmt;

/// What an attempt should come to.
///
/// # Examples
///
/// ```
/// use compartment::testkit::{Expected, Sandbox, probe};
/// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
/// let report = probe(&sandbox.read_only()?);
/// assert!(report.attempts.iter().any(|a| a.expected == Expected::Denied));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    all(feature = "process", target_os = "linux"),
    derive(serde::Serialize, serde::Deserialize)
)]
pub enum Expected {
    /// Refused by the capability model (a typed refusal).
    Denied,
    /// Failing in any way: refused, or an error from the kernel (such as a
    /// symlink loop, or writing through a read-only descriptor).
    Fails,
    /// Whatever happens, nothing outside the capability is reached.
    StaysInside,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expected::Denied => "denied",
            Expected::Fails => "fails",
            Expected::StaysInside => "stays inside",
        })
    }
}

/// What an attempt came to.
///
/// # Examples
///
/// ```
/// use compartment::testkit::{Outcome, Sandbox, probe};
/// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
/// let report = probe(&sandbox.read_only()?);
/// assert!(report.attempts.iter().any(|a| matches!(a.outcome, Outcome::Denied(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    all(feature = "process", target_os = "linux"),
    derive(serde::Serialize, serde::Deserialize)
)]
pub enum Outcome {
    /// The capability refused it; the refusal's message.
    Denied(String),
    /// It failed with another error; the error's message.
    Failed(String),
    /// It succeeded.
    Allowed,
    /// A repeated race: a summary of what the rounds did, none of which
    /// reached outside.
    Contained(String),
    /// A race round reached outside.
    Reached(String),
    /// The attempt could not be set up (for example, fixtures cannot be
    /// planted in a read-only filesystem); it counts as no attempt.
    Skipped(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Denied(why) => write!(f, "denied: {why}"),
            Outcome::Failed(why) => write!(f, "failed: {why}"),
            Outcome::Allowed => f.write_str("ALLOWED"),
            Outcome::Contained(summary) => write!(f, "contained: {summary}"),
            Outcome::Reached(summary) => write!(f, "REACHED OUTSIDE: {summary}"),
            Outcome::Skipped(why) => write!(f, "skipped: {why}"),
        }
    }
}

/// One escape or overreach attempt and its result.
///
/// # Examples
///
/// ```
/// use compartment::testkit::{Sandbox, probe};
/// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
/// for attempt in probe(&sandbox.read_only()?).made() {
///     assert!(!attempt.escaped, "{}: {}", attempt.attempt, attempt.outcome);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    all(feature = "process", target_os = "linux"),
    derive(serde::Serialize, serde::Deserialize)
)]
pub struct Attempt {
    /// What was tried.
    pub attempt: String,
    /// Against which capability: its field path and kind.
    pub capability: String,
    /// What it should come to.
    pub expected: Expected,
    /// What it came to.
    pub outcome: Outcome,
    /// Whether it got through: allowed when it should not have been, or the
    /// outside canary changed.
    pub escaped: bool,
}

/// The result of [`probe`](super::probe()): every attempt, printable as a table ending in
/// `N attempts, M escaped`.
///
/// # Examples
///
/// ```
/// use compartment::testkit::{Sandbox, probe};
/// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
/// let report = probe(&sandbox.read_only()?);
/// println!("{report}"); // one line per attempt: what, expected, outcome
/// report.assert_contained();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(
    all(feature = "process", target_os = "linux"),
    derive(serde::Serialize, serde::Deserialize)
)]
pub struct Report {
    /// Every attempt, in the order made.
    pub attempts: Vec<Attempt>,
}

impl Report {
    /// The attempts actually made (not skipped).
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::{Sandbox, probe};
    /// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
    /// let report = probe(&sandbox.read_only()?);
    /// assert!(report.made().count() > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn made(&self) -> impl Iterator<Item = &Attempt> {
        self.attempts
            .iter()
            .filter(|a| !matches!(a.outcome, Outcome::Skipped(_)))
    }

    /// The attempts that escaped.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::{Sandbox, probe};
    /// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
    /// let report = probe(&sandbox.read_only()?);
    /// assert!(report.escapes().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn escapes(&self) -> Vec<&Attempt> {
        self.attempts.iter().filter(|a| a.escaped).collect()
    }

    /// Panics, printing the whole table, if any attempt escaped.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::{Sandbox, probe};
    /// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
    /// let report = probe(&sandbox.read_only()?);
    /// report.assert_contained(); // panics with the whole table on an escape
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    ///
    /// When [`escapes`](Self::escapes) is not empty.
    #[track_caller]
    pub fn assert_contained(&self) {
        assert!(
            self.escapes().is_empty(),
            "the escape battery found escapes:\n{self}"
        );
    }

    /// Adds another report's attempts.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::{Sandbox, probe};
    /// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
    /// let mut report = probe(&sandbox.read_only()?);
    /// let before = report.attempts.len();
    /// report.merge(probe(&sandbox.dir()?));
    /// assert!(report.attempts.len() > before);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn merge(&mut self, other: Report) {
        self.attempts.extend(other.attempts);
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = |column: fn(&Attempt) -> String| {
            self.attempts
                .iter()
                .map(|a| column(a).chars().count())
                .max()
                .unwrap_or(0)
        };
        let attempt_width = width(|a| a.attempt.clone()).max(7);
        let capability_width = width(|a| a.capability.clone()).max(10);
        writeln!(
            f,
            "{:>3}  {:<attempt_width$}  {:<capability_width$}  {:<12}  outcome",
            "#", "attempt", "capability", "expected"
        )?;
        for (i, a) in self.attempts.iter().enumerate() {
            let mut outcome = a.outcome.to_string();
            if outcome.chars().count() > 110 {
                outcome = outcome.chars().take(107).collect::<String>() + "...";
            }
            writeln!(
                f,
                "{:>3}  {:<attempt_width$}  {:<capability_width$}  {:<12}  {}{}",
                i + 1,
                a.attempt,
                a.capability,
                a.expected.to_string(),
                if a.escaped { "ESCAPED " } else { "" },
                outcome
            )?;
        }
        let skipped = self.attempts.len() - self.made().count();
        if skipped > 0 {
            writeln!(f, "({skipped} attempts skipped)")?;
        }
        write!(
            f,
            "{} attempts, {} escaped",
            self.made().count(),
            self.escapes().len()
        )
    }
}
