//! The layering of docs/architecture.md, checked instead of kept by review: every top-level
//! module of the library is placed in a layer, imports only from its own layer or the ones
//! below, and no two modules import each other, directly or around a cycle. A new module
//! has to be placed here (and in the doc's table) before the test passes.
//!
//! The source is read as text: every `crate::name` path outside comments and outside the
//! `#[cfg(test)]` module at the end of a file counts as an import of `name`.
//!
//! The same reading checks that every record has one owner: nothing outside the store layer
//! (`src/store/`) names a sled type or opens a tree, each tree is asked for
//! (`TableId::...`) only by the module that owns it, channels hold no table or records, and
//! no record key is declared twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// docs/architecture.md, "Layers".
const LAYERS: &[(u8, &[&str])] = &[
    (0, &["gateway"]),
    (
        1,
        &[
            "reply",
            "words",
            "text",
            "approval_code",
            "redact",
            "retry",
            "origin",
            "shutdown",
            "unix",
            "systemd",
            "logging",
        ],
    ),
    (
        2,
        &[
            "store",
            "seal",
            "audit",
            "outbox",
            "auth",
            "config",
            "schedule",
            "ownership",
            "health",
        ],
    ),
    (3, &["egress", "providers", "sim"]),
    (4, &["context", "persona", "breach", "inbox"]),
    (5, &["policy", "commands"]),
    (6, &["gate", "workers", "assembly"]),
    (7, &["channels", "mcp"]),
    (8, &["cli"]),
];

fn layer_of(module: &str) -> Option<u8> {
    LAYERS
        .iter()
        .find(|(_, names)| names.contains(&module))
        .map(|(layer, _)| *layer)
}

/// The code of a file without comments and without its trailing test module.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    without_comments(text)
}

/// The text of a file without its comments (a test module kept).
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every top-level module and the top-level modules it names with `crate::`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("a dir entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).expect("under src");
            let first = rel
                .components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .unwrap_or_default();
            let module = first.trim_end_matches(".rs").to_string();
            if module == "lib" || module == "bin" {
                continue;
            }
            let code = code_of(&std::fs::read_to_string(&path).expect("read a source file"));
            let names = out.entry(module.clone()).or_default();
            for (at, _) in code.match_indices("crate::") {
                let name: String = code[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    names.insert(name);
                }
            }
        }
    }
    out
}

#[test]
fn every_module_is_placed_in_a_layer() {
    let unplaced: Vec<String> = imports()
        .into_keys()
        .filter(|m| layer_of(m).is_none())
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules with no layer (place them in tests/layers.rs and docs/architecture.md): {unplaced:?}"
    );
}

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every import that points to a higher layer, in words.
fn upward(graph: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for (module, names) in graph {
        let Some(own) = layer_of(module) else {
            continue;
        };
        for name in names {
            if let Some(theirs) = layer_of(name) {
                if theirs > own {
                    out.push(format!(
                        "{module} (layer {own}) imports {name} (layer {theirs})"
                    ));
                }
            }
        }
    }
    out
}

/// Every cycle a depth-first search meets, as `a -> b -> a`.
fn cycles(graph: &Graph) -> Vec<String> {
    // The path is on a stack: a name met again on the path closes a cycle.
    fn visit(
        module: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|m| m == module) {
            let mut cycle = path[at..].to_vec();
            cycle.push(module.to_string());
            found.push(cycle.join(" -> "));
            return;
        }
        if !done.insert(module.to_string()) {
            return;
        }
        path.push(module.to_string());
        for next in graph.get(module).into_iter().flatten() {
            visit(next, graph, path, done, found);
        }
        path.pop();
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, graph, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let up = upward(&imports());
    assert!(up.is_empty(), "imports that point up: {up:#?}");
}

#[test]
fn no_import_cycle_between_modules() {
    let found = cycles(&imports());
    assert!(found.is_empty(), "import cycles: {found:#?}");
}

