//! Matching one event against a [`RuleSet`].
//!
//! The event is walked once; each leaf at a path some pattern names is looked up in that path's
//! index, and every condition it satisfies is recorded as a *hit* with the leaf's array trail.
//! A sub-rule whose every condition was hit is a candidate; when some hit came from inside an
//! array, the sub-rule matches only if one hit per condition can be chosen from a single element
//! of every array involved (event-ruler's array consistency), which [`consistent`] decides exactly.
//!
//! Scratch state is stamped with a generation number instead of being cleared, so the cost of an
//! event is proportional to what it touches, not to the size of the rule set.

use super::ast::Leaf;
use super::compile::{GROUP, NO_GROUP, RuleSet};
use super::error::EventError;
use super::flatten::{self, Check, LeafSink};
use super::number;

/// A reusable matching context for one rule set. Create one per thread and call it for many events.
pub struct Matcher<'r, R> {
    set: &'r RuleSet<R>,
    scratch: Scratch,
}

#[derive(Default)]
struct Scratch {
    generation: u32,
    condition_stamp: Vec<u32>,
    /// Head of the linked list of hits per condition (valid when stamped).
    condition_head: Vec<u32>,
    subrule_stamp: Vec<u32>,
    subrule_hits: Vec<u32>,
    /// Whether any hit of the sub-rule came from inside an array.
    subrule_in_array: Vec<bool>,
    rule_stamp: Vec<u32>,
    field_stamp: Vec<u32>,
    /// Per group of shared conditions: hit this generation, the head of its hits, and whether
    /// one came from inside an array.
    group_stamp: Vec<u32>,
    group_head: Vec<u32>,
    group_in_array: Vec<bool>,
    touched: Vec<u32>,
    hits: Vec<Hit>,
    trails: Vec<(u32, u32)>,
    lower: Vec<u8>,
    matched: Vec<u32>,
}

#[derive(Clone, Copy)]
struct Hit {
    next: u32,
    trail_start: u32,
    trail_len: u32,
}

const END: u32 = u32::MAX;

/// The most conditions one sub-rule may have: [`consistent`] tracks them as bits of a `u64`.
pub(crate) const MAX_CONDITIONS_PER_SUBRULE: usize = u64::BITS as usize;

impl<R> RuleSet<R> {
    pub fn matcher(&self) -> Matcher<'_, R> {
        Matcher {
            set: self,
            scratch: Scratch::default(),
        }
    }

    /// Matches JSON text (one-off convenience; reuse a [`Matcher`] for many events).
    pub fn matches_json(&self, event: &[u8]) -> Result<Vec<&R>, EventError> {
        self.matcher()
            .matches_json(event)
            .map(|ids| ids.iter().map(|&i| &self.rules[i as usize]).collect())
    }

    /// Matches a `serde_json::Value`.
    pub fn matches_value(&self, event: &serde_json::Value) -> Result<Vec<&R>, EventError> {
        self.matcher()
            .matches_value(event)
            .map(|ids| ids.iter().map(|&i| &self.rules[i as usize]).collect())
    }
}

impl<'r, R> Matcher<'r, R> {
    /// The indices (into [`RuleSet::rules`]) of the rules that match, in no particular order.
    pub fn matches_json(&mut self, event: &[u8]) -> Result<&[u32], EventError> {
        let text = std::str::from_utf8(event).map_err(|_| EventError::NotUtf8)?;
        self.matches_str(text)
    }

    /// Matches JSON text from anywhere: every syntax error in it is reported.
    pub fn matches_str(&mut self, event: &str) -> Result<&[u32], EventError> {
        self.walk_text(event, Check::Everything)
    }

