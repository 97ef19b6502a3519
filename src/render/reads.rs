//! What a Handlebars template reads of the data it renders: every path it names,
//! resolved in the scope it is written in (`{{#each commits}}{{id}}` reads
//! `commits.*.id`), each read whole.
//!
//! Only what this walk understands is narrowed: `if`, `unless`, `each`, `with`, any
//! registered helper given paths (it reads each whole: `lookup`, `json`, `len`), `this`,
//! `@root`, block parameters and `@index`-style locals. A partial, a decorator, `../`,
//! any other block helper or an unknown helper makes the whole payload read
//! ([`Reads::All`]), which is what every template read before.

use handlebars::template::{BlockParam, HelperTemplate, Parameter, Template, TemplateElement};
use handlebars::{Path, PathSeg};

use crate::reads::{Reads, Step};

/// Adds what the template `t` reads of the data it is given (rendered by a registry
/// with `helpers::register_helpers`, as all of ours are).
pub fn template_reads(t: &Template, out: &mut Reads) {
    if out.is_all() {
        return;
    }
    let mut helpers: Vec<&'static str> = super::helpers::BUILTIN.to_vec();
    helpers.extend(super::helpers::ours().into_iter().map(|(n, _)| n));
    let mut walk = Walk {
        helpers,
        reads: Reads::nothing(),
    };
    let root = Scope {
        here: Vec::new(),
        params: Vec::new(),
    };
    match walk.template(t, &root) {
        Ok(()) => out.merge(walk.reads),
        Err(Opaque) => *out = Reads::All,
    }
}

impl super::Templates {
    /// Adds what the template `name` (a text template, or every part of a card) reads
    /// of an event's data; for a name not registered, nothing (it renders the fallback,
    /// which `ingest` builds from the whole payload).
    pub fn reads(&self, name: &str, out: &mut Reads) {
        let part = format!("{name}#");
        for reg in [&self.hbs, &self.plain] {
            for (n, t) in reg.get_templates() {
                if n == name || n.starts_with(&part) {
                    template_reads(t, out);
                }
            }
        }
    }
}

/// A construct the walk does not narrow.
struct Opaque;

struct Walk {
    /// The helpers every registry of ours has: handlebars' own and `helpers::ours`.
    helpers: Vec<&'static str>,
    reads: Reads,
}

/// Where relative paths start, and the block parameters in scope (`as |c|`): each a
/// name and the path it stands for (None: a local, `@index` or `@key`).
#[derive(Clone)]
struct Scope {
    here: Vec<Step>,
    params: Vec<(String, Option<Vec<Step>>)>,
}

impl Walk {
    fn template(&mut self, t: &Template, scope: &Scope) -> Result<(), Opaque> {
        t.elements.iter().try_for_each(|e| self.element(e, scope))
    }