/// The checks find what they are for, on a made-up graph: a cycle of three, an upward
/// import, and imports named only in comments or in a test module are not counted.
#[test]
fn the_checks_see_a_cycle_and_an_upward_import() {
    let graph: Graph = [
        ("store", vec!["reply"]),
        ("reply", vec!["text"]),
        ("text", vec!["store"]),
        ("providers", vec!["gate"]),
    ]
    .into_iter()
    .map(|(m, names)| (m.to_string(), names.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(cycles(&graph), vec!["reply -> text -> store -> reply"]);
    assert_eq!(
        upward(&graph),
        vec![
            "providers (layer 3) imports gate (layer 6)",
            "text (layer 1) imports store (layer 2)"
        ]
    );
    assert_eq!(
        code_of("use crate::store; // crate::gate\n#[cfg(test)]\nmod tests { use crate::cli; }"),
        "use crate::store; "
    );
}

/// Every source file under `src/`: its path there (with `/`) and its text.
fn sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("a dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(&src).expect("under src");
                let rel = rel.to_string_lossy().replace('\\', "/");
                let text = std::fs::read_to_string(&path).expect("read a source file");
                out.push((rel, text));
            }
        }
    }
    out.sort();
    out
}

/// The store layer: the only files that may name sled and open trees.
fn in_store_layer(rel: &str) -> bool {
    rel.starts_with("store/")
}

/// Every mention of sled outside the store layer, tests included: a `sled::` path, a
/// `use sled`, `open_tree`, a `TransactionalTree`.
fn sled_outside_the_store(files: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, text) in files {
        if in_store_layer(rel) {
            continue;
        }
        let code = without_comments(text);
        for word in ["sled::", "use sled", "open_tree", "TransactionalTree"] {
            if code.contains(word) {
                out.push(format!("src/{rel} names `{word}`"));
            }
        }
    }
    out
}

/// Who owns each tree: the one file that asks the store for it (the store layer itself
/// names them all where it opens them).
const TABLE_OWNERS: &[(&str, &str)] = &[
    ("Replay", "auth/replay.rs"),
    ("Audit", "audit.rs"),
    ("Approvals", "policy/approvals.rs"),
    ("Grants", "policy/grants.rs"),
    ("Contexts", "context.rs"),
    ("Intents", "context.rs"),
    ("Incidents", "breach/incidents.rs"),
    ("BreachSeen", "breach/incidents.rs"),
    ("Outbox", "outbox.rs"),
    ("SignalInbox", "store/signal.rs"),
    ("SignalSeen", "store/signal.rs"),
    ("SignalPrompts", "store/signal.rs"),
    ("Meta", "store/mod.rs"),
    ("Vault", "seal/vault.rs"),
    ("MailIndex", "inbox/index.rs"),
];

/// Every `TableId::X` named outside its owner (and outside `store/mod.rs`, which defines
/// them), test modules left out.
fn tables_asked_for_by_others(files: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, text) in files {
        if rel == "store/mod.rs" {
            continue;
        }
        let code = code_of(text);
        for (at, _) in code.match_indices("TableId::") {
            let name: String = code[at + "TableId::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            match TABLE_OWNERS.iter().find(|(table, _)| *table == name) {
                Some((_, owner)) if owner == rel => {}
                Some((_, owner)) => out.push(format!(
                    "src/{rel} asks for TableId::{name}, which src/{owner} owns"
                )),
                None => out.push(format!(
                    "src/{rel} names TableId::{name}, which has no owner in tests/layers.rs"
                )),
            }
        }
    }
    out
}

/// True when `code` names the identifier `ident` (not as part of a longer one).
fn names_ident(code: &str, ident: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    code.match_indices(ident).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + ident.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// Every channel file that holds a table or the records itself instead of asking the gate
/// or a repository's owner.
fn channels_opening_the_store(files: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, text) in files {
        if !rel.starts_with("channels/") {
            continue;
        }
        let code = without_comments(text);
        for ident in ["Table", "TableId", "Records", "records", "Store"] {
            if names_ident(&code, ident) {
                out.push(format!("src/{rel} names `{ident}`"));
            }
        }
    }
    out
}

/// The typed record keys declared in the source (`Key::new("...")`, `Family::new("...")`,
/// test modules left out): each as (name, whether it is a family's prefix, file).
fn record_keys(files: &[(String, String)]) -> Vec<(String, bool, String)> {
    let mut out = Vec::new();
    for (rel, text) in files {
        let code = code_of(text);
        for (opener, family) in [("Key::new(\"", false), ("Family::new(\"", true)] {
            for (at, _) in code.match_indices(opener) {
                let rest = &code[at + opener.len()..];
                let name: String = rest.chars().take_while(|c| *c != '"').collect();
                out.push((name, family, rel.clone()));
            }
        }
    }
    out
}

