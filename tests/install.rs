//! scripts/install.sh installs a C library a C program can build against
//! with pkg-config alone (and with CMake's find_package where cmake exists):
//! header, static and shared library with soname, pkg-config file.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the library in this test's profile and installs it into a fresh
/// prefix; returns (prefix, libdir).
fn install() -> (PathBuf, PathBuf) {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let target_dir = profile_dir.parent().unwrap();
    let release = profile_dir.ends_with("release");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--quiet", "--lib"])
        .current_dir(root());
    if release {
        cargo.arg("--release");
    }
    assert!(cargo.status().unwrap().success());
    let prefix = target_dir.join(format!("install-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&prefix);
    let status = Command::new("bash")
        .arg(root().join("scripts/install.sh"))
        .args([
            "--prefix",
            prefix.to_str().unwrap(),
            "--no-build",
            "--profile",
        ])
        .arg(if release { "release" } else { "debug" })
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .unwrap();
    assert!(status.success(), "install.sh failed");
    let libdir = prefix.join("lib");
    (prefix, libdir)
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn an_installed_evloop_builds_a_c_program_with_pkg_config_alone() {
    let (prefix, libdir) = install();
    // What was installed: header, static lib, versioned shared lib + links.
    for f in [
        "include/evloop.h",
        "lib/libevloop.a",
        "lib/libevloop.so.0.1.0",
        "lib/libevloop.so.0.1",
        "lib/libevloop.so",
        "lib/pkgconfig/evloop.pc",
        "lib/cmake/evloop/evloopConfig.cmake",
    ] {
        assert!(prefix.join(f).exists(), "{f} installed");
    }
    let soname = output(
        Command::new("objdump")
            .args(["-p"])
            .arg(libdir.join("libevloop.so.0.1.0")),
    );
    assert!(
        soname.contains("SONAME               libevloop.so.0.1"),
        "{soname}"
    );

    // Only pkg-config says where things are.
    let pc = libdir.join("pkgconfig");
    let flags = output(
        Command::new("pkg-config")
            .args(["--cflags", "--libs", "evloop"])
            .env("PKG_CONFIG_PATH", &pc),
    );
    assert_eq!(
        output(
            Command::new("pkg-config")
                .args(["--modversion", "evloop"])
                .env("PKG_CONFIG_PATH", &pc)
        )
        .trim(),
        env!("CARGO_PKG_VERSION")
    );
    let bin = prefix.join("timers");
    let mut cc = Command::new("cc");
    cc.arg(root().join("examples/c/timers.c"))
        .arg("-o")
        .arg(&bin);
    cc.args(flags.split_whitespace());
    output(&mut cc);
    let needed = output(Command::new("objdump").arg("-p").arg(&bin));
    assert!(
        needed.contains("NEEDED               libevloop.so.0.1"),
        "{needed}"
    );
    let out = output(Command::new(&bin).env("LD_LIBRARY_PATH", &libdir));
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["One", "One", "One", "Two", "Two", "Two"]
    );

    // Static linking through the same file.
    let static_flags = output(
        Command::new("pkg-config")
            .args(["--static", "--cflags", "--libs", "evloop"])
            .env("PKG_CONFIG_PATH", &pc),
    );
    let static_bin = prefix.join("timers-static");
    let mut cc = Command::new("cc");
    cc.arg(root().join("examples/c/timers.c"))
        .arg("-o")
        .arg(&static_bin);
    for f in static_flags.split_whitespace() {
        // Prefer the archive for evloop itself, system libraries stay shared.
        if f == "-levloop" {
            cc.args(["-Wl,-Bstatic", "-levloop", "-Wl,-Bdynamic"]);
        } else {
            cc.arg(f);
        }
    }
    output(&mut cc);
    let needed = output(Command::new("objdump").arg("-p").arg(&static_bin));
    assert!(!needed.contains("libevloop"), "linked statically: {needed}");
    output(&mut Command::new(&static_bin));

    // CMake's find_package, where cmake is installed (.ci/run installs it).
    if Command::new("cmake").arg("--version").output().is_ok() {
        let src = prefix.join("cmake-app");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(
            src.join("CMakeLists.txt"),
            format!(
                "cmake_minimum_required(VERSION 3.10)\nproject(app C)\nfind_package(evloop 0.1 REQUIRED)\nadd_executable(timers {})\ntarget_link_libraries(timers evloop::evloop)\n",
                root().join("examples/c/timers.c").display()
            ),
        )
        .unwrap();
        let build = src.join("build");
        output(
            Command::new("cmake")
                .arg("-S")
                .arg(&src)
                .arg("-B")
                .arg(&build)
                .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display())),
        );
        output(Command::new("cmake").arg("--build").arg(&build));
        let out = output(Command::new(build.join("timers")).env("LD_LIBRARY_PATH", &libdir));
        assert_eq!(out.lines().count(), 6);
    } else {
        eprintln!("cmake not installed: the CMake package config was not tried");
    }
    std::fs::remove_dir_all(&prefix).unwrap();
}
