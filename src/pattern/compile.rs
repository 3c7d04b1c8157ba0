//! Many `(rule id, pattern)` pairs → one immutable [`RuleSet`].
//!
//! Every condition list of every sub-rule gets a *condition id*. Each leaf path becomes a field
//! with an index from leaf values to condition ids: hash maps for exact strings, numbers and
//! ASCII case-insensitive strings, byte tries for prefixes and suffixes (reversed), and a short
//! list for what cannot be indexed (wildcards, ranges, CIDR, anything-but, non-ASCII case
//! folding). A leaf therefore costs a few lookups whatever the number of rules; only the
//! conditions it actually satisfies are touched. Conditions that one index entry satisfies for
//! many sub-rules at once (every rule naming the same `source`) are grouped and hit once; each
//! sub-rule keeps its most selective condition direct, and counts its grouped ones only when
//! that one was hit ([`RuleSet::group_shared_conditions`]).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::ast::{Condition, Pattern, Range};
use super::flatten::PathTrie;
use super::number;

/// FxHash (rustc's): a fast non-cryptographic hash for short keys. Rule sets are built from
/// operator input, not attacker-chosen keys at scale, and lookups dominate matching cost.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Condition ids satisfied by a key.
pub(crate) type Ids = Vec<u32>;

/// A byte trie whose nodes carry the condition ids of the prefixes ending there.
#[derive(Debug, Clone, Default)]
pub(crate) struct ByteTrie {
    nodes: Vec<(Vec<(u8, u32)>, Ids)>,
}

impl ByteTrie {
    fn insert(&mut self, bytes: impl Iterator<Item = u8>, id: u32) {
        if self.nodes.is_empty() {
            self.nodes.push(Default::default());
        }
        let mut node = 0usize;
        for b in bytes {
            node = match self.nodes[node].0.iter().find(|(k, _)| *k == b) {
                Some(&(_, next)) => next as usize,
                None => {
                    let next = self.nodes.len();
                    self.nodes.push(Default::default());
                    self.nodes[node].0.push((b, next as u32));
                    next
                }
            };
        }
        self.nodes[node].1.push(id);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Calls `hit` with the ids of every stored prefix of `bytes`.
    #[inline]
    pub(crate) fn walk(&self, bytes: impl Iterator<Item = u8>, mut hit: impl FnMut(u32)) {
        let Some(root) = self.nodes.first() else {
            return;
        };
        root.1.iter().for_each(|&id| hit(id));
        let mut node = root;
        for b in bytes {
            match node.0.iter().find(|(k, _)| *k == b) {
                Some(&(_, next)) => {
                    node = &self.nodes[next as usize];
                    node.1.iter().for_each(|&id| hit(id));
                }
                None => return,
            }
        }
    }
}

/// Everything one leaf path is tested against.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldIndex {
    pub(crate) exact: FxMap<Box<str>, Ids>,
    pub(crate) numbers: FxMap<u64, Ids>,
    /// Literal number texts that are not comparable: they match only the identical text.
    pub(crate) number_texts: FxMap<Box<str>, Ids>,
    pub(crate) trues: Ids,
    pub(crate) falses: Ids,
    pub(crate) nulls: Ids,
    /// `exists: true`: every leaf.
    pub(crate) any: Ids,
    pub(crate) prefixes: ByteTrie,
    pub(crate) suffixes: ByteTrie,
    /// ASCII case-insensitive forms, keyed by the lower-cased pattern.
    pub(crate) ic_exact: FxMap<Box<[u8]>, Ids>,
    pub(crate) ic_prefixes: ByteTrie,
    pub(crate) ic_suffixes: ByteTrie,
    pub(crate) ranges: Vec<(Range, u32)>,
    /// Conditions tested one by one.
    pub(crate) general: Vec<(Condition, u32)>,
}

impl FieldIndex {
    /// Calls `f` with every list of condition ids an index entry holds.
    fn for_each_entry(&self, mut f: impl FnMut(&Ids)) {
        self.exact.values().for_each(&mut f);
        self.numbers.values().for_each(&mut f);
        self.number_texts.values().for_each(&mut f);
        [&self.trues, &self.falses, &self.nulls, &self.any]
            .into_iter()
            .for_each(&mut f);
        self.ic_exact.values().for_each(&mut f);
        for trie in [
            &self.prefixes,
            &self.suffixes,
            &self.ic_prefixes,
            &self.ic_suffixes,
        ] {
            trie.nodes.iter().for_each(|(_, ids)| f(ids));
        }
    }