/// Keys declared twice, and keys that fall under another declaration's family prefix.
fn clashing_keys(keys: &[(String, bool, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, (name, _, file)) in keys.iter().enumerate() {
        for (other, _, other_file) in &keys[i + 1..] {
            if name == other {
                out.push(format!(
                    "`{name}` is declared in src/{file} and src/{other_file}"
                ));
            }
        }
        for (other, family, other_file) in keys {
            if *family && name != other && name.starts_with(other.as_str()) {
                out.push(format!(
                    "`{name}` (src/{file}) is under the family `{other}` of src/{other_file}"
                ));
            }
        }
    }
    out
}

#[test]
fn no_module_outside_the_store_layer_touches_a_sled_tree() {
    let found = sled_outside_the_store(&sources());
    assert!(found.is_empty(), "sled outside src/store/: {found:#?}");
}

#[test]
fn every_tree_is_asked_for_only_by_its_owner() {
    let found = tables_asked_for_by_others(&sources());
    assert!(found.is_empty(), "trees asked for by others: {found:#?}");
}

#[test]
fn channels_never_open_a_tree() {
    let found = channels_opening_the_store(&sources());
    assert!(
        found.is_empty(),
        "channels holding store handles: {found:#?}"
    );
}

#[test]
fn every_record_key_is_declared_once() {
    let keys = record_keys(&sources());
    let found = clashing_keys(&keys);
    assert!(found.is_empty(), "record keys that clash: {found:#?}");
}

/// The record keys are the ones older versions wrote (in their `meta` tree), so a store they
/// left reads the same: renaming one loses what it held. A new record is added here.
#[test]
fn record_keys_are_the_ones_older_stores_hold() {
    let mut found: Vec<(String, bool)> = record_keys(&sources())
        .into_iter()
        .map(|(name, family, _)| (name, family))
        .collect();
    found.sort();
    let mut known: Vec<(String, bool)> = [
        ("audit.anchor", false),
        ("audit.head", false),
        ("auth.fingerprint", false),
        ("breach.cards.cursor.", true),
        ("breach.hibp.breach.", true),
        ("breach.hibp.checked.", true),
        ("breach.imap.cursor", false),
        ("breach.sl.count.", true),
        ("mcp.request.", true),
        ("mcp.request_of.", true),
        ("network.isolation_epoch", false),
        ("policy.locked_down", false),
        ("schedule.", true),
        ("signal.expire_timer", false),
        ("signal.gateway", false),
        ("signal.health", false),
        ("signal.identity_blocked", false),
        ("signal.inactive_warned", false),
        ("signal.last_active", false),
        ("signal.outage", false),
        ("store.budget_alerted", false),
        ("store.high_water", false),
    ]
    .into_iter()
    .map(|(name, family)| (name.to_string(), family))
    .collect();
    known.sort();
    assert_eq!(found, known);
}

/// The ownership checks find what they are for, on made-up files.
#[test]
fn the_ownership_checks_see_a_stray_tree_and_a_clashing_key() {
    let files: Vec<(String, String)> = [
        ("store/mod.rs", "let t: sled::Tree = db.open_tree(TableId::Grants.name())?;"),
        ("gate/mod.rs", "// sled::Tree in a comment\nlet m = store.table(TableId::Meta);"),
        ("outbox.rs", "pub meta: sled::Tree,\nlet t = store.table(TableId::Outbox);"),
        ("channels/gateway.rs", "let r: Records = store.records(); // Table"),
        ("audit.rs", "const A: Key<Flag> = Key::new(\"a.b\");"),
        ("schedule.rs", "const F: Family<Time> = Family::new(\"a.\");\n#[cfg(test)]\nmod tests { const X: Key<Flag> = Key::new(\"a.b\"); }"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(
        sled_outside_the_store(&files),
        vec!["src/outbox.rs names `sled::`"]
    );
    assert_eq!(
        tables_asked_for_by_others(&files),
        vec!["src/gate/mod.rs asks for TableId::Meta, which src/store/mod.rs owns"]
    );
    assert_eq!(
        channels_opening_the_store(&files),
        vec![
            "src/channels/gateway.rs names `Records`",
            "src/channels/gateway.rs names `records`"
        ]
    );
    assert_eq!(
        clashing_keys(&record_keys(&files)),
        vec!["`a.b` (src/audit.rs) is under the family `a.` of src/schedule.rs"]
    );
}
