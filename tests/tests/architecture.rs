//! The dependency direction is the architecture: gateway → flight → planner → catalog, and
//! gateway → planner. No crate may depend on one to its left.

use std::path::Path;

/// Crates in dependency order: each may depend only on crates after it.
const LAYERS: [&str; 4] = ["gateway", "flight", "planner", "catalog"];

fn dependencies(krate: &str) -> Option<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("Cargo.toml");
    std::fs::read_to_string(manifest).ok()
}

#[test]
fn dependencies_point_one_way() {
    for (position, krate) in LAYERS.iter().enumerate() {
        let Some(manifest) = dependencies(krate) else {
            continue;
        };
        for upper in &LAYERS[..position] {
            let name = format!("tollgate-{upper}");
            assert!(
                !manifest.contains(&name) && !manifest.contains(&format!("../{upper}\"")),
                "{krate}/Cargo.toml depends on {upper}: dependencies must point gateway -> flight -> planner -> catalog"
            );
        }
    }
}

#[test]
fn the_planner_knows_no_wire_protocol_and_the_catalog_no_engine() {
    let planner = dependencies("planner").expect("planner/Cargo.toml");
    for protocol in ["pgwire", "arrow-flight", "tonic", "axum"] {
        assert!(
            !planner.contains(&format!("\n{protocol}")),
            "the planner depends on {protocol}"
        );
    }
    let catalog = dependencies("catalog").expect("catalog/Cargo.toml");
    assert!(
        !catalog.contains("datafusion"),
        "the catalog depends on the query engine"
    );
}

/// The workspace's crates with source code of their own.
const CRATES: [&str; 5] = ["catalog", "planner", "flight", "gateway", "tests"];

/// The planner's folders, each importing only folders after it.
const PLANNER_FOLDERS: [&str; 7] = [
    "service",
    "session",
    "metering",
    "grants",
    "sources",
    "resources",
    "pg_compat",
];

/// Longest a source file may be before its test module.
const MAX_LINES: usize = 600;

/// A crate's `src` directory.
fn source_dir(krate: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("src")
}

/// Every `.rs` file under `dir`, as paths relative to it with `/` separators.
fn rust_files(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).expect("read a source directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative = path.strip_prefix(dir).expect("under the directory");
                files.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    files.sort();
    files
}

/// The code lines of a file: comment lines left out.
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
}

/// The module paths the file `file` names after `crate::` or `super::`, each as its
/// segments from the crate's root.
fn module_paths(file: &str, text: &str) -> Vec<Vec<String>> {
    // The file's own module: `a/b.rs` is `a::b`, `a/mod.rs` is `a`, `lib.rs` the root.
    let mut module: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if matches!(
        module.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        module.pop();
    }
    let mut paths = Vec::new();
    for line in code_lines(text) {
        for (at, _) in line.match_indices("crate::") {
            paths.push(segments(&line[at + "crate::".len()..]));
        }
        let mut rest = line;
        while let Some(at) = rest.find("super::") {
            // `super::super::x`: count the levels from the first `super`.
            let preceded = rest[..at].ends_with("super::");
            let mut after = &rest[at..];
            let mut levels = 0;
            while let Some(stripped) = after.strip_prefix("super::") {
                levels += 1;
                after = stripped;
            }
            if !preceded && levels <= module.len() {
                let mut path = module[..module.len() - levels].to_vec();
                path.extend(segments(after));
                paths.push(path);
            }
            rest = after;
        }
    }
    paths.retain(|path| !path.is_empty());
    paths
}

/// The lowercase segments a path starts with (`a::b::Type` gives `a`, `b`).
fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .map(|part| {
            part.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .take_while(|segment| {
            segment
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase())
        })
        .collect()
}

/// The file of module `segments` in a crate whose files are `files`, for the longest
/// prefix of `segments` that is a module.
fn module_file(files: &[String], segments: &[String]) -> Option<String> {
    (1..=segments.len()).rev().find_map(|len| {
        let path = segments[..len].join("/");
        [format!("{path}.rs"), format!("{path}/mod.rs")]
            .into_iter()
            .find(|candidate| files.contains(candidate))
    })
}

