//! Every config key with its type, default and one-line meaning, read from the config schema itself: the JSON
//! Schema that `schemars` derives from the config structs (their serde attributes, defaults and doc comments).
//! `ganzoo inspect --keys` prints these rows, and the README's key tables are generated from them
//! ([`update_marked_tables`]), so neither can drift from the code.
//!
//! A row's default is the value a key takes when a config leaves it out and writes its section; `—` marks a
//! required key. When leaving out the whole section gives the key another value (the section's own default),
//! the row says so: `— (0.0002 without train.g_optimizer)`. Keys that exist only for one choice of a tagged
//! section (`arch: mlp`, `kind: adam`) carry that choice in [`KeyRow::when`]; the choices of `data.kind` and
//! `model.family` are sections of their own.
use crate::families::Config;
use serde::Serialize;
use serde_json::{Map, Value};

/// A section field whose left-out keys keep the values of the section's default rather than the defaults of
/// the section's type (a field deserialized by a custom function, as `cut`'s networks). The field carries it
/// as `#[schemars(extend("x-keys-keep-section-default" = true))]`.
pub const KEEPS_SECTION_DEFAULT: &str = "x-keys-keep-section-default";

/// The section of the keys outside `data:` and `model:` choices.
pub const COMMON: &str = "common";

/// One key of the config schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyRow {
    /// `common`, `data.kind: KIND` or `model.family: FAMILY` (families with the same keys share one:
    /// `model.family: cgan, gan_cls`).
    pub section: String,
    /// The dotted key; `[]` stands for every entry of a list (`stages[].name`).
    pub key: String,
    /// The choices of tagged sections above the key that it belongs to, e.g. `generator.arch: mlp` (empty:
    /// always there).
    pub when: Vec<String>,
    /// What the value is: `integer`, `number`, `bool`, `string`, the choices (`fp32 | bf16`), `list of …`,
    /// `map of …`, `section`; `optional …` where null (none) is allowed.
    #[serde(rename = "type")]
    pub ty: String,
    /// The value when the key is left out; `—` when it is required.
    pub default: String,
    /// The first paragraph of the key's doc comment.
    pub meaning: String,
}

/// Every key of a run config, section by section (`common` first, then each `data.kind`, then each
/// `model.family`), each section's keys in alphabetical order with the keys of a tagged choice after its tag.
pub fn rows() -> Vec<KeyRow> {
    let schema = serde_json::to_value(schemars::schema_for!(Config)).unwrap_or(Value::Null);
    let defs = schema.get("$defs").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut w = Walker { defs: &defs, rows: Vec::new() };
    let root = w.resolve(&schema);
    w.object(&root, &Ctx { section: COMMON.into(), prefix: String::new(), when: Vec::new(), outer: None, keep: None, tag: None });
    let mut rows = merge_choices(w.rows);
    group_same_sections(&mut rows);
    rows.sort_by_key(|r| section_rank(&r.section));
    rows
}

fn section_rank(section: &str) -> u8 {
    if section == COMMON {
        0
    } else if section.starts_with("data.") {
        1
    } else {
        2
    }
}

/// The sections of `rows` in order, each once.
pub fn sections(rows: &[KeyRow]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows {
        if !out.contains(&r.section) {
            out.push(r.section.clone());
        }
    }
    out
}

/// The families of a `model.family: a, b` section.
fn families_of(section: &str) -> Option<Vec<&str>> {
    section.strip_prefix("model.family: ").map(|f| f.split(", ").collect())
}

/// The names a table can be asked for: `common`, `data` (every `data.kind`) and one per family section (its
/// families joined by `, `, e.g. `cgan, gan_cls`; any one of them selects it too).
pub fn selectors(rows: &[KeyRow]) -> Vec<String> {
    let mut out = vec![COMMON.to_string(), "data".to_string()];
    out.extend(sections(rows).iter().filter_map(|s| s.strip_prefix("model.family: ").map(str::to_string)));
    out
}

/// Every family name, in the order of the schema.
pub fn families(rows: &[KeyRow]) -> Vec<String> {
    sections(rows).iter().filter_map(|s| families_of(s)).flatten().map(str::to_string).collect()
}

