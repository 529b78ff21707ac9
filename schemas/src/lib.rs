//! The contract of the warehouse: the Arrow schema of every feed and table, every code list
//! with its Chinese label, the Chinese header aliases and a doc string per column.
//!
//! Everything that reads or writes a table takes its shape from here.

pub mod codes;
pub mod tables;

pub use tables::{Column, Kind, Table, TableKind};

/// The reference of every table and code list as Markdown (`docs/tables.md` is this text; a
/// test keeps it current).
pub fn markdown() -> String {
    use std::fmt::Write as _;
    let mut s = String::from(
        "# Tables and code lists\n\n\
         Generated from `schemas/` (`UPDATE_DOCS=1 cargo test -p plsw-schemas` rewrites it).\n\
         Raw tables hold every accepted row of committed loads; each has a `<name>_current` view\n\
         with the current state per key.\n",
    );
    for t in tables::ALL {
        let _ = write!(s, "\n## `{}`\n{}\n\n", t.name, t.doc);
        if !t.key.is_empty() {
            let _ = writeln!(s, "Key: `{}`.\n", t.key.join("`, `"));
        }
        s.push_str("| column | Chinese header | type | required | doc |\n| --- | --- | --- | --- | --- |\n");
        for c in t.stored_columns() {
            let ty = match c.kind {
                Kind::Code(l) => format!("code ({})", l.name),
                Kind::CodeSet(l) => format!("list of codes ({})", l.name),
                k => format!("{}", k.data_type()),
            };
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} | {} |",
                c.name,
                c.zh.join(" / "),
                ty,
                if c.required { "yes" } else { "" },
                c.doc
            );
        }
    }
    s.push_str("\n# Code lists\n");
    for l in codes::ALL {
        let _ = write!(
            s,
            "\n## {}\n{}\n\n| code | 中文 |\n| --- | --- |\n",
            l.name, l.doc
        );
        for (c, z) in l.codes {
            let _ = writeln!(s, "| `{c}` | {z} |");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    fn seed(name: &str) -> Vec<Vec<String>> {
        let path = format!("{}/../seeds/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        text.lines()
            .skip(1)
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    }

    #[test]
    fn seeds_targets_and_member_units_are_well_formed() {
        let targets = seed("targets.csv");
        assert_eq!(targets.len(), 14);
        for t in &targets {
            assert!(matches!(t[1].as_str(), ">=" | "="), "{t:?}");
            let v: f64 = t[2].parse().unwrap();
            assert!((0.0..=1.0).contains(&v), "{t:?}");
            assert!(t[3].parse::<i32>().unwrap() >= 2020, "{t:?}");
        }
        assert!(targets
            .iter()
            .any(|t| t[0] == "hotline.answer_rate" && t[2] == "0.90"));
        let units = seed("member_units.csv");
        assert_eq!(units.len(), 21, "the joint conference has 21 member units");
        assert_eq!(units.iter().filter(|u| u[3] == "true").count(), 1);
        let ids: std::collections::HashSet<_> = units.iter().map(|u| &u[0]).collect();
        assert_eq!(ids.len(), 21);
    }

    #[test]
    fn docs_tables_md_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/tables.md");
        let want = super::markdown();
        if std::env::var("UPDATE_DOCS").is_ok() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/tables.md is stale: run UPDATE_DOCS=1 cargo test -p plsw-schemas"
        );
    }
}
