//! Reading a config: YAML files with `extends:`, `--set` overrides, strict deserialization, and error
//! messages that name the file, line, dotted key and the nearest valid keys.
use crate::error::{PipelineError, Result};
use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};
use std::path::{Path, PathBuf};

/// One YAML file of an `extends` chain, kept to point errors at a line.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

/// A config read from its files and overrides.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    pub config: T,
    /// The merged YAML tree (after `extends` and overrides), before defaults are filled in.
    pub value: Value,
    /// The files read, the base of the `extends` chain first.
    pub sources: Vec<Source>,
    /// The `--set` overrides applied: (dotted key, the text as typed).
    pub overrides: Vec<(String, String)>,
}

impl<T> Loaded<T> {
    /// Where a problem of the dotted key `key` came from: `--set KEY=VALUE` when an override set it (or a
    /// section above it), else the config file.
    pub fn origin(&self, key: &str) -> String {
        match override_of(key, &self.overrides) {
            Some(text) => format!("--set {}", clip(text)),
            None => self.sources.last().map(|s| s.path.display().to_string()).unwrap_or_default(),
        }
    }
}

/// The `--set` text that set the dotted key `key` or a section above it (the last such), if any.
pub fn override_of<'a>(key: &str, overrides: &'a [(String, String)]) -> Option<&'a str> {
    overrides.iter().rev().find(|(k, _)| key == k || key.starts_with(&format!("{k}."))).map(|(_, t)| t.as_str())
}

/// A user's text as quoted in a message: at most 120 characters (a 10 MB value is not echoed back).
pub fn clip(text: &str) -> String {
    let n = text.chars().count();
    if n <= 120 {
        return text.to_string();
    }
    format!("{}… ({n} characters)", text.chars().take(100).collect::<String>())
}

/// The one place YAML text is parsed (serde_yaml is archived upstream: swap it here only).
pub fn parse_yaml(text: &str) -> std::result::Result<Value, serde_yaml::Error> {
    if text.trim().is_empty() {
        return Ok(Value::Mapping(Mapping::new()));
    }
    serde_yaml::from_str(text)
}

/// The one place YAML text is written.
pub fn to_yaml<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_yaml::to_string(value).map_err(|e| PipelineError::Runtime(format!("cannot write YAML: {e}")))
}

/// Reads `path` (following `extends:`), applies `--set` overrides, and deserializes strictly into `T`.
pub fn load<T: DeserializeOwned>(path: &Path, overrides: &[String]) -> Result<Loaded<T>> {
    let mut sources = Vec::new();
    let mut value = read_chain(path, &mut sources, &mut Vec::new())?;
    let mut override_keys = Vec::new();
    for o in overrides {
        override_keys.push(apply_override(&mut value, o)?);
    }
    let config = from_value(value.clone(), &sources, &override_keys)?;
    Ok(Loaded { config, value, sources, overrides: override_keys })
}

/// Deserializes a merged tree, turning serde's message into one that points at the file and line.
pub fn from_value<T: DeserializeOwned>(value: Value, sources: &[Source], overrides: &[(String, String)]) -> Result<T> {
    serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let mut path = e.path().to_string();
        let message = e.into_inner().to_string();
        if let Some(field) = between_backticks(&message, "unknown field `") {
            path = full_path(&value, &path, &field);
        }
        PipelineError::Config(describe(&path, &message, sources, overrides))
    })
}