/// The rows a selector names (see [`selectors`]); an unknown one is an error naming the valid ones.
pub fn select(rows: &[KeyRow], selector: &str) -> Result<Vec<KeyRow>, String> {
    let selector = selector.trim();
    let keep = |r: &&KeyRow| match selector {
        COMMON => r.section == COMMON,
        "data" => r.section.starts_with("data.kind: "),
        s => r.section.strip_prefix("model.family: ").is_some_and(|f| f == s || f.split(", ").any(|one| one == s)),
    };
    let picked: Vec<KeyRow> = rows.iter().filter(keep).cloned().collect();
    if picked.is_empty() {
        return Err(format!(
            "unknown key section `{selector}`: the sections are common, data, and the families {}",
            families(rows).join(", ")
        ));
    }
    Ok(picked)
}

/// The rows `ganzoo inspect --keys FAMILY` shows: the common keys and that family's model keys. An unknown
/// family is an error naming the valid ones.
pub fn for_family(rows: &[KeyRow], family: &str) -> Result<Vec<KeyRow>, String> {
    let all = families(rows);
    if !all.iter().any(|f| f == family) {
        return Err(format!("unknown family `{family}`: the families are {}", all.join(", ")));
    }
    let mut out = select(rows, COMMON)?;
    out.extend(select(rows, family)?);
    Ok(out)
}

/// An aligned plain-text table of `rows`, a heading line before each section.
pub fn text_table(rows: &[KeyRow]) -> String {
    let cells: Vec<[String; 4]> = rows.iter().map(|r| [key_cell(r, false), r.ty.clone(), r.default.clone(), r.meaning.clone()]).collect();
    let head = ["KEY", "TYPE", "DEFAULT", "MEANING"];
    let width = |i: usize| cells.iter().map(|c| c[i].chars().count()).chain([head[i].len()]).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2)];
    let line = |c: [&str; 4]| {
        let mut s = String::new();
        for (i, w) in widths.iter().enumerate() {
            s.push_str(c[i]);
            s.push_str(&" ".repeat(w - c[i].chars().count() + 2));
        }
        s.push_str(c[3]);
        s.trim_end().to_string()
    };
    let mut out = Vec::new();
    let mut section = None;
    for (r, c) in rows.iter().zip(&cells) {
        if section != Some(&r.section) {
            if section.is_some() {
                out.push(String::new());
            }
            out.push(format!("[{}]", r.section));
            out.push(line(head));
            section = Some(&r.section);
        }
        out.push(line([&c[0], &c[1], &c[2], &c[3]]));
    }
    out.join("\n")
}

/// The Markdown table of a selector (see [`selectors`]): `| key | type | default | meaning |`, one key a row.
/// The `data` table names each row's `data.kind` in its key cell.
pub fn markdown(rows: &[KeyRow], selector: &str) -> Result<String, String> {
    let mut picked = select(rows, selector)?;
    if selector.trim() == "data" {
        for r in &mut picked {
            let kind = r.section.trim_start_matches("data.").to_string();
            r.when.insert(0, kind);
            r.section = "data".into();
        }
        picked = merge_choices(picked);
    }
    let esc = |s: &str| s.replace('|', "\\|");
    let mut out = String::from("| key | type | default | meaning |\n|---|---|---|---|\n");
    for r in &picked {
        out.push_str(&format!("| {} | {} | {} | {} |\n", esc(&key_cell(r, true)), esc(&r.ty), esc(&r.default), esc(&r.meaning)));
    }
    Ok(out)
}

/// The key with its choices: `` `model.generator.hidden` (generator.arch: mlp) ``.
fn key_cell(r: &KeyRow, code: bool) -> String {
    let key = if code { format!("`{}`", r.key) } else { r.key.clone() };
    if r.when.is_empty() {
        key
    } else {
        format!("{key} ({})", r.when.join("; "))
    }
}

/// The line that opens a generated table in a Markdown file; [`END_MARK`] closes it.
pub fn begin_mark(selector: &str) -> String {
    format!("<!-- keys: {selector} -->")
}

/// The line that closes a generated table.
pub const END_MARK: &str = "<!-- /keys -->";

/// `text` with every table between `<!-- keys: SELECTOR -->` and `<!-- /keys -->` generated anew from the
/// schema, and the selectors found, in order. An unknown selector or an unclosed marker is an error naming
/// its line.
pub fn update_marked_tables(text: &str, rows: &[KeyRow]) -> Result<(String, Vec<String>), String> {
    let mut out = String::with_capacity(text.len());
    let mut found = Vec::new();
    let mut lines = text.split_inclusive('\n').enumerate();
    while let Some((n, line)) = lines.next() {
        out.push_str(line);
        let Some(selector) = line.trim().strip_prefix("<!-- keys:").and_then(|s| s.strip_suffix("-->")) else { continue };
        let selector = selector.trim();
        let table = markdown(rows, selector).map_err(|e| format!("line {}: {e}", n + 1))?;
        loop {
            match lines.next() {
                Some((_, l)) if l.trim() == END_MARK => {
                    out.push_str(&table);
                    out.push_str(l);
                    break;
                }
                Some(_) => {}
                None => return Err(format!("line {}: `{}` has no closing `{END_MARK}`", n + 1, line.trim())),
            }
        }
        found.push(selector.to_string());
    }
    Ok((out, found))
}

