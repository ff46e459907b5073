//! Builds `src/shim.cpp` against the libtorch that torch-sys links (its headers are beside its `lib/`), with
//! torch-sys's ABI flags. The c10d part needs gloo's headers, which the torch wheel does not ship: they come
//! from Debian's `libgloo-dev` (headers only; libtorch_cpu.so carries gloo itself), unpacked by `bash .ci/dev`
//! into `.venv/gloo`, or installed system-wide, or named by `GLOO_INCLUDE`. Without them the shim is built
//! without c10d and a process group reports how to get it.
use std::path::{Path, PathBuf};

fn gloo_include() -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed=GLOO_INCLUDE");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = [
        std::env::var_os("GLOO_INCLUDE").map(PathBuf::from),
        Some(workspace.join(".venv/gloo/usr/include")),
        Some(PathBuf::from("/usr/include")),
    ];
    candidates.into_iter().flatten().find(|d| d.join("gloo/rendezvous/store.h").is_file())
}

fn main() {
    let lib = PathBuf::from(std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys exports DEP_TCH_LIBTORCH_LIB"));
    let include = lib.parent().expect("libtorch's lib/ has a parent").join("include");
    println!("cargo:rerun-if-changed=src/shim.cpp");
    println!("cargo:rustc-check-cfg=cfg(ganzoo_gloo)");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    let mut b = cc::Build::new();
    b.cpp(true)
        .file("src/shim.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .flag("-w")
        .debug(false);
    match gloo_include() {
        Some(dir) => {
            println!("cargo:rerun-if-changed={}", dir.join("gloo").display());
            b.include(dir).define("GANZOO_GLOO", None).define("USE_C10D_GLOO", None);
            println!("cargo:rustc-cfg=ganzoo_gloo");
        }
        None => println!(
            "cargo:warning=gloo headers not found (run `bash .ci/dev` once, or set GLOO_INCLUDE): ganzoo is built \
             without data-parallel training"
        ),
    }
    b.compile("ganzoo_torch_ext");
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
    // As the other crates: an rpath, and libtorch_cuda kept linked, so tests and binaries start (DESIGN.md).
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
}
