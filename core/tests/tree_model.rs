//! Tree-level properties against a from-scratch model: the incrementally maintained tree equals
//! a fresh merge of the views after every step (d), a full view followed by changes equals the
//! final view (b), and dropping a node takes exactly its paths (c).

mod common;

use std::collections::BTreeMap;

use common::*;
use dftp_core::{Change, DfsPath, ListingOrder, Meta, NodeId, SortKey, Tree};
use proptest::collection::vec;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Upsert(usize, DfsPath, Meta),
    Remove(usize, DfsPath),
    ReplaceView(usize, Vec<(DfsPath, Meta)>),
    ReplaceSubtree(usize, DfsPath, Vec<(DfsPath, Meta)>),
    DropNode(usize),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let node = 0..NODES.len();
    prop_oneof![
        8 => (node.clone(), path_strategy(), meta_strategy()).prop_map(|(n, p, m)| Op::Upsert(n, p, m)),
        4 => (node.clone(), path_strategy()).prop_map(|(n, p)| Op::Remove(n, p)),
        2 => (node.clone(), vec((path_strategy(), meta_strategy()), 0..8)).prop_map(|(n, v)| Op::ReplaceView(n, v)),
        2 => (node.clone(), subtree_root_strategy(), vec((path_strategy(), meta_strategy()), 0..6))
            .prop_map(|(n, d, v)| Op::ReplaceSubtree(n, d, v)),
        1 => node.prop_map(Op::DropNode),
    ]
}

/// Interns the nodes in the given order, so that ids and names sort differently.
fn tree_with_nodes(order: &[usize]) -> (Tree, BTreeMap<usize, NodeId>) {
    let mut tree = Tree::new();
    let mut ids = BTreeMap::new();
    for &i in order {
        ids.insert(i, tree.intern(NODES[i]));
    }
    (tree, ids)
}

fn tree_canon(tree: &Tree) -> Vec<CanonEntry> {
    tree.find("")
        .map(|p| canon_entry(&tree.lookup(&p).unwrap_or_else(|| panic!("find yields {p:?}, lookup misses it"))))
        .collect()
}