/// Where a walk is: the section, the dotted prefix of the object's keys, the choices above it, the value the
/// object takes when left out (`outer`), the values that replace its keys' own defaults (`keep`), and the tag
/// key of the tagged choice the object is (not a key row of its own).
struct Ctx {
    section: String,
    prefix: String,
    when: Vec<String>,
    outer: Option<Value>,
    keep: Option<Value>,
    tag: Option<String>,
}

impl Ctx {
    fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }
}

struct Walker<'a> {
    defs: &'a Map<String, Value>,
    rows: Vec<KeyRow>,
}

impl Walker<'_> {
    /// `s` with its `$ref` followed; the referring schema's own keywords (description, default) win.
    fn resolve(&self, s: &Value) -> Value {
        let Some(obj) = s.as_object() else { return s.clone() };
        let Some(name) = obj.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")) else {
            return s.clone();
        };
        let mut base = match self.resolve(self.defs.get(name).unwrap_or(&Value::Null)) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        for (k, v) in obj {
            if k != "$ref" {
                base.insert(k.clone(), v.clone());
            }
        }
        Value::Object(base)
    }

    /// The schema without its null alternative (`Option<T>`), and whether null is allowed.
    fn non_null(&self, s: &Value) -> (Value, bool) {
        let mut s = self.resolve(s);
        let Some(obj) = s.as_object_mut() else { return (s, false) };
        if let Some(Value::Array(types)) = obj.get("type").cloned() {
            if types.iter().any(|t| t == "null") {
                let rest: Vec<Value> = types.into_iter().filter(|t| t != "null").collect();
                obj.insert("type".into(), if rest.len() == 1 { rest[0].clone() } else { Value::Array(rest) });
                return (s, true);
            }
        }
        for alt in ["anyOf", "oneOf"] {
            let Some(Value::Array(items)) = obj.get(alt).cloned() else { continue };
            let is_null = |v: &Value| v.get("type").is_some_and(|t| t == "null") || v.get("const").is_some_and(Value::is_null);
            if items.iter().any(is_null) {
                let rest: Vec<Value> = items.into_iter().filter(|v| !is_null(v)).collect();
                obj.remove(alt);
                if rest.len() == 1 {
                    let mut inner = match self.resolve(&rest[0]) {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    for (k, v) in obj.iter() {
                        inner.insert(k.clone(), v.clone());
                    }
                    return (Value::Object(inner), true);
                }
                obj.insert(alt.into(), Value::Array(rest));
                return (s, true);
            }
        }
        (s, false)
    }

    /// The tag key and the variants of a tagged choice (`oneOf` objects that each fix the tag with `const`).
    fn tagged(&self, s: &Value) -> Option<(String, Vec<(String, Value)>)> {
        let variants: Vec<Value> = s.get("oneOf")?.as_array()?.iter().map(|v| self.resolve(v)).collect();
        let first = variants.first()?.get("properties")?.as_object()?;
        let tag = first.iter().find(|(_, p)| p.get("const").is_some_and(Value::is_string))?.0.clone();
        variants
            .into_iter()
            .map(|v| Some((v.get("properties")?.get(&tag)?.get("const")?.as_str()?.to_string(), v)))
            .collect::<Option<Vec<_>>>()
            .map(|vs| (tag, vs))
    }

    /// The string choices of a schema: `enum`, `const`, or `oneOf` of those (the choices with doc comments
    /// are constants of their own).
    fn choices(&self, s: &Value) -> Option<Vec<String>> {
        if let Some(c) = s.get("const") {
            return c.as_str().map(|c| vec![c.to_string()]);
        }
        if let Some(e) = s.get("enum").and_then(Value::as_array) {
            return e.iter().map(|v| v.as_str().map(str::to_string)).collect();
        }
        let lists = s.get("oneOf")?.as_array()?.iter().map(|v| self.choices(&self.resolve(v))).collect::<Option<Vec<_>>>()?;
        Some(lists.concat())
    }

    /// What a value of this schema is, in words.
    fn type_name(&self, s: &Value) -> String {
        let (s, nullable) = self.non_null(s);
        let t = self.plain_type_name(&s);
        if nullable {
            format!("optional {t}")
        } else {
            t
        }
    }

    fn plain_type_name(&self, s: &Value) -> String {
        if let Some(c) = self.choices(s) {
            return c.join(" | ");
        }
        if self.tagged(s).is_some() {
            return "section".into();
        }
        match s.get("type").and_then(Value::as_str) {
            Some("integer") => "integer".into(),
            Some("number") => "number".into(),
            Some("boolean") => "bool".into(),
            Some("string") => "string".into(),
            Some("array") => match (s.get("prefixItems").and_then(Value::as_array), s.get("items")) {
                (Some(items), _) => format!("[{}]", items.iter().map(|i| self.type_name(i)).collect::<Vec<_>>().join(", ")),
                (None, Some(items)) => {
                    let t = self.type_name(items);
                    format!("list of {}", if t.contains(" | ") { format!("({t})") } else { t })
                }
                (None, None) => "list".into(),
            },
            Some("object") if s.get("properties").is_some() => "section".into(),
            Some("object") => match s.get("additionalProperties") {
                Some(v) if v.is_object() && !v.as_object().is_some_and(Map::is_empty) => format!("map of {}", self.type_name(v)),
                _ => "map".into(),
            },
            _ => "any".into(),
        }
    }

    /// The rows of an object's properties.
    fn object(&mut self, schema: &Value, ctx: &Ctx) {
        let Some(props) = schema.get("properties").and_then(Value::as_object) else { return };
        let required: Vec<&str> =
            schema.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        for (name, prop) in props {
            if ctx.tag.as_deref() == Some(name.as_str()) {
                continue;
            }
            self.property(name, prop, required.contains(&name.as_str()), ctx);
        }
    }

    fn property(&mut self, name: &str, prop: &Value, required: bool, ctx: &Ctx) {
        let key = ctx.key(name);
        let (inner, nullable) = self.non_null(prop);
        let meaning = first_paragraph(prop.get("description").or_else(|| inner.get("description")));
        let own = match &ctx.keep {
            Some(k) => k.get(name).cloned(),
            None if required => None,
            None => prop.get("default").cloned().or_else(|| empty_default(&inner, nullable)),
        };
        let outer = ctx.outer.as_ref().and_then(|o| o.get(name)).cloned();
        let default = render_default(own.as_ref(), required && ctx.keep.is_none(), outer.as_ref(), &ctx.prefix);
        let left_out = own.clone().filter(|v| !v.is_null()).or(outer.clone());
        let keep = prop.get(KEEPS_SECTION_DEFAULT).and_then(|_| own.clone());
        let row = |ty: String| KeyRow {
            section: ctx.section.clone(),
            key: key.clone(),
            when: ctx.when.clone(),
            ty,
            default: default.clone(),
            meaning: meaning.clone(),
        };

        if let Some((tag, variants)) = self.tagged(&inner) {
            let top = ctx.prefix.is_empty();
            let tag_key = format!("{key}.{tag}");
            let names: Vec<&str> = variants.iter().map(|(v, _)| v.as_str()).collect();
            let tag_own = own.as_ref().and_then(|o| o.get(&tag));
            let tag_outer = outer.as_ref().and_then(|o| o.get(&tag));
            self.rows.push(KeyRow {
                key: tag_key,
                ty: names.join(" | "),
                default: render_default(None, true, tag_own.or(tag_outer), &key),
                ..row(String::new())
            });
            for (value, variant) in &variants {
                let chosen = left_out.as_ref().filter(|o| o.get(&tag).and_then(Value::as_str) == Some(value)).cloned();
                let (section, when) = if top {
                    (format!("{key}.{tag}: {value}"), Vec::new())
                } else {
                    let mut w = ctx.when.clone();
                    w.push(format!("{name}.{tag}: {value}"));
                    (ctx.section.clone(), w)
                };
                let keep = keep.clone().filter(|k| k.get(&tag).and_then(Value::as_str) == Some(value));
                let sub = Ctx { section, prefix: key.clone(), when, outer: chosen, keep, tag: Some(tag.clone()) };
                self.object(variant, &sub);
            }
            return;
        }
        if inner.get("properties").is_some() {
            if nullable {
                self.rows.push(row(format!("optional {}", self.plain_type_name(&inner))));
            }
            let sub = Ctx { section: ctx.section.clone(), prefix: key.clone(), when: ctx.when.clone(), outer: left_out, keep, tag: None };
            self.object(&inner, &sub);
            return;
        }
        let items = inner.get("items").map(|i| self.resolve(i));
        if let Some(items) = items.filter(|i| i.get("properties").is_some()) {
            self.rows.push(row("list of sections".into()));
            let sub = Ctx { section: ctx.section.clone(), prefix: format!("{key}[]"), when: ctx.when.clone(), outer: None, keep: None, tag: None };
            self.object(&items, &sub);
            return;
        }
        self.rows.push(row(self.type_name(prop)));
    }
}