    /// [`FieldIndex::for_each_entry`], to change the lists.
    fn for_each_entry_mut(&mut self, mut f: impl FnMut(&mut Ids)) {
        self.exact.values_mut().for_each(&mut f);
        self.numbers.values_mut().for_each(&mut f);
        self.number_texts.values_mut().for_each(&mut f);
        [
            &mut self.trues,
            &mut self.falses,
            &mut self.nulls,
            &mut self.any,
        ]
        .into_iter()
        .for_each(&mut f);
        self.ic_exact.values_mut().for_each(&mut f);
        for trie in [
            &mut self.prefixes,
            &mut self.suffixes,
            &mut self.ic_prefixes,
            &mut self.ic_suffixes,
        ] {
            trie.nodes.iter_mut().for_each(|(_, ids)| f(ids));
        }
    }

    pub(crate) fn needs_lowercase(&self) -> bool {
        !(self.ic_exact.is_empty() && self.ic_prefixes.is_empty() && self.ic_suffixes.is_empty())
    }

    fn add(&mut self, condition: &Condition, id: u32) {
        match condition {
            Condition::Exact(s) => self.exact.entry(s.as_str().into()).or_default().push(id),
            Condition::Number { text, value } => match value {
                Some(v) => self.numbers.entry(number::key(*v)).or_default().push(id),
                None => self
                    .number_texts
                    .entry(text.as_str().into())
                    .or_default()
                    .push(id),
            },
            Condition::True => self.trues.push(id),
            Condition::False => self.falses.push(id),
            Condition::Null => self.nulls.push(id),
            Condition::Exists(true) => self.any.push(id),
            // Satisfied by absence; the rule set keeps these apart.
            Condition::Exists(false) => {}
            Condition::Prefix(p) => self.prefixes.insert(p.bytes(), id),
            Condition::Suffix(s) => self.suffixes.insert(s.bytes().rev(), id),
            Condition::EqualsIgnoreCase(c) if c.ascii_key().is_some() => {
                let key = c.ascii_key().unwrap_or_default();
                self.ic_exact.entry(key.into()).or_default().push(id);
            }
            Condition::PrefixIgnoreCase(c) if c.ascii_key().is_some() => {
                self.ic_prefixes
                    .insert(c.ascii_key().unwrap_or_default().iter().copied(), id);
            }
            Condition::SuffixIgnoreCase(c) if c.ascii_key().is_some() => {
                self.ic_suffixes
                    .insert(c.ascii_key().unwrap_or_default().iter().rev().copied(), id);
            }
            Condition::Numeric(range) => self.ranges.push((*range, id)),
            other => self.general.push((other.clone(), id)),
        }
    }
}

/// One `$or` combination of one rule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SubRuleInfo {
    pub(crate) rule: u32,
    pub(crate) first_condition: u32,
    pub(crate) conditions: u32,
}

/// An immutable, compiled set of patterns. Matching needs only `&self`, so one set can be
/// shared by many threads (each with its own [`super::Matcher`]).
#[derive(Debug, Clone)]
pub struct RuleSet<R> {
    pub(crate) rules: Vec<R>,
    pub(crate) subrules: Vec<SubRuleInfo>,
    /// For each condition id, its sub-rule.
    pub(crate) condition_subrule: Vec<u32>,
    pub(crate) trie: PathTrie,
    pub(crate) fields: Vec<FieldIndex>,
    /// `(field, condition id)` for every condition list that `exists: false` can satisfy.
    pub(crate) absent: Vec<(u32, u32)>,
    /// For each condition id, its group ([`NO_GROUP`] when it is hit directly).
    pub(crate) condition_group: Vec<u32>,
    /// How many groups the indexes hold (each as one id with [`GROUP`] set).
    pub(crate) groups: u32,
}

/// An id in an index with this bit set stands for a group: the conditions of many sub-rules
/// that one index entry satisfies together (see [`RuleSet::group_shared_conditions`]).
pub(crate) const GROUP: u32 = 1 << 31;
pub(crate) const NO_GROUP: u32 = u32::MAX;