#[test]
fn planner_folders_import_only_folders_below_them() {
    let dir = source_dir("planner");
    let mut upward = Vec::new();
    for file in rust_files(&dir) {
        let Some(folder) = PLANNER_FOLDERS
            .iter()
            .position(|folder| file.starts_with(&format!("{folder}/")))
        else {
            continue;
        };
        let text = std::fs::read_to_string(dir.join(&file)).expect("read a source file");
        for path in module_paths(&file, &text) {
            if let Some(target) = PLANNER_FOLDERS.iter().position(|f| *f == path[0])
                && target < folder
            {
                upward.push(format!("{file} uses crate::{}", path.join("::")));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "planner folders import only folders below them ({}):\n{}",
        PLANNER_FOLDERS.join(" → "),
        upward.join("\n")
    );
}

#[test]
fn no_crate_has_a_cycle_of_files_importing_each_other() {
    let mut cycles = Vec::new();
    for krate in CRATES {
        let dir = source_dir(krate);
        let files = rust_files(&dir);
        let edges: Vec<Vec<usize>> = files
            .iter()
            .map(|file| {
                let text = std::fs::read_to_string(dir.join(file)).expect("read a source file");
                let mut targets: Vec<usize> = module_paths(file, &text)
                    .iter()
                    .filter_map(|path| module_file(&files, path))
                    .filter_map(|target| files.iter().position(|f| *f == target))
                    .filter(|target| files[*target] != *file)
                    .collect();
                targets.sort_unstable();
                targets.dedup();
                targets
            })
            .collect();
        if let Some(cycle) = find_cycle(&edges) {
            let named: Vec<&str> = cycle.iter().map(|i| files[*i].as_str()).collect();
            cycles.push(format!("{krate}: {}", named.join(" → ")));
        }
    }
    assert!(
        cycles.is_empty(),
        "files that import each other:\n{}",
        cycles.join("\n")
    );
}

/// A cycle in the graph `edges`, as the nodes along it, if there is one.
fn find_cycle(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut marks = vec![Mark::New; edges.len()];
    for start in 0..edges.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // Depth-first with an explicit stack of (node, next edge to follow).
        let mut path = vec![(start, 0)];
        marks[start] = Mark::OnPath;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            if let Some(&target) = edges[node].get(*next) {
                *next += 1;
                match marks[target] {
                    Mark::New => {
                        marks[target] = Mark::OnPath;
                        path.push((target, 0));
                    }
                    Mark::OnPath => {
                        let from = path.iter().position(|(n, _)| *n == target)?;
                        let mut cycle: Vec<usize> = path[from..].iter().map(|(n, _)| *n).collect();
                        cycle.push(target);
                        return Some(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
                path.pop();
            }
        }
    }
    None
}

#[test]
fn every_source_file_is_named_in_its_crates_map() {
    let mut unnamed = Vec::new();
    for krate in CRATES {
        let readme = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(krate)
                .join("README.md"),
        )
        .expect("the crate's README");
        for file in rust_files(&source_dir(krate)) {
            if !readme.contains(&format!("`{file}`")) && !readme.contains(&format!("`src/{file}`"))
            {
                unnamed.push(format!("{krate}/src/{file}"));
            }
        }
    }
    assert!(
        unnamed.is_empty(),
        "files missing from their crate's README map:\n{}",
        unnamed.join("\n")
    );
}

#[test]
fn no_source_file_is_longer_than_600_lines_outside_its_tests() {
    let mut long = Vec::new();
    for krate in CRATES {
        let dir = source_dir(krate);
        for file in rust_files(&dir) {
            let text = std::fs::read_to_string(dir.join(&file)).expect("read a source file");
            let lines = text
                .lines()
                .take_while(|line| !line.trim_start().starts_with("#[cfg(test)]"))
                .count();
            if lines > MAX_LINES {
                long.push(format!("{krate}/src/{file}: {lines} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these files by job:\n{}",
        long.join("\n")
    );
}
