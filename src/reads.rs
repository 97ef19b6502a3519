//! What of a payload something reads: a tree of keys, built once per source from its
//! sender's parser, routes, target expressions and templates (`ingest::reads`), so that
//! the request path builds only those parts of a webhook's JSON (`inbound::json`).
//!
//! Sound by construction, not by a list: a reader that cannot say exactly what it reads
//! (a template with a partial, `../`, a helper we do not know; a route that holds events
//! for digests) reads [`Reads::All`], and the payload is built whole as before.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::fieldpath::{FieldPath, Segment};

/// The parts of a JSON value that are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reads {
    /// The whole value, whatever it is.
    All,
    /// These members (array elements by their index written as a number) and, with
    /// `each`, every member. A scalar is always kept whole; an object keeps only the
    /// keys named or, with `each`, all of its keys; an array keeps its length, with
    /// elements nothing reads left as `null`. With `nonempty` (`{{#if x}}` reads whether
    /// `x` is empty), an object none of whose members read is there keeps its first
    /// member, as `null`, so that it is empty only if it was.
    Fields {
        keys: BTreeMap<String, Reads>,
        each: Option<Box<Reads>>,
        nonempty: bool,
    },
}

/// One step of a path into a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    /// Every member of an array or object (`{{#each}}`).
    Each,
}

impl Default for Reads {
    fn default() -> Self {
        Reads::nothing()
    }
}

impl Reads {
    /// The value is present but none of its members is read.
    pub fn nothing() -> Reads {
        Reads::Fields {
            keys: BTreeMap::new(),
            each: None,
            nonempty: false,
        }
    }

    /// Whether the value is truthy (`{{#if}}`): a scalar whole, an object's emptiness.
    pub fn truth() -> Reads {
        Reads::Fields {
            keys: BTreeMap::new(),
            each: None,
            nonempty: true,
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, Reads::All)
    }

    /// Whether an object of which no member read is present keeps one (see `Fields`).
    pub fn keeps_nonempty(&self) -> bool {
        matches!(self, Reads::Fields { nonempty: true, .. })
    }

    /// Adds `leaf` at the end of `path`.
    pub fn add(&mut self, path: &[Step], leaf: Reads) {
        let Reads::Fields { keys, each, .. } = self else {
            return;
        };
        match path.split_first() {
            None => self.merge(leaf),
            Some((Step::Key(k), rest)) => keys.entry(k.clone()).or_default().add(rest, leaf),
            Some((Step::Each, rest)) => each
                .get_or_insert_with(|| Box::new(Reads::nothing()))
                .add(rest, leaf),
        }
    }

    /// The whole values at these dotted field paths (a sender's `Kind::reads`); None when
    /// one does not parse.
    pub fn of_fields(paths: &[&str]) -> Option<Reads> {
        let mut r = Reads::nothing();
        for p in paths {
            r.add_field(&FieldPath::parse(p).ok()?);
        }
        Some(r)
    }

    /// The whole value at a field path (`when`, `group_by`, a sender's own fields).
    pub fn add_field(&mut self, path: &FieldPath) {
        let steps: Vec<Step> = path
            .segments()
            .iter()
            .map(|s| match s {
                Segment::Key(k) => Step::Key(k.clone()),
                Segment::Index(i) => Step::Key(i.to_string()),
            })
            .collect();
        self.add(&steps, Reads::All);
    }

    pub fn merge(&mut self, other: Reads) {
        match (&mut *self, other) {
            (Reads::All, _) => {}
            (_, Reads::All) => *self = Reads::All,
            (
                Reads::Fields {
                    keys,
                    each,
                    nonempty,
                },
                Reads::Fields {
                    keys: more,
                    each: more_each,
                    nonempty: more_nonempty,
                },
            ) => {
                *nonempty |= more_nonempty;
                for (k, r) in more {
                    keys.entry(k).or_default().merge(r);
                }
                if let Some(e) = more_each {
                    match each {
                        Some(mine) => mine.merge(*e),
                        None => *each = Some(e),
                    }
                }
            }
        }
    }

    /// What is read of the member `key` of an object, or of the element at index
    /// `key` of an array; None: nothing (the member is not built).
    pub fn member(&self, key: &str) -> Option<Cow<'_, Reads>> {
        match self {
            Reads::All => Some(Cow::Borrowed(self)),
            Reads::Fields { keys, each, .. } => match (keys.get(key), each.as_deref()) {
                (None, None) => None,
                (Some(r), None) | (None, Some(r)) => Some(Cow::Borrowed(r)),
                (Some(a), Some(b)) => {
                    let mut both = a.clone();
                    both.merge(b.clone());
                    Some(Cow::Owned(both))
                }
            },
        }
    }

    /// What is read of the element at `index` of an array.
    pub fn element(&self, index: usize) -> Option<Cow<'_, Reads>> {
        match self {
            Reads::Fields { keys, each, .. } if keys.is_empty() => {
                each.as_deref().map(Cow::Borrowed)
            }
            _ => self.member(&index.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(p: &str) -> FieldPath {
        FieldPath::parse(p).unwrap()
    }

    #[test]
    fn paths_merge_into_one_tree_and_all_absorbs() {
        let mut r = Reads::nothing();
        r.add_field(&field("repository.full_name"));
        r.add_field(&field("alerts[0].labels"));
        r.add(
            &[
                Step::Key("commits".into()),
                Step::Each,
                Step::Key("id".into()),
            ],
            Reads::All,
        );
        assert!(r.member("sender").is_none());
        let repo = r.member("repository").unwrap();
        assert!(repo.member("full_name").unwrap().is_all());
        assert!(repo.member("html_url").is_none());
        let alerts = r.member("alerts").unwrap();
        assert!(
            alerts
                .element(0)
                .unwrap()
                .member("labels")
                .unwrap()
                .is_all()
        );
        assert!(alerts.element(1).is_none());
        let commits = r.member("commits").unwrap();
        assert!(commits.element(7).unwrap().member("id").unwrap().is_all());
        // A whole value read anywhere above absorbs the finer reads below it.
        r.add_field(&field("repository"));
        assert!(r.member("repository").unwrap().is_all());
        r.add(&[], Reads::All);
        assert!(r.is_all());
        assert!(r.member("anything").unwrap().is_all());
    }

    #[test]
    fn each_and_a_named_member_both_count() {
        let mut r = Reads::nothing();
        r.add(&[Step::Each, Step::Key("a".into())], Reads::All);
        r.add(&[Step::Key("x".into()), Step::Key("b".into())], Reads::All);
        let x = r.member("x").unwrap();
        assert!(x.member("a").unwrap().is_all());
        assert!(x.member("b").unwrap().is_all());
        let y = r.member("y").unwrap();
        assert!(y.member("a").is_some() && y.member("b").is_none());
    }
}