    /// Matches text already known to be valid JSON (a JSON reader accepted it, or it was
    /// written from parts one did): the parts of the event that no pattern names are passed over
    /// by their brackets and quotes alone, without checking them again. The parts it reads are
    /// still checked, and so is the depth limit, so on valid JSON the answer, error or not, is
    /// the one of [`Matcher::matches_str`]. On text that is not valid JSON the answer is
    /// unspecified (never a panic): use `matches_str` for text from outside.
    pub fn matches_validated(&mut self, event: &str) -> Result<&[u32], EventError> {
        self.walk_text(event, Check::ReadParts)
    }

    fn walk_text(&mut self, event: &str, check: Check) -> Result<&[u32], EventError> {
        self.begin();
        let set = self.set;
        flatten::walk_text(
            &set.trie,
            event,
            check,
            &mut Sink {
                set,
                s: &mut self.scratch,
            },
        )?;
        Ok(self.finish())
    }

    pub fn matches_value(&mut self, event: &serde_json::Value) -> Result<&[u32], EventError> {
        self.begin();
        let set = self.set;
        flatten::walk_value(
            &set.trie,
            event,
            &mut Sink {
                set,
                s: &mut self.scratch,
            },
        )?;
        Ok(self.finish())
    }

    /// The rule id of an index returned by a match.
    pub fn rule(&self, index: u32) -> &'r R {
        &self.set.rules[index as usize]
    }

    fn begin(&mut self) {
        let s = &mut self.scratch;
        let set = self.set;
        if s.condition_stamp.len() != set.condition_subrule.len() {
            s.condition_stamp = vec![0; set.condition_subrule.len()];
            s.condition_head = vec![END; set.condition_subrule.len()];
            s.subrule_stamp = vec![0; set.subrules.len()];
            s.subrule_hits = vec![0; set.subrules.len()];
            s.subrule_in_array = vec![false; set.subrules.len()];
            s.rule_stamp = vec![0; set.rules.len()];
            s.field_stamp = vec![0; set.fields.len()];
            s.group_stamp = vec![0; set.groups as usize];
            s.group_head = vec![END; set.groups as usize];
            s.group_in_array = vec![false; set.groups as usize];
            s.generation = 0;
        }
        if s.generation == u32::MAX {
            for stamps in [
                &mut s.condition_stamp,
                &mut s.subrule_stamp,
                &mut s.rule_stamp,
                &mut s.field_stamp,
                &mut s.group_stamp,
            ] {
                stamps.iter_mut().for_each(|x| *x = 0);
            }
            s.generation = 0;
        }
        s.generation += 1;
        s.touched.clear();
        s.hits.clear();
        s.trails.clear();
        s.matched.clear();
    }

    fn finish(&mut self) -> &[u32] {
        let set = self.set;
        let s = &mut self.scratch;
        let generation = s.generation;
        for &(field, condition) in &set.absent {
            if s.field_stamp[field as usize] != generation {
                s.hit(set, condition, &[]);
            }
        }
        for i in 0..s.touched.len() {
            let subrule = s.touched[i] as usize;
            let info = set.subrules[subrule];
            if s.rule_stamp[info.rule as usize] == generation {
                continue;
            }
            let mut hits = s.subrule_hits[subrule];
            let mut in_array = s.subrule_in_array[subrule];
            if set.groups > 0 {
                // Its grouped conditions count when their group was hit.
                let conditions = info.first_condition..info.first_condition + info.conditions;
                for group in conditions.map(|c| set.condition_group[c as usize]) {
                    if group != NO_GROUP && s.group_stamp[group as usize] == generation {
                        hits += 1;
                        in_array |= s.group_in_array[group as usize];
                    }
                }
            }
            if hits != info.conditions {
                continue;
            }
            if in_array && !consistent(set, s, info.first_condition, info.conditions) {
                continue;
            }
            s.rule_stamp[info.rule as usize] = generation;
            s.matched.push(info.rule);
        }
        &s.matched
    }
}