/// The default of a key that serde fills with its type's empty value but whose schema has none (a field
/// skipped in serialization when empty): none, `[]`, `{}` or `false`.
fn empty_default(s: &Value, nullable: bool) -> Option<Value> {
    if nullable {
        return Some(Value::Null);
    }
    match s.get("type").and_then(Value::as_str)? {
        "array" => Some(Value::Array(Vec::new())),
        "object" if s.get("properties").is_none() => Some(Value::Object(Map::new())),
        "boolean" => Some(Value::Bool(false)),
        _ => None,
    }
}

/// A default as a table shows it: `—` for a required key, `?` for one the schema does not give, then what
/// leaving out the section above gives when that differs.
fn render_default(own: Option<&Value>, required: bool, outer: Option<&Value>, section: &str) -> String {
    let mut s = match own {
        Some(v) => render_value(v),
        None if required => "—".into(),
        None => "?".into(),
    };
    if let Some(o) = outer.filter(|o| Some(*o) != own) {
        s.push_str(&format!(" ({} without {section})", render_value(o)));
    }
    s
}

/// A value in YAML flow style: `none`, `true`, `0.5`, `auto`, `[0.5, 0.999]`, `{kind: adam, lr: 0.0002}`.
fn render_value(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.is_empty() => "\"\"".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(render_value).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!("{{{}}}", m.iter().map(|(k, v)| format!("{k}: {}", render_value(v))).collect::<Vec<_>>().join(", ")),
    }
}