impl<R> RuleSet<R> {
    /// Compiles rules; the same id may appear more than once (its patterns are OR-ed, each
    /// reported once per match as a separate entry).
    pub fn compile<'p>(rules: impl IntoIterator<Item = (R, &'p Pattern)>) -> RuleSet<R> {
        let mut set = RuleSet {
            rules: Vec::new(),
            subrules: Vec::new(),
            condition_subrule: Vec::new(),
            trie: PathTrie::new(),
            fields: Vec::new(),
            absent: Vec::new(),
            condition_group: Vec::new(),
            groups: 0,
        };
        for (id, pattern) in rules {
            let rule = set.rules.len() as u32;
            set.rules.push(id);
            for sub in &pattern.subrules {
                let subrule = set.subrules.len() as u32;
                set.subrules.push(SubRuleInfo {
                    rule,
                    first_condition: set.condition_subrule.len() as u32,
                    conditions: sub.fields.len() as u32,
                });
                for field in &sub.fields {
                    let condition_id = set.condition_subrule.len() as u32;
                    set.condition_subrule.push(subrule);
                    let field_id = set.trie.field(&field.path);
                    if set.fields.len() <= field_id as usize {
                        set.fields
                            .resize_with(field_id as usize + 1, FieldIndex::default);
                    }
                    for condition in &field.conditions {
                        if *condition == Condition::Exists(false) {
                            set.absent.push((field_id, condition_id));
                        }
                        set.fields[field_id as usize].add(condition, condition_id);
                    }
                }
            }
        }
        debug_assert_eq!(set.fields.len(), set.trie.field_count());
        set.group_shared_conditions();
        set
    }

    /// Conditions that many sub-rules share (every rule naming the same `source`, say) would be
    /// hit once per sub-rule by every event that has the value: 10,000 rules, 10,000 hits. Where
    /// an index entry satisfies several such conditions, they become one group, hit once; a
    /// sub-rule counts its grouped conditions only when one of its own (direct) conditions was
    /// hit. So every sub-rule keeps one condition direct: its *anchor*, the one in the smallest
    /// index entry (the most selective). Only a condition that sits in exactly one index entry
    /// (and is not an `exists: false`, which absence satisfies) can be grouped.
    fn group_shared_conditions(&mut self) {
        let conditions = self.condition_subrule.len();
        self.condition_group = vec![NO_GROUP; conditions];
        // Per condition: the index entries it is in, and the size of the last one.
        let mut entries = vec![0u32; conditions];
        let mut entry_size = vec![0u32; conditions];
        for field in &self.fields {
            field.for_each_entry(|ids| {
                for &id in ids.iter() {
                    entries[id as usize] += 1;
                    entry_size[id as usize] = ids.len() as u32;
                }
            });
            // Conditions tested one by one are never grouped.
            for &(_, id) in &field.ranges {
                entries[id as usize] += 2;
            }
            for &(_, id) in &field.general {
                entries[id as usize] += 2;
            }
        }
        for &(_, id) in &self.absent {
            entries[id as usize] += 2;
        }
        let groupable = |c: usize| entries[c] == 1 && entry_size[c] >= 2;
        let mut grouped = vec![false; conditions];
        for sub in &self.subrules {
            let range =
                sub.first_condition as usize..(sub.first_condition + sub.conditions) as usize;
            // The anchor: a condition that cannot be grouped, else the smallest entry's.
            let anchor = range
                .clone()
                .min_by_key(|&c| if groupable(c) { entry_size[c] } else { 0 });
            for c in range {
                grouped[c] = groupable(c) && Some(c) != anchor;
            }
        }
        if !grouped.contains(&true) {
            return;
        }
        let mut groups = 0u32;
        let condition_group = &mut self.condition_group;
        for field in &mut self.fields {
            field.for_each_entry_mut(|ids| {
                let shared = ids.iter().filter(|&&id| grouped[id as usize]).count();
                if shared < 2 {
                    return;
                }
                let group = groups;
                groups += 1;
                ids.retain(|&id| {
                    if grouped[id as usize] {
                        condition_group[id as usize] = group;
                        false
                    } else {
                        true
                    }
                });
                ids.push(group | GROUP);
            });
        }
        self.groups = groups;
    }

    /// The rule ids in compile order.
    pub fn rules(&self) -> &[R] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// A rough count of the heap bytes the compiled set holds (for the benchmarks' memory column).
    pub fn approx_heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let ids = |v: &Ids| v.capacity() * 4 + size_of::<Ids>();
        let map_str = |m: &FxMap<Box<str>, Ids>| {
            m.iter()
                .map(|(k, v)| k.len() + 16 + ids(v) + 8)
                .sum::<usize>()
        };
        let trie = |t: &ByteTrie| {
            t.nodes
                .iter()
                .map(|(c, v)| c.capacity() * 8 + ids(v) + 24)
                .sum::<usize>()
        };
        let fields: usize = self
            .fields
            .iter()
            .map(|f| {
                size_of::<FieldIndex>()
                    + map_str(&f.exact)
                    + map_str(&f.number_texts)
                    + f.numbers.values().map(|v| 8 + ids(v) + 8).sum::<usize>()
                    + f.ic_exact
                        .iter()
                        .map(|(k, v)| k.len() + 16 + ids(v) + 8)
                        .sum::<usize>()
                    + trie(&f.prefixes)
                    + trie(&f.suffixes)
                    + trie(&f.ic_prefixes)
                    + trie(&f.ic_suffixes)
                    + f.ranges.capacity() * size_of::<(Range, u32)>()
                    + f.general.capacity() * size_of::<(Condition, u32)>()
            })
            .sum();
        fields
            + self.rules.capacity() * size_of::<R>()
            + self.subrules.capacity() * size_of::<SubRuleInfo>()
            + self.condition_subrule.capacity() * 4
            + self.condition_group.capacity() * 4
            + self.absent.capacity() * 8
    }
}
