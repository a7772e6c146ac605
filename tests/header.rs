//! include/evloop.h cannot drift from the library: every function it
//! declares is exported by libevloop.so and every exported `evl_` symbol is
//! declared; every constant it defines has the value the Rust side uses
//! (the `const EVL_*` items in src/ffi, and the crate version). The header
//! is written by hand, for its docs; this test is what keeps it honest.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The header without its comments.
fn header() -> String {
    let text = std::fs::read_to_string(root().join("include/evloop.h")).unwrap();
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("*/").expect("unterminated comment") + start + 2;
        rest = &rest[end..];
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Identifiers `evl_*` directly followed by `(`, not as `(*evl_x)` typedefs.
fn declared_functions(h: &str) -> BTreeSet<String> {
    let bytes = h.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while let Some(pos) = h[i..].find("evl_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let before_ok =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let after = h[end..].trim_start();
        if before_ok && after.starts_with('(') && !h[..start].trim_end().ends_with("(*") {
            names.insert(h[start..end].to_string());
        }
        i = end;
    }
    names
}

/// `#define EVL_X n` and `EVL_X = n` (enums) in the header.
fn header_constants(h: &str) -> BTreeMap<String, i64> {
    let mut consts = BTreeMap::new();
    for line in h.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("#define ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(value)) = (parts.next(), parts.next()) {
                if let Ok(v) = value.parse() {
                    consts.insert(name.to_string(), v);
                }
            }
        }
    }
    // Enum members anywhere: NAME = number
    let flat = h.replace(['{', '}', ';', '\n'], ",");
    for item in flat.split(',') {
        if let Some((name, value)) = item.split_once('=') {
            let (name, value) = (name.trim(), value.trim());
            if name.starts_with("EVL_") && !name.contains(' ') {
                if let Ok(v) = value.parse() {
                    consts.insert(name.to_string(), v);
                }
            }
        }
    }
    consts
}

/// `const EVL_X: T = n;` in src/ffi.
fn rust_constants() -> BTreeMap<String, i64> {
    let mut consts = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("src/ffi")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            let line = line
                .trim()
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ");
            let Some(rest) = line.strip_prefix("const EVL_") else {
                continue;
            };
            let (name, rest) = rest.split_once(':').unwrap();
            let value = rest.split_once('=').unwrap().1.trim().trim_end_matches(';');
            consts.insert(
                format!("EVL_{name}"),
                value
                    .parse()
                    .unwrap_or_else(|_| panic!("EVL_{name} = {value}: use a literal")),
            );
        }
    }
    consts
}

/// The `evl_` functions libevloop.so exports.
fn exported_functions() -> BTreeSet<String> {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--quiet", "--lib"])
        .current_dir(root());
    if dir.ends_with("release") {
        cargo.arg("--release");
    }
    assert!(cargo.status().unwrap().success());
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(dir.join("libevloop.so"))
        .output()
        .expect("nm (binutils) runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_addr, kind, name) = (f.next()?, f.next()?, f.next()?);
            (kind == "T" && name.starts_with("evl_")).then(|| name.to_string())
        })
        .collect()
}

#[test]
fn every_declared_function_is_exported_and_every_export_declared() {
    let declared = declared_functions(&header());
    let exported = exported_functions();
    assert!(
        declared.len() > 40,
        "parsed {} declarations",
        declared.len()
    );
    let missing: Vec<_> = declared.difference(&exported).collect();
    let undeclared: Vec<_> = exported.difference(&declared).collect();
    assert!(
        missing.is_empty(),
        "declared in evloop.h, not exported: {missing:?}"
    );
    assert!(
        undeclared.is_empty(),
        "exported, not declared in evloop.h: {undeclared:?}"
    );
}

#[test]
fn every_header_constant_matches_the_library() {
    let header = header_constants(&header());
    let rust = rust_constants();
    let version = [
        ("EVL_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("EVL_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("EVL_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ];
    for (name, value) in version {
        assert_eq!(header.get(name), Some(&value.parse().unwrap()), "{name}");
    }
    for (name, value) in &header {
        if name.starts_with("EVL_VERSION_") {
            continue;
        }
        assert_eq!(
            rust.get(name),
            Some(value),
            "{name} in evloop.h has no equal `const {name}` in src/ffi"
        );
    }
    for name in rust.keys() {
        assert!(
            header.contains_key(name),
            "const {name} in src/ffi is not in evloop.h"
        );
    }
    assert!(header.len() >= 10, "{header:?}");
}