fn read_chain(path: &Path, sources: &mut Vec<Source>, stack: &mut Vec<PathBuf>) -> Result<Value> {
    let canonical = path.canonicalize().map_err(|e| {
        PipelineError::Config(format!("{}: cannot read config file: {e}", path.display()))
    })?;
    if stack.contains(&canonical) {
        return Err(PipelineError::Config(format!(
            "{}: `extends` forms a cycle: {}",
            path.display(),
            stack.iter().chain([&canonical]).map(|p| p.display().to_string()).collect::<Vec<_>>().join(" -> ")
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| PipelineError::Config(format!("{}: cannot read config file: {e}", path.display())))?;
    let mut value = parse_yaml(&text).map_err(|e| {
        let at = e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
        PipelineError::Config(format!("{}{at}: not valid YAML: {e}", path.display()))
    })?;
    let Value::Mapping(map) = &mut value else {
        return Err(PipelineError::Config(format!("{}: a config must be a mapping of keys at the top level", path.display())));
    };
    let parents = match map.remove("extends") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s],
        Some(Value::Sequence(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(PipelineError::Config(format!(
                    "{}: `extends` must list file paths, found {}",
                    path.display(),
                    kind_of(&other)
                ))),
            })
            .collect::<Result<_>>()?,
        Some(other) => {
            return Err(PipelineError::Config(format!(
                "{}:{}: `extends` must be a file path or a list of them, found {}",
                path.display(),
                locate(&text, &["extends".into()]).unwrap_or(1),
                kind_of(&other)
            )))
        }
    };
    stack.push(canonical);
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut merged = Value::Mapping(Mapping::new());
    for parent in parents {
        let parent_path = dir.join(&parent);
        if !parent_path.exists() {
            return Err(PipelineError::Config(format!(
                "{}:{}: `extends` names {}, which does not exist",
                path.display(),
                locate(&text, &["extends".into()]).unwrap_or(1),
                parent_path.display()
            )));
        }
        let parent_value = read_chain(&parent_path, sources, stack)?;
        merge(&mut merged, parent_value);
    }
    stack.pop();
    merge(&mut merged, value);
    sources.push(Source { path: path.to_path_buf(), text });
    Ok(merged)
}

/// Deep merge: mappings merge key by key, anything else in `over` replaces what `base` had.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Applies `a.b.c=value` to the tree; returns (dotted key, the override as typed).
fn apply_override(value: &mut Value, typed: &str) -> Result<(String, String)> {
    let text = &clip(typed);
    let Some((key, raw)) = typed.split_once('=') else {
        return Err(PipelineError::Config(format!("--set {text}: expected dotted.key=value")));
    };
    let shown_key = clip(key);
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(PipelineError::Config(format!("--set {text}: `{shown_key}` is not a dotted key such as train.steps")));
    }
    let new = parse_yaml(raw).map_err(|e| PipelineError::Config(format!("--set {text}: the value is not valid YAML: {e}")))?;
    let new = if raw.trim().is_empty() { Value::Null } else { new };
    let parts: Vec<&str> = key.split('.').collect();
    if parts[0] == "stages" {
        return set_in_stage(value, text, &parts[1..], new).map(|()| (key.to_string(), typed.to_string()));
    }
    let mut node = value;
    for (i, part) in parts.iter().enumerate() {
        let Value::Mapping(map) = node else {
            return Err(PipelineError::Config(format!(
                "--set {text}: `{}` is not a section, so it has no key `{}`",
                clip(&parts[..i].join(".")), clip(part)
            )));
        };
        let k = Value::String(part.to_string());
        if i + 1 == parts.len() {
            map.insert(k, new);
            break;
        }
        node = map.entry(k).or_insert_with(|| Value::Mapping(Mapping::new()));
    }
    Ok((key.to_string(), typed.to_string()))
}

