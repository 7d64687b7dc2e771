//! The layering of docs/architecture.md, checked instead of kept by review: every top-level
//! module of the library is placed in a layer, imports only from its own layer or the ones
//! below, and no two modules import each other, directly or around a cycle. A new module
//! has to be placed here (and in the doc's table) before the test passes.
//!
//! The source is read as text: every `crate::name` path outside comments and outside the
//! `#[cfg(test)]` module at the end of a file counts as an import of `name`.

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
            "audit",
            "outbox",
            "auth",
            "config",
            "schedule",
            "ownership",
        ],
    ),
    (3, &["providers"]),
    (4, &["context", "persona", "breach"]),
    (5, &["policy", "commands"]),
    (6, &["gate", "workers"]),
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