/// The first paragraph of a doc comment on one line, rustdoc's intra-doc links (`` [`crate::x::Y`] ``) as plain
/// code (`` `Y` ``).
fn first_paragraph(doc: Option<&Value>) -> String {
    let doc = doc.and_then(Value::as_str).unwrap_or("");
    let text = doc.split("\n\n").next().unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("[`") {
        let Some(j) = rest[i..].find("`]").map(|j| i + j) else { break };
        let path = &rest[i + 2..j];
        out.push_str(&rest[..i]);
        out.push('`');
        out.push_str(path.rsplit("::").next().unwrap_or(path));
        out.push('`');
        rest = &rest[j + 2..];
    }
    out.push_str(rest);
    out
}

/// Rows that differ only in the value of their last choice become one row listing the values
/// (`g_optimizer.kind: adam, rmsprop`), in the order first seen.
fn merge_choices(rows: Vec<KeyRow>) -> Vec<KeyRow> {
    let mut out: Vec<KeyRow> = Vec::new();
    for r in rows {
        let split = |r: &KeyRow| r.when.last().and_then(|w| w.split_once(": ").map(|(k, v)| (k.to_string(), v.to_string())));
        let Some((tag, value)) = split(&r) else {
            out.push(r);
            continue;
        };
        let same = out.iter_mut().find(|o| {
            o.section == r.section
                && o.key == r.key
                && o.ty == r.ty
                && o.default == r.default
                && o.meaning == r.meaning
                && o.when.len() == r.when.len()
                && o.when[..o.when.len() - 1] == r.when[..r.when.len() - 1]
                && split(o).is_some_and(|(t, _)| t == tag)
        });
        match same {
            Some(o) => {
                if let Some(last) = o.when.last_mut() {
                    last.push_str(&format!(", {value}"));
                }
            }
            None => out.push(r),
        }
    }
    out
}

