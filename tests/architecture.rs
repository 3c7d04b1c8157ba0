//! The matcher is pure (DESIGN.md invariant 5): `src/pattern/` may use only `std` (no I/O,
//! threads or locks), `serde_json` and its own modules.

use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "tokio",
    "sqlx",
    "axum",
    "reqwest",
    "hyper",
    "tower",
    "std::fs",
    "std::net",
    "std::process",
    "std::env",
    "std::thread",
    "std::io",
    "Mutex",
    "RwLock",
    "crate::cli",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_pattern_module_does_no_io_and_uses_no_service_crates() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/pattern"),
        &mut files,
    );
    assert!(
        files.len() >= 10,
        "expected the pattern module's files, found {}",
        files.len()
    );
    let mut violations = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        // Only code counts: skip comment lines.
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for word in FORBIDDEN {
                if code.contains(word) {
                    violations.push(format!(
                        "{}:{}: uses {word}: {}",
                        file.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
            if code.starts_with("use ")
                && !(code.starts_with("use std::")
                    || code.starts_with("use serde_json")
                    || code.starts_with("use super::"))
            {
                violations.push(format!(
                    "{}:{}: imports outside std/serde_json/pattern: {}",
                    file.display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "the pattern module must stay pure:\n{}",
        violations.join("\n")
    );
}
