//! Events → the leaves that some pattern names, each with its path and array trail.
//!
//! A leaf's path is its object keys joined with `.`, arrays being transparent, so a key that
//! itself contains dots is the same as nesting (`{"a.b":1}` and `{"a":{"b":1}}` both give `a.b`).
//! The [`PathTrie`] therefore stores paths split at every dot, and the walkers split event keys
//! the same way. Subtrees that no pattern path runs through are skipped without being built.
//!
//! Every array met on the way gets a fresh id; a leaf's *trail* lists `(array id, element index)`
//! from the outermost array inwards, for the object and array elements it sits in. Two leaves
//! whose trails disagree on the element of one array came from different elements and may not
//! satisfy one sub-rule together. A plain value directly in an array (`1` in `[1, {"a": 2}]`) is
//! no such element: array consistency is about the fields of objects in arrays, so it combines
//! with leaves of any element (as event-ruler, which records membership only for object and
//! array elements, and EventBridge do).

use std::collections::HashMap;

use super::ast::Leaf;
use super::error::EventError;
use super::json::{Lexer, Scalar};

pub(crate) const NO_FIELD: u32 = u32::MAX;
const ROOT: u32 = 0;
/// Above this many children a node switches from a linear scan to a hash map.
const LINEAR_CHILDREN: usize = 8;

/// The leaf paths used by a rule set, as a trie over dot-separated segments.
#[derive(Debug, Clone)]
pub(crate) struct PathTrie {
    nodes: Vec<TrieNode>,
    fields: u32,
}

#[derive(Debug, Clone, Default)]
struct TrieNode {
    children: Vec<(Box<str>, u32)>,
    map: Option<HashMap<Box<str>, u32>>,
    field: u32,
}

impl PathTrie {
    pub(crate) fn new() -> Self {
        PathTrie {
            nodes: vec![TrieNode {
                field: NO_FIELD,
                ..TrieNode::default()
            }],
            fields: 0,
        }
    }

    /// The field id of a leaf path, assigned on first sight.
    pub(crate) fn field(&mut self, path: &str) -> u32 {
        let mut node = ROOT;
        for segment in path.split('.') {
            node = match self.child_segment(node, segment) {
                Some(child) => child,
                None => {
                    let id = self.nodes.len() as u32;
                    self.nodes.push(TrieNode {
                        field: NO_FIELD,
                        ..TrieNode::default()
                    });
                    let parent = &mut self.nodes[node as usize];
                    parent.children.push((segment.into(), id));
                    if parent.children.len() > LINEAR_CHILDREN {
                        parent.map = Some(parent.children.iter().cloned().collect());
                    }
                    id
                }
            };
        }
        let slot = &mut self.nodes[node as usize].field;
        if *slot == NO_FIELD {
            *slot = self.fields;
            self.fields += 1;
        }
        *slot
    }

    pub(crate) fn field_count(&self) -> usize {
        self.fields as usize
    }

    #[inline]
    fn child_segment(&self, node: u32, segment: &str) -> Option<u32> {
        let n = &self.nodes[node as usize];
        if let Some(map) = &n.map {
            return map.get(segment).copied();
        }
        n.children
            .iter()
            .find(|(k, _)| **k == *segment)
            .map(|&(_, id)| id)
    }

    /// The node reached from `node` by an event key (which may contain dots).
    #[inline]
    fn child(&self, node: u32, key: &str) -> Option<u32> {
        if !key.as_bytes().contains(&b'.') {
            return self.child_segment(node, key);
        }
        key.split('.')
            .try_fold(node, |n, segment| self.child_segment(n, segment))
    }

    #[inline]
    fn field_of(&self, node: u32) -> u32 {
        self.nodes[node as usize].field
    }

    #[inline]
    fn has_children(&self, node: u32) -> bool {
        !self.nodes[node as usize].children.is_empty()
    }
}

/// Receives the leaves of an event.
pub(crate) trait LeafSink {
    fn leaf(&mut self, field: u32, leaf: Leaf<'_>, trail: &[(u32, u32)]);
}

/// How much of the text the walk checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// All of it: any text may come in, and every syntax error is reported.
    Everything,
    /// Only the parts it reads: the text is known to be valid JSON (it was parsed before), so
    /// the subtrees no pattern names are passed over by their structure alone. On valid JSON
    /// both give one answer: the validating skip checks only syntax (not, for instance, that
    /// escaped surrogates pair up, which only reading a string does), and both enforce the depth
    /// limit.
    ReadParts,
}