    fn element(&mut self, e: &TemplateElement, scope: &Scope) -> Result<(), Opaque> {
        match e {
            TemplateElement::RawString(_) | TemplateElement::Comment(_) => Ok(()),
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                self.expression(h, scope)
            }
            TemplateElement::HelperBlock(h) => self.block(h, scope),
            _ => Err(Opaque),
        }
    }

    /// `{{name}}` (a helper without arguments, or a value) or `{{helper args…}}`.
    fn expression(&mut self, h: &HelperTemplate, scope: &Scope) -> Result<(), Opaque> {
        if h.block || h.template.is_some() || h.inverse.is_some() {
            return Err(Opaque);
        }
        if h.params.is_empty() && h.hash.is_empty() {
            // A helper's name, or a value: read it as a value either way (reading a
            // name that is a helper's reads nothing the payload does not have).
            return match &h.name {
                Parameter::Path(p) => self.path(p, scope),
                Parameter::Name(n) if self.helpers.contains(&n.as_str()) => Ok(()),
                _ => Err(Opaque),
            };
        }
        let name = name_of(&h.name)?;
        if let ("len", [Parameter::Path(p)], true) = (name, h.params.as_slice(), h.hash.is_empty())
        {
            // A count: every member is kept (an object's keys, an array's length).
            if let Some(mut steps) = self.resolve(p, scope)? {
                steps.push(Step::Each);
                self.reads.add(&steps, Reads::nothing());
            }
            return Ok(());
        }
        if !self.helpers.contains(&name) {
            return Err(Opaque);
        }
        self.arguments(h, scope)
    }

    fn arguments(&mut self, h: &HelperTemplate, scope: &Scope) -> Result<(), Opaque> {
        h.params
            .iter()
            .chain(h.hash.values())
            .try_for_each(|p| self.parameter(p, scope))
    }

    fn block(&mut self, h: &HelperTemplate, scope: &Scope) -> Result<(), Opaque> {
        let name = name_of(&h.name)?;
        match name {
            "if" | "unless" => {
                if h.block_param.is_some() {
                    return Err(Opaque);
                }
                // Of a value, whether it is truthy: a scalar whole, whether an object or
                // an array is empty (`Reads::truth`).
                for p in h.params.iter().chain(h.hash.values()) {
                    match p {
                        Parameter::Path(p) => {
                            if let Some(steps) = self.resolve(p, scope)? {
                                self.reads.add(&steps, Reads::truth());
                            }
                        }
                        p => self.parameter(p, scope)?,
                    }
                }
                self.inner(h, scope, scope)
            }
            "each" | "with" => {
                let [Parameter::Path(p)] = h.params.as_slice() else {
                    return Err(Opaque);
                };
                if !h.hash.is_empty() {
                    return Err(Opaque);
                }
                let Some(at) = self.resolve(p, scope)? else {
                    return Err(Opaque);
                };
                let mut here = at.clone();
                if name == "each" {
                    // Every member is kept (the count, the keys, `{{else}}` when empty);
                    // of each member, what the body reads.
                    here.push(Step::Each);
                    self.reads.add(&here, Reads::nothing());
                } else {
                    // `with` renders `{{else}}` on an empty value: the value is read whole.
                    self.reads.add(&at, Reads::All);
                }
                let mut inner = Scope {
                    here: here.clone(),
                    params: scope.params.clone(),
                };
                match &h.block_param {
                    None => {}
                    Some(BlockParam::Single(Parameter::Name(v))) => {
                        inner.params.push((v.clone(), Some(here)));
                    }
                    Some(BlockParam::Pair((Parameter::Name(v), Parameter::Name(k))))
                        if name == "each" =>
                    {
                        inner.params.push((v.clone(), Some(here)));
                        inner.params.push((k.clone(), None));
                    }
                    Some(_) => return Err(Opaque),
                }
                self.inner(h, &inner, scope)
            }
            _ => Err(Opaque),
        }
    }

    /// The block's body in `body`, its `{{else}}` (and `else if` chain) in `outer`.
    fn inner(&mut self, h: &HelperTemplate, body: &Scope, outer: &Scope) -> Result<(), Opaque> {
        if let Some(t) = &h.template {
            self.template(t, body)?;
        }
        if let Some(t) = &h.inverse {
            self.template(t, outer)?;
        }
        Ok(())
    }

    fn parameter(&mut self, p: &Parameter, scope: &Scope) -> Result<(), Opaque> {
        match p {
            Parameter::Literal(_) => Ok(()),
            Parameter::Path(p) => self.path(p, scope),
            Parameter::Subexpression(s) => match s.as_element() {
                TemplateElement::Expression(h) => self.expression(h, scope),
                _ => Err(Opaque),
            },
            _ => Err(Opaque),
        }
    }

    /// A value read whole.
    fn path(&mut self, p: &Path, scope: &Scope) -> Result<(), Opaque> {
        if let Some(steps) = self.resolve(p, scope)? {
            self.reads.add(&steps, Reads::All);
        }
        Ok(())
    }

    /// The payload path `p` names in `scope`; None: a local (`@index`), no payload.
    fn resolve(&self, p: &Path, scope: &Scope) -> Result<Option<Vec<Step>>, Opaque> {
        let segs = match p {
            Path::Local(_) => return Ok(None),
            Path::Relative((segs, _)) => segs,
        };
        let mut at = scope.here.clone();
        let mut rest = segs.as_slice();
        match rest.first() {
            Some(PathSeg::Named(first)) => {
                if let Some((_, bound)) = scope.params.iter().rev().find(|(n, _)| n == first) {
                    match bound {
                        Some(steps) => at = steps.clone(),
                        None => return Ok(None),
                    }
                    rest = &rest[1..];
                }
            }
            Some(seg) if is_root(seg) => {
                at.clear();
                rest = &rest[1..];
            }
            _ => {}
        }
        for seg in rest {
            match seg {
                PathSeg::Named(n) => at.push(Step::Key(n.clone())),
                _ => return Err(Opaque),
            }
        }
        Ok(Some(at))
    }
}

