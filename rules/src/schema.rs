//! The catalogue of names a rule may use: fields, entities and lists.

use crate::value::Type;
use std::collections::{BTreeMap, BTreeSet};

/// Identifies a field of the caller's event model; passed back to
/// [`Facts::field`](crate::Facts::field) at evaluation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldId(pub u16);

/// Identifies an entity (such as `user` or `card`) usable in window
/// functions; passed back to [`Facts::window`](crate::Facts::window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityId(pub u8);

/// Catalogue of field names (with their types), entity names and list names
/// that rules may refer to. Built once by the caller.
///
/// ```
/// use sentinel_rules::{EntityId, FieldId, Schema, Type};
/// let schema = Schema::new()
///     .field("amount", Type::Number, FieldId(0))
///     .field("location.country", Type::Text, FieldId(1))
///     .entity("user", EntityId(0))
///     .list("high_risk_merchants");
/// assert_eq!(schema.field_names().count(), 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Schema {
    fields: BTreeMap<String, (Type, FieldId)>,
    entities: BTreeMap<String, EntityId>,
    lists: BTreeSet<String>,
    metadata: bool,
}

impl Schema {
    /// An empty catalogue.
    pub fn new() -> Self {
        Schema::default()
    }

    /// Adds (or replaces) a field. Names may contain dots, e.g. `user.avg_amount_30d`.
    pub fn field(mut self, name: &str, ty: Type, id: FieldId) -> Self {
        self.fields.insert(name.to_owned(), (ty, id));
        self
    }

    /// Adds (or replaces) an entity usable in window functions, e.g. `user`.
    pub fn entity(mut self, name: &str, id: EntityId) -> Self {
        self.entities.insert(name.to_owned(), id);
        self
    }

    /// Adds a list name (without the leading `@`).
    pub fn list(mut self, name: &str) -> Self {
        self.lists.insert(name.to_owned());
        self
    }

    /// Allows `metadata.<key>` (one name of letters, digits and `_`): a field of the event's
    /// free-form metadata, read at evaluation through [`Facts::metadata`](crate::Facts::metadata).
    /// Its type is the one its use asks for: a number beside a number or in arithmetic, text
    /// beside text or in a text test, a yes/no value as a condition. A value of another type,
    /// or no value, is missing, so the comparison is false.
    pub fn metadata(mut self) -> Self {
        self.metadata = true;
        self
    }

    /// All fields with their types, sorted by name.
    pub fn field_names(&self) -> impl Iterator<Item = (&str, Type)> {
        self.fields.iter().map(|(n, (t, _))| (n.as_str(), *t))
    }

    /// All entity names, sorted.
    pub fn entity_names(&self) -> impl Iterator<Item = &str> {
        self.entities.keys().map(String::as_str)
    }

    /// All list names (without `@`), sorted.
    pub fn list_names(&self) -> impl Iterator<Item = &str> {
        self.lists.iter().map(String::as_str)
    }

    pub(crate) fn lookup_field(&self, name: &str) -> Option<(Type, FieldId)> {
        self.fields.get(name).copied()
    }

    pub(crate) fn lookup_entity(&self, name: &str) -> Option<EntityId> {
        self.entities.get(name).copied()
    }

    pub(crate) fn has_metadata(&self) -> bool {
        self.metadata
    }

    pub(crate) fn has_list(&self, name: &str) -> bool {
        self.lists.contains(name)
    }
}

/// The candidate closest to `name` within edit distance 2, if any
/// (ties go to the alphabetically first candidate).
pub(crate) fn suggest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(&name.to_lowercase(), &c.to_lowercase());
        if d <= 2 && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_and_lookup() {
        let s = Schema::new()
            .field("b", Type::Text, FieldId(2))
            .field("a", Type::Number, FieldId(1))
            .entity("user", EntityId(3))
            .list("bad");
        let names: Vec<_> = s.field_names().collect();
        assert_eq!(names, vec![("a", Type::Number), ("b", Type::Text)]);
        assert_eq!(s.lookup_field("a"), Some((Type::Number, FieldId(1))));
        assert_eq!(s.lookup_field("c"), None);
        assert_eq!(s.lookup_entity("user"), Some(EntityId(3)));
        assert!(s.has_list("bad"));
        assert!(!s.has_list("@bad"));
        assert_eq!(s.entity_names().collect::<Vec<_>>(), vec!["user"]);
        assert_eq!(s.list_names().collect::<Vec<_>>(), vec!["bad"]);
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("amount", "amount"), 0);
        assert_eq!(edit_distance("amont", "amount"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("é", "e"), 1);
    }

    #[test]
    fn suggestions() {
        let c = ["amount", "account_age", "country"];
        assert_eq!(suggest("amonut", c.iter().copied()), Some("amount"));
        assert_eq!(suggest("Amount", c.iter().copied()), Some("amount"));
        assert_eq!(suggest("zzz", c.iter().copied()), None);
    }
}