/// `--set stages.NAME.a.b=value`: sets the dotted key `a.b` in the `set` of the pipeline stage NAME, so it
/// wins over that stage's own `set` (e.g. more steps for one stage on `--resume`).
fn set_in_stage(value: &mut Value, text: &str, parts: &[&str], new: Value) -> Result<()> {
    let stages = match value.get_mut("stages") {
        Some(Value::Sequence(s)) => s,
        _ => return Err(PipelineError::Config(format!("--set {text}: the config has no `stages` list (stages.NAME.key=value sets a key in one stage of a pipeline)"))),
    };
    if parts.len() < 2 {
        return Err(PipelineError::Config(format!("--set {text}: expected stages.NAME.dotted.key=value, e.g. stages.stage2.train.steps=1200")));
    }
    let name_of = |s: &Value| s.get("name").and_then(Value::as_str).map(str::to_string);
    let names: Vec<String> = stages.iter().filter_map(name_of).collect();
    let Some(Value::Mapping(stage)) = stages.iter_mut().find(|s| name_of(s).as_deref() == Some(parts[0])) else {
        return Err(PipelineError::Config(format!("--set {text}: no stage named `{}` (the stages: {})", parts[0], names.join(", "))));
    };
    let set = stage.entry(Value::String("set".into())).or_insert_with(|| Value::Mapping(Mapping::new()));
    if set.is_null() {
        *set = Value::Mapping(Mapping::new());
    }
    let Value::Mapping(set) = set else {
        return Err(PipelineError::Config(format!("--set {text}: stage `{}` has a `set` that is not a mapping", parts[0])));
    };
    set.insert(Value::String(parts[1..].join(".")), new);
    Ok(())
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Builds the user-facing message for a deserialization error at `path` (serde_path_to_error's form).
fn describe(path: &str, message: &str, sources: &[Source], overrides: &[(String, String)]) -> String {
    let mut segments: Vec<String> = if path == "." || path.is_empty() {
        Vec::new()
    } else {
        path.split('.').map(str::to_string).collect()
    };
    let unknown_field = between_backticks(message, "unknown field `");
    let unknown_variant = between_backticks(message, "unknown variant `");
    if let Some(field) = &unknown_field {
        if segments.last() != Some(field) {
            segments.push(field.clone());
        }
    }
    let missing_field = between_backticks(message, "missing field `");
    let key = segments.iter().filter(|s| !s.starts_with('[')).cloned().collect::<Vec<_>>();
    let dotted = segments.join(".").replace(".[", "[");
    let candidates = expected_list(message);

    let (what, near) = if let Some(field) = &unknown_field {
        let parent = &dotted[..dotted.len().saturating_sub(field.len() + 1)];
        let qualify = |c: &str| if parent.is_empty() { c.to_string() } else { format!("{parent}.{c}") };
        let what = format!("unknown key `{dotted}`");
        (what, nearest(field, &candidates).map(|c| qualify(&c)).map(|c| format!("; did you mean `{c}`?")))
    } else if let Some(variant) = &unknown_variant {
        (format!("`{dotted}`: unknown choice `{variant}`"), nearest(variant, &candidates).map(|c| format!("; did you mean `{c}`?")))
    } else if let Some(field) = &missing_field {
        let key = if dotted.is_empty() { field.clone() } else { format!("{dotted}.{field}") };
        (format!("missing key `{key}`"), None)
    } else {
        let key = if dotted.is_empty() { "the config".to_string() } else { format!("`{dotted}`") };
        (format!("{key}: {message}"), None)
    };
    let mut out = String::new();
    let below = || unknown_field.as_ref().and_then(|_| overrides.iter().find(|(k, _)| k.starts_with(&format!("{dotted}."))).map(|(_, t)| t.as_str()));
    if let Some(typed) = override_of(&dotted, overrides).or_else(below) {
        out.push_str(&format!("--set {}: ", clip(typed)));
    } else if let Some((src, line)) = sources.iter().rev().find_map(|s| locate(&s.text, &key).map(|l| (s, l))) {
        out.push_str(&format!("{}:{line}: ", src.path.display()));
    } else if let Some(src) = sources.last() {
        out.push_str(&format!("{}: ", src.path.display()));
    }
    out.push_str(&what);
    if let Some(n) = near {
        out.push_str(&n);
    }
    if (unknown_field.is_some() || unknown_variant.is_some()) && !candidates.is_empty() {
        let label = if unknown_field.is_some() { "valid keys here" } else { "valid choices" };
        out.push_str(&format!("\n  {label}: {}", candidates.join(", ")));
    }
    out
}

/// Below an internally tagged section serde reports only the section's path: find where `field` really is.
fn full_path(value: &Value, path: &str, field: &str) -> String {
    let segments: Vec<&str> = if path == "." || path.is_empty() { Vec::new() } else { path.split('.').collect() };
    let mut node = value;
    for s in &segments {
        match node.get(*s) {
            Some(n) => node = n,
            None => return path.to_string(),
        }
    }
    if node.get(field).is_some() {
        return path.to_string();
    }
    let mut found = Vec::new();
    find_key(node, field, &mut Vec::new(), &mut found);
    match found.as_slice() {
        [one] => segments.iter().map(|s| s.to_string()).chain(one.iter().cloned()).collect::<Vec<_>>().join("."),
        _ => path.to_string(),
    }
}

/// Paths (below `node`) of the mappings that hold `key`.
fn find_key(node: &Value, key: &str, at: &mut Vec<String>, found: &mut Vec<Vec<String>>) {
    if let Value::Mapping(map) = node {
        for (k, v) in map {
            let Some(k) = k.as_str() else { continue };
            if k == key {
                found.push(at.clone());
            }
            at.push(k.to_string());
            find_key(v, key, at, found);
            at.pop();
        }
    }
}

fn between_backticks(message: &str, prefix: &str) -> Option<String> {
    let start = message.find(prefix)? + prefix.len();
    let end = message[start..].find('`')?;
    Some(message[start..start + end].to_string())
}

/// The names serde lists after "expected" in an unknown field/variant message.
fn expected_list(message: &str) -> Vec<String> {
    let Some(at) = message.find("expected") else { return Vec::new() };
    message[at..].split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo.
pub fn nearest(word: &str, candidates: &[String]) -> Option<String> {
    candidates
        .iter()
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 2).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.clone())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Finds the 1-based line of a dotted key in block-style YAML text; the deepest prefix found if the whole
/// key is not written there. Index segments (`[0]`) are skipped.
pub fn locate(text: &str, key: &[String]) -> Option<usize> {
    let key: Vec<&String> = key.iter().filter(|s| !s.starts_with('[')).collect();
    if key.is_empty() {
        return None;
    }
    let mut depth = 0;
    let mut parent_indent: isize = -1;
    let mut best = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split(" #").next().unwrap_or("");
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
            continue;
        }
        let mut indent = (line.len() - trimmed.len()) as isize;
        let mut content = trimmed;
        while let Some(rest) = content.strip_prefix("- ") {
            indent += 2;
            content = rest.trim_start();
        }
        if depth > 0 && indent <= parent_indent {
            break;
        }
        let Some((k, _)) = content.split_once(':') else { continue };
        let k = k.trim().trim_matches(|c| c == '"' || c == '\'');
        if k == key[depth].as_str() {
            best = Some(n + 1);
            depth += 1;
            parent_indent = indent;
            if depth == key.len() {
                break;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_nested_keys_and_prefixes() {
        let text = "name: x\ntrain:\n  # comment\n  steps: 10\n  opt:\n    lr: 1\nloss:\n  steps: 3\n";
        let k = |s: &str| s.split('.').map(String::from).collect::<Vec<_>>();
        assert_eq!(locate(text, &k("train.steps")), Some(4));
        assert_eq!(locate(text, &k("train.opt.lr")), Some(6));
        assert_eq!(locate(text, &k("loss.steps")), Some(8));
        assert_eq!(locate(text, &k("train.nope")), Some(2));
        assert_eq!(locate(text, &k("absent")), None);
    }

    #[test]
    fn nearest_prefers_small_edits() {
        let c = vec!["steps".to_string(), "batch_size".to_string(), "n_critic".to_string()];
        assert_eq!(nearest("stpes", &c).as_deref(), Some("steps"));
        assert_eq!(nearest("batchsize", &c).as_deref(), Some("batch_size"));
        assert_eq!(nearest("zzzzzzzzzzzz", &c), None);
    }

    #[test]
    fn merge_is_deep() {
        let mut a = parse_yaml("a: {b: 1, c: 2}\nd: [1]").unwrap();
        merge(&mut a, parse_yaml("a: {c: 3}\nd: [2, 3]").unwrap());
        assert_eq!(a, parse_yaml("a: {b: 1, c: 3}\nd: [2, 3]").unwrap());
    }

    #[test]
    fn overrides_set_and_reject_bad_syntax() {
        let mut v = parse_yaml("train: {steps: 1}").unwrap();
        apply_override(&mut v, "train.steps=5").unwrap();
        assert_eq!(v, parse_yaml("train: {steps: 5}").unwrap());
        assert!(apply_override(&mut v, "train.steps").is_err());
        assert!(apply_override(&mut v, "train..x=1").is_err());
        assert!(apply_override(&mut v, "train.steps.x=1").is_err());
    }

    #[test]
    fn stage_overrides_go_into_the_stage_set() {
        let mut v = parse_yaml("train: {steps: 1}\nstages:\n  - {name: a, set: {train.steps: 2}}\n  - {name: b}").unwrap();
        apply_override(&mut v, "stages.a.train.steps=7").unwrap();
        apply_override(&mut v, "stages.b.model.stage=2").unwrap();
        let want = "train: {steps: 1}\nstages:\n  - {name: a, set: {train.steps: 7}}\n  - {name: b, set: {model.stage: 2}}";
        assert_eq!(v, parse_yaml(want).unwrap());
        let e = apply_override(&mut v, "stages.c.train.steps=7").unwrap_err().to_string();
        assert!(e.contains("no stage named `c`") && e.contains("a, b"), "{e}");
        assert!(apply_override(&mut v, "stages.a=1").is_err());
        let mut plain = parse_yaml("train: {steps: 1}").unwrap();
        assert!(apply_override(&mut plain, "stages.a.train.steps=7").unwrap_err().to_string().contains("no `stages` list"));
    }
}