/// Families whose model keys are the same rows become one section (`model.family: cgan, gan_cls`), kept
/// where the first of them was.
fn group_same_sections(rows: &mut Vec<KeyRow>) {
    let families: Vec<String> = sections(rows).into_iter().filter(|s| s.starts_with("model.family: ")).collect();
    let keys_of = |s: &str| -> Vec<KeyRow> {
        rows.iter().filter(|r| r.section == s).map(|r| KeyRow { section: String::new(), ..r.clone() }).collect()
    };
    // (section, the section it becomes, whether its rows stay)
    let mut plan: Vec<(String, String, bool)> = Vec::new();
    for a in &families {
        if plan.iter().any(|(s, _, _)| s == a) {
            continue;
        }
        let group: Vec<&String> = families.iter().filter(|b| *b == a || (!plan.iter().any(|(s, _, _)| s == *b) && keys_of(a) == keys_of(b))).collect();
        let names: Vec<&str> = group.iter().filter_map(|s| s.strip_prefix("model.family: ")).collect();
        let merged = format!("model.family: {}", names.join(", "));
        plan.extend(group.iter().map(|s| (s.to_string(), merged.clone(), *s == a)));
    }
    rows.retain_mut(|r| {
        let Some((_, to, stays)) = plan.iter().find(|(from, _, _)| *from == r.section) else { return true };
        r.section = to.clone();
        *stays
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intra_doc_links_become_plain_code() {
        let doc = serde_json::json!("A blur ([`crate::blur::Downsample`]) and [`Norm`].\n\nMore.");
        assert_eq!(first_paragraph(Some(&doc)), "A blur (`Downsample`) and `Norm`.");
    }

    fn find<'a>(rows: &'a [KeyRow], section: &str, key: &str) -> &'a KeyRow {
        rows.iter().find(|r| r.section == section && r.key == key).unwrap_or_else(|| panic!("no row {section} {key}"))
    }

    #[test]
    fn config_keys_have_a_meaning_and_a_known_default() {
        let rows = rows();
        let bad: Vec<String> = rows
            .iter()
            .filter(|r| r.meaning.is_empty() || r.default.contains('?'))
            .map(|r| format!("{} {}: default {:?}, meaning {:?}", r.section, r.key, r.default, r.meaning))
            .collect();
        assert!(bad.is_empty(), "keys without a doc comment or a default:\n{}", bad.join("\n"));
    }

    #[test]
    fn config_keys_defaults_are_the_real_ones() {
        let rows = rows();
        assert_eq!(find(&rows, COMMON, "name").default, "run");
        assert_eq!(find(&rows, COMMON, "train.steps").default, "1000");
        assert_eq!(find(&rows, COMMON, "train.collective_timeout_s").default, "300");
        assert_eq!(find(&rows, COMMON, "train.sync_batch_norm").default, "false");
        assert_eq!(find(&rows, COMMON, "train.diffaugment").default, "[]");
        assert_eq!(find(&rows, COMMON, "eval.network").default, "none");
        assert_eq!(find(&rows, COMMON, "data.kind").default, "—");
        assert_eq!(find(&rows, COMMON, "stages[].name").default, "—");
        let lr = rows.iter().find(|r| r.key == "train.g_optimizer.lr" && r.when.iter().any(|w| w.contains("adam"))).unwrap();
        assert_eq!(lr.default, "— (0.0002 without train.g_optimizer)");
        // cut's networks keep CUT's values for the keys a config leaves out
        assert_eq!(find(&rows, "model.family: cut", "model.generator.antialias").default, "true");
        assert_eq!(find(&rows, "model.family: cyclegan", "model.generator.antialias").default, "false");
    }

    #[test]
    fn config_keys_sections_and_selectors() {
        let rows = rows();
        let fams = families(&rows);
        for f in ["gan", "cyclegan", "cgan", "gan_cls", "stackgan", "vaegan", "unit", "pix2pix", "cut"] {
            assert!(fams.iter().any(|x| x == f), "{f} missing from {fams:?}");
        }
        assert!(sections(&rows).contains(&"model.family: cgan, gan_cls".to_string()), "{:?}", sections(&rows));
        let e = for_family(&rows, "nope").unwrap_err();
        assert!(e.contains("unknown family `nope`") && e.contains("pix2pix"), "{e}");
        let md = markdown(&rows, "data").unwrap();
        assert!(md.starts_with("| key | type | default | meaning |\n|---|---|---|---|\n| `data."), "{md}");
        let (text, found) = update_marked_tables("a\n<!-- keys: gan -->\nold\n<!-- /keys -->\nb\n", &rows).unwrap();
        assert_eq!(found, ["gan"]);
        assert!(text.starts_with("a\n<!-- keys: gan -->\n| key |") && text.ends_with("|\n<!-- /keys -->\nb\n"), "{text}");
        assert!(update_marked_tables("<!-- keys: gan -->\n", &rows).unwrap_err().contains("no closing"));
        assert!(update_marked_tables("<!-- keys: nope -->\n<!-- /keys -->\n", &rows).unwrap_err().contains("line 1: unknown key section"));
    }
}
