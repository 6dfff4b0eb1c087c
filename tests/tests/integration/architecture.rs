//! The library's top-level modules depend on each other one way only (README, "Architecture"):
//! read from the sources, every `crate::module` a module's non-test code names is an edge, and
//! the graph has no cycle. A cycle (the shell using the CLI that starts the shell, the live
//! source using the output that formats its statistics) is what this guards against.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use integration_tests::workspace_root;

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn library_modules_depend_on_each_other_one_way() {
    let src = workspace_root().join("tracer-user/src");
    let graph = module_graph(&src);
    for expected in [
        "analysis", "cli", "decode", "live", "offline", "output", "query", "shell",
    ] {
        assert!(
            graph.contains_key(expected),
            "module {expected} not read: {graph:?}"
        );
    }
    // The edges the architecture names, so that a parser that found nothing cannot pass.
    for (from, to) in [
        ("cli", "shell"),
        ("shell", "query"),
        ("live", "source"),
        ("query", "offline"),
    ] {
        assert!(
            graph[from].contains(to),
            "{from} -> {to} missing: {graph:?}"
        );
    }
    if let Some(cycle) = find_cycle(&graph) {
        panic!("module cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn a_cycle_is_found() {
    let graph: Graph = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
        .into_iter()
        .fold(Graph::new(), |mut graph, (from, to)| {
            graph.entry(from.into()).or_default().insert(to.into());
            graph
        });
    assert_eq!(
        find_cycle(&graph).map(|cycle| cycle.join(" -> ")),
        Some("a -> b -> c -> a".to_owned())
    );
}

#[test]
fn test_modules_are_left_out_but_not_what_follows_a_test_file_declaration() {
    let code = "#[cfg(test)]\nmod tests;\nuse crate::output;\n#[cfg(test)]\nmod tests {\n    use crate::shell;\n}\n";
    assert_eq!(
        crate_references(non_test_code(code)),
        BTreeSet::from(["output".to_owned()])
    );
}

#[test]
fn grouped_and_nested_imports_name_their_top_modules() {
    let code = "use crate::{\n    analysis::{Analyzer, summary::X},\n    live,\n    output::{json, table},\n};\n\
                fn f() { crate::query::run(); }\n// crate::shell in a comment\n";
    assert_eq!(
        crate_references(code),
        BTreeSet::from(["analysis", "live", "output", "query"].map(String::from))
    );
}

/// Top-level module → the top-level modules its non-test code names.
fn module_graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    for file in rust_files(src) {
        let relative = file.strip_prefix(src).expect("under src");
        let module = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|name| name.trim_end_matches(".rs").to_owned())
            .expect("a file name");
        if ["lib", "main"].contains(&module.as_str()) || is_test_file(relative) {
            continue;
        }
        let code = std::fs::read_to_string(&file).expect("reads");
        let references = crate_references(non_test_code(&code));
        let edges = graph.entry(module.clone()).or_default();
        edges.extend(references.into_iter().filter(|target| *target != module));
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)
        .expect("reads the directory")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// Test-only files: `tests.rs` modules and what lives beside them under a `tests` name.
fn is_test_file(relative: &Path) -> bool {
    relative
        .components()
        .any(|c| c.as_os_str() == "tests.rs" || c.as_os_str() == "tests")
}

/// The code before the file's inline `#[cfg(test)]` test module (by convention at the end;
/// a `mod tests;` declaration is a file of its own, left out by `is_test_file`).
fn non_test_code(code: &str) -> &str {
    code.find("#[cfg(test)]\nmod tests {")
        .or_else(|| code.find("#[cfg(test)]\npub(crate) mod tests {"))
        .map_or(code, |end| &code[..end])
}

/// The top-level modules `code` names as `crate::name`, alone or in `use crate::{...}` groups;
/// comments are not code.
fn crate_references(code: &str) -> BTreeSet<String> {
    let code: String = code
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            names.extend(top_level_names(group));
        } else {
            names.extend(identifier(rest));
        }
    }
    names
}

/// The first identifier of each item of a `{...}` group (its end included in `group`'s tail),
/// at the group's own depth.
fn top_level_names(group: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0;
    let mut expect_name = true;
    for (index, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => expect_name = true,
            c if depth == 0 && expect_name && (c.is_alphabetic() || c == '_') => {
                names.extend(identifier(&group[index..]));
                expect_name = false;
            }
            _ => {}
        }
    }
    names
}

fn identifier(text: &str) -> Option<String> {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    (end > 0 && text[..end].starts_with(|c: char| c.is_lowercase())).then(|| text[..end].into())
}

/// A cycle of `graph`, as the modules along it with the first repeated at the end.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}