impl Scratch {
    #[inline]
    fn hit<R>(&mut self, set: &RuleSet<R>, condition: u32, trail: &[(u32, u32)]) {
        if condition & GROUP != 0 {
            self.group_hit((condition & !GROUP) as usize, trail);
            return;
        }
        let c = condition as usize;
        let generation = self.generation;
        let trail_start = self.trails.len() as u32;
        self.trails.extend_from_slice(trail);
        let index = self.hits.len() as u32;
        let first = self.condition_stamp[c] != generation;
        let next = if first { END } else { self.condition_head[c] };
        self.hits.push(Hit {
            next,
            trail_start,
            trail_len: trail.len() as u32,
        });
        self.condition_head[c] = index;
        let subrule = set.condition_subrule[c] as usize;
        if self.subrule_stamp[subrule] != generation {
            self.subrule_stamp[subrule] = generation;
            self.subrule_hits[subrule] = 0;
            self.subrule_in_array[subrule] = false;
            self.touched.push(subrule as u32);
        }
        if first {
            self.condition_stamp[c] = generation;
            self.subrule_hits[subrule] += 1;
        }
        if !trail.is_empty() {
            self.subrule_in_array[subrule] = true;
        }
    }

    /// A group of shared conditions is hit: one hit for all of them, kept on the group.
    fn group_hit(&mut self, group: usize, trail: &[(u32, u32)]) {
        let trail_start = self.trails.len() as u32;
        self.trails.extend_from_slice(trail);
        let index = self.hits.len() as u32;
        let first = self.group_stamp[group] != self.generation;
        self.hits.push(Hit {
            next: if first { END } else { self.group_head[group] },
            trail_start,
            trail_len: trail.len() as u32,
        });
        self.group_head[group] = index;
        if first {
            self.group_stamp[group] = self.generation;
            self.group_in_array[group] = false;
        }
        if !trail.is_empty() {
            self.group_in_array[group] = true;
        }
    }
}

struct Sink<'a, R> {
    set: &'a RuleSet<R>,
    s: &'a mut Scratch,
}

impl<R> LeafSink for Sink<'_, R> {
    #[inline]
    fn leaf(&mut self, field: u32, leaf: Leaf<'_>, trail: &[(u32, u32)]) {
        let set = self.set;
        let s = &mut *self.s;
        s.field_stamp[field as usize] = s.generation;
        let index = &set.fields[field as usize];
        let hit_all =
            |s: &mut Scratch, ids: &[u32]| ids.iter().for_each(|&id| s.hit(set, id, trail));
        match leaf {
            Leaf::Str(v) => {
                if let Some(ids) = index.exact.get(v) {
                    hit_all(s, ids);
                }
                let bytes = v.as_bytes();
                index
                    .prefixes
                    .walk(bytes.iter().copied(), |id| s.hit(set, id, trail));
                index
                    .suffixes
                    .walk(bytes.iter().rev().copied(), |id| s.hit(set, id, trail));
                if index.needs_lowercase() {
                    let mut lower = std::mem::take(&mut s.lower);
                    lower.clear();
                    lower.extend(bytes.iter().map(u8::to_ascii_lowercase));
                    if let Some(ids) = index.ic_exact.get(lower.as_slice()) {
                        hit_all(s, ids);
                    }
                    index
                        .ic_prefixes
                        .walk(lower.iter().copied(), |id| s.hit(set, id, trail));
                    index
                        .ic_suffixes
                        .walk(lower.iter().rev().copied(), |id| s.hit(set, id, trail));
                    s.lower = lower;
                }
            }
            Leaf::Num(text, value) => {
                if let Some(v) = value {
                    if let Some(ids) = index.numbers.get(&number::key(v)) {
                        hit_all(s, ids);
                    }
                    for (range, id) in &index.ranges {
                        if range.contains(v) {
                            s.hit(set, *id, trail);
                        }
                    }
                }
                if !index.number_texts.is_empty()
                    && let Some(ids) = index.number_texts.get(text)
                {
                    hit_all(s, ids);
                }
            }
            Leaf::True => hit_all(s, &index.trues),
            Leaf::False => hit_all(s, &index.falses),
            Leaf::Null => hit_all(s, &index.nulls),
        }
        hit_all(s, &index.any);
        for (condition, id) in &index.general {
            if condition.matches_leaf(leaf) {
                s.hit(set, *id, trail);
            }
        }
    }
}