/// Walks raw JSON text.
pub(crate) fn walk_text<S: LeafSink>(
    trie: &PathTrie,
    text: &str,
    check: Check,
    sink: &mut S,
) -> Result<(), EventError> {
    let mut lexer = Lexer::new(text);
    lexer.skip_ws();
    if lexer.peek() != Some(b'{') {
        // Tell "not JSON at all" from "JSON, but not an object".
        return Err(match super::json::Json::parse(text) {
            Err(e) => EventError::Syntax(e),
            Ok(_) => EventError::NotAnObject,
        });
    }
    let mut walker = TextWalker {
        trie,
        lexer,
        sink,
        trail: Vec::new(),
        arrays: 0,
        check,
    };
    walker.value(ROOT, 0)?;
    walker.lexer.end()?;
    Ok(())
}

struct TextWalker<'t, 'a, S> {
    trie: &'t PathTrie,
    lexer: Lexer<'a>,
    sink: &'t mut S,
    trail: Vec<(u32, u32)>,
    arrays: u32,
    check: Check,
}

impl<S: LeafSink> TextWalker<'_, '_, S> {
    fn value(&mut self, node: u32, depth: usize) -> Result<(), EventError> {
        if depth > super::json::MAX_DEPTH {
            return Err(self.lexer.too_deep().into());
        }
        let field = self.trie.field_of(node);
        match self.lexer.peek() {
            Some(b'{') => {
                self.lexer.expect_byte(b'{', "")?;
                let mut first = true;
                while let Some(key) = self.lexer.next_key(first)? {
                    first = false;
                    match self.trie.child(node, &key) {
                        Some(child) => self.value(child, depth + 1)?,
                        None if self.check == Check::ReadParts => {
                            self.lexer.skip_trusted(depth + 1)?
                        }
                        None => self.lexer.skip_value(depth + 1)?,
                    }
                }
            }
            Some(b'[') => {
                self.lexer.expect_byte(b'[', "")?;
                let id = self.arrays;
                self.arrays += 1;
                let mut index = 0;
                while self.lexer.next_element(index == 0)? {
                    // Only object and array elements are elements for array consistency.
                    let nested = matches!(self.lexer.peek(), Some(b'{' | b'['));
                    if nested {
                        self.trail.push((id, index));
                    }
                    self.value(node, depth + 1)?;
                    if nested {
                        self.trail.pop();
                    }
                    index += 1;
                }
            }
            Some(b'"') => {
                let s = self.lexer.string()?;
                if field != NO_FIELD {
                    self.sink.leaf(field, Leaf::Str(&s), &self.trail);
                }
            }
            Some(b'-' | b'0'..=b'9') => {
                let text = self.lexer.number()?;
                if field != NO_FIELD {
                    self.sink.leaf(field, Leaf::number(text), &self.trail);
                }
            }
            _ => {
                let scalar = self.lexer.literal()?;
                if field != NO_FIELD {
                    let leaf = match scalar {
                        Scalar::True => Leaf::True,
                        Scalar::False => Leaf::False,
                        Scalar::Null => Leaf::Null,
                    };
                    self.sink.leaf(field, leaf, &self.trail);
                }
            }
        }
        Ok(())
    }
}

/// Walks a `serde_json::Value` (numbers as serde_json prints them).
pub(crate) fn walk_value<S: LeafSink>(
    trie: &PathTrie,
    value: &serde_json::Value,
    sink: &mut S,
) -> Result<(), EventError> {
    if !value.is_object() {
        return Err(EventError::NotAnObject);
    }
    let mut walker = ValueWalker {
        trie,
        sink,
        trail: Vec::new(),
        arrays: 0,
    };
    walker.value(ROOT, value);
    Ok(())
}

struct ValueWalker<'t, S> {
    trie: &'t PathTrie,
    sink: &'t mut S,
    trail: Vec<(u32, u32)>,
    arrays: u32,
}

impl<S: LeafSink> ValueWalker<'_, S> {
    fn value(&mut self, node: u32, value: &serde_json::Value) {
        use serde_json::Value;
        let field = self.trie.field_of(node);
        match value {
            Value::Object(map) => {
                if self.trie.has_children(node) {
                    for (key, v) in map {
                        if let Some(child) = self.trie.child(node, key) {
                            self.value(child, v);
                        }
                    }
                }
            }
            Value::Array(items) => {
                let id = self.arrays;
                self.arrays += 1;
                for (index, item) in items.iter().enumerate() {
                    if item.is_object() || item.is_array() {
                        self.trail.push((id, index as u32));
                        self.value(node, item);
                        self.trail.pop();
                    } else {
                        self.value(node, item);
                    }
                }
            }
            _ if field == NO_FIELD => {}
            Value::String(s) => self.sink.leaf(field, Leaf::Str(s), &self.trail),
            Value::Number(n) => {
                let text = n.to_string();
                self.sink.leaf(field, Leaf::number(&text), &self.trail);
            }
            Value::Bool(true) => self.sink.leaf(field, Leaf::True, &self.trail),
            Value::Bool(false) => self.sink.leaf(field, Leaf::False, &self.trail),
            Value::Null => self.sink.leaf(field, Leaf::Null, &self.trail),
        }
    }
}
