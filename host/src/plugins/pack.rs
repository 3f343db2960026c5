//! `crm plugin pack`: builds a plugin crate for wasm32-wasip2 and writes its package
//! (a tar file holding `plugin.toml` and `plugin.wasm`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::manifest::Manifest;

/// Packs the plugin crate in `dir`. With `wasm`, that component is packed as it is;
/// without, the crate is built (`cargo rustc --release --target wasm32-wasip2
/// --crate-type cdylib`).
/// Returns the package's path (`out`, or `<id>-<version>.crmplugin` here).
pub fn pack(dir: &Path, wasm: Option<PathBuf>, out: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let manifest_path = dir.join("plugin.toml");
    let manifest_text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let manifest = Manifest::parse(&manifest_text).map_err(|errors| {
        anyhow::anyhow!(
            "{} is not valid: {}",
            manifest_path.display(),
            errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let wasm = match wasm {
        Some(w) => w,
        None => build(dir)?,
    };
    let component =
        std::fs::read(&wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let out = out.unwrap_or_else(|| {
        PathBuf::from(format!("{}-{}.crmplugin", manifest.id, manifest.version))
    });
    let file =
        std::fs::File::create(&out).with_context(|| format!("cannot write {}", out.display()))?;
    let mut tar = tar::Builder::new(file);
    for (name, bytes) in [
        ("plugin.toml", manifest_text.as_bytes()),
        ("plugin.wasm", component.as_slice()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes)?;
    }
    tar.finish()?;
    Ok(out)
}

fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        // `cargo rustc --crate-type cdylib` makes the component whatever crate type the
        // crate declares, so a plugin can stay an rlib in a workspace that also
        // builds it natively (a native cdylib cannot export the component's names).
        .args([
            "rustc",
            "--lib",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--crate-type",
            "cdylib",
            "--message-format=json-render-diagnostics",
            // Debug info is most of a Rust component's size (3.2 MB of data-quality's
            // 3.3 MB); the host neither needs nor keeps it.
            "--",
            "-C",
            "strip=debuginfo",
            // 128 KiB of stack instead of Rust's 1 MiB: the stack sits at the start
            // of linear memory, inside the part the host keeps resident between
            // calls (runtime.rs), so a call does not page-fault its way down it.
            "-C",
            "link-arg=-zstack-size=131072",
        ])
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo")?;
    if !output.status.success() {
        bail!(
            "building the plugin failed (is the target installed? `rustup target add wasm32-wasip2`)"
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        })
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .rfind(|f| f.extension().is_some_and(|e| e == "wasm"))
        .context("cargo built no .wasm file: is the crate a cdylib?")
}