/// Every check of the tree against the model, after any step.
fn check_against_model(tree: &Tree, ids: &BTreeMap<usize, NodeId>, model: &Model) -> Result<(), TestCaseError> {
    if let Err(e) = tree.check_invariants() {
        return Err(TestCaseError::fail(format!("invariants: {e}")));
    }
    let canon = model_canon(model);
    prop_assert_eq!(&tree_canon(tree), &canon);

    // `is_dir` says what `lookup` says; a listing's own order is the default `ListingOrder`,
    // and every order keeps the same entries, directories first.
    for p in tree.find("") {
        let p = &p;
        prop_assert_eq!(tree.is_dir(p), tree.lookup(p).unwrap().is_dir(), "{:?}", p);
        if let Some(list) = tree.list(p) {
            let mut sorted = list.clone();
            ListingOrder::default().sort(&mut sorted);
            prop_assert_eq!(&sorted, &list);
            for key in SortKey::ALL {
                for descending in [false, true] {
                    let mut sorted = list.clone();
                    ListingOrder { key, descending }.sort(&mut sorted);
                    let dirs = sorted.iter().take_while(|e| e.is_dir()).count();
                    prop_assert!(sorted[dirs..].iter().all(|e| !e.is_dir()));
                    let mut names: Vec<_> = sorted.iter().map(|e| e.path.clone()).collect();
                    names.sort();
                    let mut want: Vec<_> = list.iter().map(|e| e.path.clone()).collect();
                    want.sort();
                    prop_assert_eq!(names, want);
                }
            }
        }
    }
    prop_assert!(tree.is_dir(&DfsPath::root()));

    // Views and counts.
    let mut held = std::collections::BTreeSet::new();
    for (&i, &id) in ids {
        let view: Vec<(DfsPath, Meta)> = tree.view(id).map(|(p, m)| (p.clone(), m)).collect();
        let want: Vec<(DfsPath, Meta)> =
            model.get(NODES[i]).map(|v| v.iter().map(|(p, m)| (p.clone(), *m)).collect()).unwrap_or_default();
        prop_assert_eq!(tree.count_of(id), want.len());
        held.extend(want.iter().map(|(p, _)| p.clone()));
        prop_assert_eq!(view, want);
    }
    prop_assert_eq!(tree.len(), held.len());
    prop_assert_eq!(tree.is_empty(), held.is_empty());

    // Listings: the root, every path, and paths that do not exist.
    let root: Vec<CanonEntry> = tree.list(&DfsPath::root()).expect("the root lists").iter().map(canon_entry).collect();
    prop_assert_eq!(Some(root), model_list(&canon, ""));
    for seg_path in canon.iter().map(|e| e.0.clone()).chain(["c/c/c".to_string(), "b-1/a".to_string()]) {
        let listed = tree.list(&p(&seg_path)).map(|es| es.iter().map(canon_entry).collect::<Vec<_>>());
        prop_assert_eq!(listed, model_list(&canon, &seg_path), "list({:?})", seg_path);
    }

    // find(prefix) for prefixes on and off segment boundaries.
    let mut prefixes: Vec<String> = vec!["".into(), "a".into(), "a/".into(), "a.".into(), "b".into(), "b-1/".into()];
    prefixes.extend(canon.iter().flat_map(|e| [e.0.clone(), format!("{}/", e.0)]));
    for prefix in &prefixes {
        let found: Vec<String> = tree.find(prefix).map(|p| p.as_str().to_string()).collect();
        let want: Vec<String> = canon.iter().map(|e| e.0.clone()).filter(|s| s.starts_with(prefix.as_str())).collect();
        prop_assert_eq!(found, want, "find({:?})", prefix);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// (d) The incrementally maintained tree equals a from-scratch merge of the views, after
    /// every step of a random sequence of upserts, removals, view replacements and node drops;
    /// each operation's result says exactly what changed.
    #[test]
    fn incremental_tree_equals_fresh_merge(
        order in Just((0..NODES.len()).collect::<Vec<_>>()).prop_shuffle(),
        ops in vec(op_strategy(), 1..40),
    ) {
        let (mut tree, ids) = tree_with_nodes(&order);
        let mut model = Model::new();
        check_against_model(&tree, &ids, &model)?;
        for op in &ops {
            match op {
                Op::Upsert(n, path, meta) => {
                    let view = model.entry(NODES[*n].to_string()).or_default();
                    let expect_changed = view.get(path) != Some(meta);
                    view.insert(path.clone(), *meta);
                    prop_assert_eq!(tree.upsert(ids[n], path.clone(), *meta), expect_changed, "{:?}", op);
                }
                Op::Remove(n, path) => {
                    let view = model.entry(NODES[*n].to_string()).or_default();
                    let expect_changed = view.remove(path).is_some();
                    prop_assert_eq!(tree.remove(ids[n], path), expect_changed, "{:?}", op);
                }
                Op::ReplaceView(n, items) => {
                    let view = model.entry(NODES[*n].to_string()).or_default();
                    let new: BTreeMap<DfsPath, Meta> = items.iter().cloned().collect();
                    let mut expect: Vec<Change> = new
                        .iter()
                        .filter(|(p, m)| view.get(*p) != Some(*m))
                        .map(|(p, m)| Change::Upsert(p.clone(), *m))
                        .collect();
                    expect.extend(view.keys().filter(|p| !new.contains_key(*p)).map(|p| Change::Remove(p.clone())));
                    *view = new;
                    prop_assert_eq!(tree.replace_view(ids[n], items.clone()), expect, "{:?}", op);
                }
                Op::ReplaceSubtree(n, dir, items) => {
                    let view = model.entry(NODES[*n].to_string()).or_default();
                    let new: BTreeMap<DfsPath, Meta> = items.iter().filter(|(p, _)| p.is_within(dir)).cloned().collect();
                    let mut expect: Vec<Change> = view
                        .keys()
                        .filter(|p| p.is_within(dir) && !new.contains_key(*p))
                        .map(|p| Change::Remove(p.clone()))
                        .collect();
                    expect.extend(
                        new.iter().filter(|(p, m)| view.get(*p) != Some(*m)).map(|(p, m)| Change::Upsert(p.clone(), *m)),
                    );
                    view.retain(|p, _| !p.is_within(dir));
                    view.extend(new);
                    prop_assert_eq!(tree.replace_subtree(ids[n], dir, items.clone()), expect, "{:?}", op);
                }
                Op::DropNode(n) => {
                    let dropped = model.remove(NODES[*n]).map_or(0, |v| v.len());
                    prop_assert_eq!(tree.drop_node(ids[n]), dropped, "{:?}", op);
                }
            }
            check_against_model(&tree, &ids, &model)?;
        }
    }

    /// (b) At tree level: a full view followed by single changes equals replacing the view with
    /// the final state at once, next to other nodes' views.
    #[test]
    fn full_view_then_changes_equals_final_view(
        first in vec((path_strategy(), meta_strategy()), 0..8),
        changes in vec((path_strategy(), prop::option::of(meta_strategy())), 0..16),
        others in vec((1..NODES.len(), path_strategy(), meta_strategy()), 0..12),
    ) {
        let order: Vec<usize> = (0..NODES.len()).collect();
        let (mut a, ids) = tree_with_nodes(&order);
        let (mut b, _) = tree_with_nodes(&order);
        for (n, path, meta) in &others {
            a.upsert(ids[n], path.clone(), *meta);
            b.upsert(ids[n], path.clone(), *meta);
        }
        a.replace_view(ids[&0], first.clone());
        let mut state: BTreeMap<DfsPath, Meta> = first.iter().cloned().collect();
        for (path, meta) in &changes {
            match meta {
                Some(m) => {
                    a.upsert(ids[&0], path.clone(), *m);
                    state.insert(path.clone(), *m);
                }
                None => {
                    a.remove(ids[&0], path);
                    state.remove(path);
                }
            }
        }
        b.replace_view(ids[&0], state.into_iter().collect());
        prop_assert!(a.check_invariants().is_ok());
        prop_assert!(b.check_invariants().is_ok());
        prop_assert_eq!(tree_canon(&a), tree_canon(&b));
        let va: Vec<_> = a.view(ids[&0]).map(|(p, m)| (p.clone(), m)).collect();
        let vb: Vec<_> = b.view(ids[&0]).map(|(p, m)| (p.clone(), m)).collect();
        prop_assert_eq!(va, vb);
    }

    /// (c) At tree level: dropping a node removes exactly its paths; a path others hold too
    /// switches to the greatest (LastInfoUpdated, name) among them.
    #[test]
    fn drop_node_removes_exactly_its_paths(
        order in Just((0..NODES.len()).collect::<Vec<_>>()).prop_shuffle(),
        holdings in vec((0..NODES.len(), path_strategy(), meta_strategy()), 0..30),
        victim in 0..NODES.len(),
    ) {
        let (mut tree, ids) = tree_with_nodes(&order);
        let mut model = Model::new();
        for (n, path, meta) in &holdings {
            tree.upsert(ids[n], path.clone(), *meta);
            model.entry(NODES[*n].to_string()).or_default().insert(path.clone(), *meta);
        }
        let before = tree.clone();
        let victim_view = model.remove(NODES[victim]).unwrap_or_default();
        prop_assert_eq!(tree.drop_node(ids[&victim]), victim_view.len());
        prop_assert_eq!(tree.count_of(ids[&victim]), 0);
        prop_assert_eq!(tree.drop_node(ids[&victim]), 0, "a second drop has nothing to drop");
        check_against_model(&tree, &ids, &model)?;

        // Spelled out against the rule.
        for path in victim_view.keys() {
            let others: Vec<(i64, &str, Meta)> = model
                .iter()
                .filter_map(|(n, v)| v.get(path).map(|m| (m.info_updated, n.as_str(), *m)))
                .collect();
            let next = others.iter().max_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)));
            let e = tree.lookup(path);
            match next {
                Some((_, name, meta)) => {
                    let e = e.expect("a path another node holds stays");
                    prop_assert_eq!(e.meta, Some(*meta));
                    if e.kind == dftp_core::Kind::File {
                        prop_assert_eq!(e.owner.as_str(), *name);
                    }
                }
                None => prop_assert!(e.is_none_or(|e| e.meta.is_none()), "{:?} kept a record", path),
            }
        }
        // Paths the victim did not hold are untouched.
        for p in before.find("") {
            let p = &p;
            let held_by_victim = victim_view.contains_key(p.as_str());
            let was = before.lookup(p).and_then(|e| e.meta);
            if !held_by_victim {
                prop_assert_eq!(tree.lookup(p).and_then(|e| e.meta), was, "{:?}", p);
            }
        }
    }
}
