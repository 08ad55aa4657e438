//! Which registered migrations lead a document from one schema version to another.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use crate::Version;

/// A registered migration, as the planner sees it: it leads from `from` to `to` (the first
/// version of a new major line), and back when `reversible`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// The version documents come from.
    pub from: Version,
    /// The version the migration was registered with.
    pub to: Version,
    /// Whether it has a reverse.
    pub reversible: bool,
}

/// One step of a plan: apply link `0` forward, or its reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Apply the migration of `links[i]`.
    Forward(usize),
    /// Apply the reverse of the migration of `links[i]`.
    Backward(usize),
}

/// Why no plan exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// No chain of migrations connects the two major lines (a major version registered without
    /// a migration).
    NoPath {
        /// The major line of the document.
        from_major: u32,
        /// The major line asked for.
        to_major: u32,
    },
    /// The chain goes back through a migration that has no reverse.
    Lossy(Link),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::NoPath {
                from_major,
                to_major,
            } => write!(
                f,
                "no migration connects major version {from_major} to major version {to_major}"
            ),
            PlanError::Lossy(link) => write!(
                f,
                "the migration from {} to {} is lossy and cannot be reversed",
                link.from, link.to
            ),
        }
    }
}

/// The steps that take a document stored under `from` to `to`: within a major line none (its
/// versions are compatible), else the shortest chain of migrations between the two major
/// lines, forward where it goes up a link, backward where it goes down one.
///
/// ```
/// use vellum_core::Version;
/// use vellum_core::migration::plan::{Link, Step, plan};
///
/// let links = [
///     Link { from: Version::new(1, 1, 0), to: Version::new(2, 0, 0), reversible: true },
///     Link { from: Version::new(2, 3, 0), to: Version::new(3, 0, 0), reversible: false },
/// ];
/// let v = |s: &str| s.parse::<Version>().unwrap();
/// assert_eq!(plan(&links, v("1.0.0"), v("3.0.0")), Ok(vec![Step::Forward(0), Step::Forward(1)]));
/// assert_eq!(plan(&links, v("2.1.0"), v("1.1.0")), Ok(vec![Step::Backward(0)]));
/// assert!(plan(&links, v("3.0.0"), v("2.0.0")).is_err());
/// assert_eq!(plan(&links, v("1.0.0"), v("1.4.0")), Ok(vec![]));
/// ```
pub fn plan(links: &[Link], from: Version, to: Version) -> Result<Vec<Step>, PlanError> {
    let (start, goal) = (from.major, to.major);
    // Breadth first over major lines; each line remembers the step that reached it.
    let mut reached: HashMap<u32, Option<(u32, Step)>> = HashMap::from([(start, None)]);
    let mut queue = VecDeque::from([start]);
    while let Some(line) = queue.pop_front() {
        if line == goal {
            break;
        }
        for (i, link) in links.iter().enumerate() {
            let next = if link.from.major == line {
                (link.to.major, Step::Forward(i))
            } else if link.to.major == line {
                (link.from.major, Step::Backward(i))
            } else {
                continue;
            };
            if let std::collections::hash_map::Entry::Vacant(slot) = reached.entry(next.0) {
                slot.insert(Some((line, next.1)));
                queue.push_back(next.0);
            }
        }
    }
    if !reached.contains_key(&goal) {
        return Err(PlanError::NoPath {
            from_major: start,
            to_major: goal,
        });
    }
    let mut steps = Vec::new();
    let mut line = goal;
    while let Some(Some((previous, step))) = reached.get(&line) {
        steps.push(*step);
        line = *previous;
    }
    steps.reverse();
    for step in &steps {
        if let Step::Backward(i) = step
            && !links[*i].reversible
        {
            return Err(PlanError::Lossy(links[*i]));
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        text.parse().unwrap()
    }

    fn link(from: &str, to: &str, reversible: bool) -> Link {
        Link {
            from: v(from),
            to: v(to),
            reversible,
        }
    }

    #[test]
    fn plans_compose_links_forward_and_backward() {
        let links = [
            link("1.1.0", "2.0.0", true),
            link("2.2.0", "3.0.0", true),
            link("3.0.0", "4.0.0", false),
        ];
        use Step::{Backward as B, Forward as F};
        type Case = (&'static str, &'static str, Result<Vec<Step>, PlanError>);
        let cases: &[Case] = &[
            ("1.0.0", "1.3.0", Ok(vec![])),
            ("2.1.0", "2.0.0", Ok(vec![])),
            ("1.0.0", "2.2.0", Ok(vec![F(0)])),
            ("1.0.0", "4.0.0", Ok(vec![F(0), F(1), F(2)])),
            ("3.0.0", "1.0.0", Ok(vec![B(1), B(0)])),
            ("2.5.0", "1.1.0", Ok(vec![B(0)])),
            ("4.0.0", "3.0.0", Err(PlanError::Lossy(links[2]))),
            ("4.0.0", "1.0.0", Err(PlanError::Lossy(links[2]))),
            (
                "1.0.0",
                "5.0.0",
                Err(PlanError::NoPath {
                    from_major: 1,
                    to_major: 5,
                }),
            ),
        ];
        for (from, to, expected) in cases {
            assert_eq!(&plan(&links, v(from), v(to)), expected, "{from} -> {to}");
        }
    }

    #[test]
    fn a_major_line_inserted_below_another_is_reached_through_its_own_link() {
        // 3.0.0 was registered from 1.x, then 2.0.0 from 1.x too: a tree, not a line.
        let links = [link("1.0.0", "3.0.0", true), link("1.2.0", "2.0.0", true)];
        assert_eq!(
            plan(&links, v("2.0.0"), v("3.1.0")),
            Ok(vec![Step::Backward(1), Step::Forward(0)])
        );
    }

    #[test]
    fn lossy_errors_name_the_migration() {
        let err = PlanError::Lossy(link("1.1.0", "2.0.0", false));
        assert_eq!(
            err.to_string(),
            "the migration from 1.1.0 to 2.0.0 is lossy and cannot be reversed"
        );
    }
}
