//! Gives the C shared library a soname, so programs linked against it find
//! the ABI they were built for: `libevloop.so.MAJOR` (for 0.x versions,
//! `libevloop.so.0.MINOR`, since a 0.x minor release may break the ABI).
//! scripts/install.sh installs the library under that name.

fn main() {
    let major = env!("CARGO_PKG_VERSION_MAJOR");
    let minor = env!("CARGO_PKG_VERSION_MINOR");
    let abi = if major == "0" {
        format!("0.{minor}")
    } else {
        major.to_string()
    };
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libevloop.so.{abi}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