/// Whether one hit per condition `first..first+count` can be chosen so that no two chosen hits
/// come from different elements of the same array.
///
/// Trails form a tree (an array sits inside one element of its parent array), so this is decided
/// bottom-up over that tree: at each element, the sets of conditions that can be satisfied
/// together inside it; an array offers the union over its elements; sibling arrays and the
/// element's own leaves combine freely. Sets are bit masks, kept as antichains of maximal sets.
fn consistent<R>(set: &RuleSet<R>, s: &Scratch, first: u32, count: u32) -> bool {
    let full: u64 = if count as usize >= MAX_CONDITIONS_PER_SUBRULE {
        u64::MAX
    } else {
        (1u64 << count) - 1
    };
    let mut candidates: Vec<(u64, &[(u32, u32)])> = Vec::new();
    for local in 0..count {
        let c = (first + local) as usize;
        let mut h = match set.condition_group[c] {
            NO_GROUP => s.condition_head[c],
            group => s.group_head[group as usize],
        };
        while h != END {
            let hit = s.hits[h as usize];
            let trail =
                &s.trails[hit.trail_start as usize..(hit.trail_start + hit.trail_len) as usize];
            candidates.push((1u64 << local, trail));
            h = hit.next;
        }
    }
    // Leaves with identical trails are interchangeable: merge their masks.
    candidates.sort_unstable_by(|a, b| a.1.cmp(b.1));
    let mut merged: Vec<(u64, &[(u32, u32)])> = Vec::with_capacity(candidates.len());
    for (mask, trail) in candidates {
        match merged.last_mut() {
            Some(last) if last.1 == trail => last.0 |= mask,
            _ => merged.push((mask, trail)),
        }
    }
    let family = element_family(&merged, 0, full);
    family.iter().any(|&m| m & full == full)
}

/// The achievable condition sets for candidates that all share the trail prefix `..depth`
/// (sorted by trail, so shorter trails and equal array ids are contiguous).
fn element_family(candidates: &[(u64, &[(u32, u32)])], depth: usize, full: u64) -> Vec<u64> {
    let mut own = 0u64;
    let mut i = 0;
    while i < candidates.len() && candidates[i].1.len() == depth {
        own |= candidates[i].0;
        i += 1;
    }
    let mut family = vec![own];
    while i < candidates.len() {
        // One array directly under this element: candidates with the same array id at `depth`.
        let array = candidates[i].1[depth].0;
        let mut j = i;
        let mut offered: Vec<u64> = Vec::new();
        while j < candidates.len() && candidates[j].1[depth].0 == array {
            let element = candidates[j].1[depth].1;
            let mut k = j;
            while k < candidates.len() && candidates[k].1[depth] == (array, element) {
                k += 1;
            }
            offered.extend(element_family(&candidates[j..k], depth + 1, full));
            j = k;
        }
        family = combine(&family, &offered);
        if family.contains(&full) {
            return family;
        }
        i = j;
    }
    family
}

/// Every union of one set from `a` with one from `b`, reduced to the maximal ones.
fn combine(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::with_capacity(a.len() * b.len());
    for &x in a {
        for &y in b {
            out.push(x | y);
        }
    }
    out.sort_unstable_by(|x, y| y.count_ones().cmp(&x.count_ones()).then(y.cmp(x)));
    out.dedup();
    let mut maximal: Vec<u64> = Vec::with_capacity(out.len());
    for m in out {
        if !maximal.iter().any(|&k| k & m == m) {
            maximal.push(m);
        }
    }
    maximal
}