fn name_of(p: &Parameter) -> Result<&str, Opaque> {
    match p {
        Parameter::Name(n) => Ok(n),
        Parameter::Path(Path::Relative((_, raw))) => Ok(raw),
        _ => Err(Opaque),
    }
}

/// `@root`. handlebars keeps its grammar's rules private; a `Ruled` segment is `@root`,
/// `..` or a local's `@`, told apart by their debug names (pinned by a test below).
fn is_root(seg: &PathSeg) -> bool {
    matches!(seg, PathSeg::Ruled(_)) && format!("{seg:?}") == "Ruled(path_root)"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(src: &str) -> Reads {
        let t = Template::compile(src).unwrap();
        let mut out = Reads::nothing();
        template_reads(&t, &mut out);
        out
    }

    fn path(r: &Reads, p: &str) -> Option<Reads> {
        let mut cur = r.clone();
        for k in p.split('.').filter(|k| !k.is_empty()) {
            cur = match k {
                "*" => cur.element(usize::MAX / 2)?.into_owned(),
                k => cur.member(k)?.into_owned(),
            };
        }
        Some(cur)
    }

    #[test]
    fn values_helpers_and_blocks_read_the_paths_they_name_in_their_scope() {
        let r = reads(
            "{{pusher.name}} {{ref_name ref}} {{#if forced}}!{{else}}{{created}}{{/if}}\
             {{#each commits}}{{short_sha id}} {{author.name}} {{@index}}{{/each}}\
             {{#each labels as |v k|}}{{k}}={{v}}{{/each}}{{lookup workflow_run \"x\"}}\
             {{status_emoji (lookup check \"conclusion\")}}{{@root.repository.full_name}}\
             {{#with sender}}{{login}}{{/with}}",
        );
        for whole in [
            "pusher.name",
            "ref",
            "created",
            "commits.*.id",
            "commits.*.author.name",
            "labels.*",
            "workflow_run",
            "check",
            "repository.full_name",
            "sender",
        ] {
            assert!(path(&r, whole).is_some_and(|r| r.is_all()), "{whole}");
        }
        assert!(!r.is_all());
        for unread in [
            "pusher.email",
            "commits.*.message",
            "repository.html_url",
            "after",
        ] {
            assert!(path(&r, unread).is_none(), "{unread}");
        }
        // `if` reads whether a value is truthy: an object's emptiness, not its members.
        assert!(path(&r, "forced").is_some_and(|r| r.keeps_nonempty() && !r.is_all()));
        let r = reads("{{#if repo}}{{repo.name}}{{/if}}{{#unless (len xs)}}none{{/unless}}");
        assert!(path(&r, "repo").is_some_and(|r| r.keeps_nonempty()));
        assert!(path(&r, "repo.name").is_some_and(|r| r.is_all()));
        assert!(path(&r, "repo.url").is_none());
        assert!(path(&r, "xs.*").is_some_and(|r| !r.is_all()));
        assert!(path(&r, "xs.*.a").is_none());
        // `each` keeps every member, even when the body reads nothing of them.
        assert!(path(&reads("{{#each xs}}.{{/each}}"), "xs.*").is_some());
    }

    #[test]
    fn what_the_walk_does_not_narrow_reads_everything() {
        for src in [
            "{{> other}}",
            "{{#*inline \"p\"}}x{{/inline}}",
            "{{#each commits}}{{../ref}}{{/each}}",
            "{{#unknown_block x}}y{{/unknown_block}}",
            "{{unknown_helper x}}",
            "{{#each (lookup a b)}}{{/each}}",
            "{{json this}}",
            "{{this}}",
        ] {
            assert!(reads(src).is_all(), "{src}");
        }
        assert!(!reads("plain text").is_all());
    }

    #[test]
    fn root_is_told_apart_from_up_by_its_debug_name() {
        let Ok(Path::Relative((segs, _))) = Path::parse("@root.a") else {
            panic!("@root.a is a relative path");
        };
        assert!(is_root(&segs[0]));
        let Ok(Path::Relative((segs, _))) = Path::parse("../a") else {
            panic!("../a is a relative path");
        };
        assert!(!is_root(&segs[0]));
    }
}
