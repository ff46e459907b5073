//! The README's key tables are the config schema's: each table between `<!-- keys: SECTION -->` and
//! `<!-- /keys -->` must be exactly what `ganzoo inspect --keys --markdown SECTION` prints (the keys, their
//! types, defaults and meanings, from the config structs and their doc comments), and every section of the
//! schema must have its table. `GANZOO_UPDATE_README=1 cargo test --test readme_keys` rewrites the tables.
use ganzoo_pipelines::config::keys;
use std::path::Path;

/// The lines of `a` missing from `b`, each prefixed.
fn missing(a: &str, b: &str, prefix: &str) -> Vec<String> {
    a.lines().filter(|l| !b.lines().any(|m| m == *l)).map(|l| format!("{prefix}{l}")).collect()
}

#[test]
fn readme_key_tables_are_the_schema() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let rows = keys::rows();
    let (want, found) = keys::update_marked_tables(&text, &rows).unwrap_or_else(|e| panic!("README.md: {e}"));

    let sections = keys::selectors(&rows);
    let unmarked: Vec<&String> = sections.iter().filter(|s| !found.contains(s)).collect();
    let twice: Vec<&String> = sections.iter().filter(|s| found.iter().filter(|f| f == s).count() > 1).collect();
    assert!(
        unmarked.is_empty() && twice.is_empty(),
        "README.md must hold each key table once: missing {unmarked:?}, repeated {twice:?} (a table is `{}` … `{}` around the output of `ganzoo inspect --keys --markdown SECTION`)",
        keys::begin_mark("SECTION"),
        keys::END_MARK
    );

    if text == want {
        return;
    }
    if std::env::var_os("GANZOO_UPDATE_README").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let mut diff = missing(&text, &want, "  README only: ");
    diff.extend(missing(&want, &text, "  schema only: "));
    panic!(
        "README.md's key tables differ from the config schema (a key, type, default or doc comment changed):\n{}\n\
         Regenerate them with: GANZOO_UPDATE_README=1 cargo test --test readme_keys",
        diff.join("\n")
    );
}

#[test]
fn every_schema_key_is_in_a_readme_table() {
    // The README as its tables make it (the test above keeps the file so), so that this test does not depend on
    // the order in which the two run.
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let rows = keys::rows();
    let (text, _) = keys::update_marked_tables(&text, &rows).unwrap_or_else(|e| panic!("README.md: {e}"));
    let missing: Vec<String> =
        rows.iter().filter(|r| !text.contains(&format!("| `{}`", r.key))).map(|r| format!("{} ({})", r.key, r.section)).collect();
    assert!(missing.is_empty(), "keys of the schema in no README table:\n{}", missing.join("\n"));
}

#[test]
fn inspect_keys_lists_a_family_and_refuses_an_unknown_one() {
    let ganzoo = |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_ganzoo")).args(args).output().unwrap();
    let out = ganzoo(&["inspect", "--keys", "gan_cls", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = rows.as_array().unwrap().iter().filter_map(|r| r["key"].as_str()).collect();
    assert!(keys.contains(&"train.steps") && keys.contains(&"model.text.max_tokens") && !keys.contains(&"model.lambda_a"), "{keys:?}");
    let out = ganzoo(&["inspect", "--keys", "gam"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown family `gam`") && err.contains("gan, cyclegan, cgan, gan_cls"), "{err}");
    let out = ganzoo(&["inspect", "--keys", "--markdown", "cut"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("| key | type | default | meaning |") && text.contains("| `model.nce_t` | number | 0.07 |"), "{text}");
}
