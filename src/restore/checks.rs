//! The checks a staged database must pass before it may replace live data:
//! SQLite's own integrity and foreign-key checks, and row counts against
//! the manifest.

use crate::config::CheckLevel;
use crate::error::{Error, Result};
use crate::snapshot::manifest::DatabaseEntry;
use rusqlite::Connection;
use std::collections::BTreeMap;

/// Findings shown in a refusal; the rest are counted.
const SHOWN: usize = 5;

/// `PRAGMA integrity_check` (or `quick_check`): refuse on any finding.
pub fn integrity(name: &str, conn: &Connection, level: CheckLevel) -> Result<&'static str> {
    let pragma = match level {
        CheckLevel::Full => "integrity_check",
        CheckLevel::Quick => "quick_check",
    };
    let rows: Vec<String> = conn
        .prepare(&format!("PRAGMA {pragma}"))
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|e| refused_check(name, pragma, &[e.to_string()]))?;
    if rows.len() == 1 && rows[0] == "ok" {
        return Ok(pragma);
    }
    Err(refused_check(name, pragma, &rows))
}

/// `PRAGMA foreign_key_check`: refuse on any violation.
pub fn foreign_keys(name: &str, conn: &Connection) -> Result<()> {
    let rows: Vec<String> = conn
        .prepare("PRAGMA foreign_key_check")
        .and_then(|mut s| {
            s.query_map([], |r| {
                let table: String = r.get(0)?;
                let rowid: Option<i64> = r.get(1)?;
                let parent: String = r.get(2)?;
                Ok(format!(
                    "{table} row {} references a missing {parent} row",
                    rowid.map_or("?".to_string(), |v| v.to_string())
                ))
            })?
            .collect::<rusqlite::Result<_>>()
        })
        .map_err(|e| refused_check(name, "foreign_key_check", &[e.to_string()]))?;
    if rows.is_empty() {
        return Ok(());
    }
    Err(refused_check(name, "foreign_key_check", &rows))
}

fn refused_check(name: &str, pragma: &str, findings: &[String]) -> Error {
    let mut msg = format!("database `{name}` fails PRAGMA {pragma} in the staged copy:");
    for f in findings.iter().take(SHOWN) {
        msg.push_str(&format!("\n    {f}"));
    }
    if findings.len() > SHOWN {
        msg.push_str(&format!("\n    ... and {} more", findings.len() - SHOWN));
    }
    Error::refused(msg).with_hint(
        "this snapshot's data is damaged; nothing live was touched. Restore an older \
         snapshot (`lifeboat restore` lists them)",
    )
}

/// How a table's count compares with the manifest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum CountStatus {
    Ok,
    /// A migration step declares it drops or rewrites the table.
    Tolerated {
        step: String,
    },
    Short,
    Missing,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RowCount {
    pub table: String,
    pub expected: u64,
    pub found: Option<u64>,
    #[serde(flatten)]
    pub status: CountStatus,
}

/// Compare the staged database's counts with the manifest's. `tolerated`
/// maps tables to the migration step that drops or rewrites them.
pub fn row_counts(
    conn: &Connection,
    entry: &DatabaseEntry,
    tolerated: &[(String, String)],
) -> Result<Vec<RowCount>> {
    let (found, _) = crate::snapshot::hotcopy::count_rows(conn).map_err(|e| {
        Error::database(format!(
            "database `{}`: cannot count rows of the staged copy: {e}",
            entry.name
        ))
    })?;
    Ok(compare(&entry.row_counts, &found, tolerated))
}

pub fn compare(
    expected: &BTreeMap<String, u64>,
    found: &BTreeMap<String, u64>,
    tolerated: &[(String, String)],
) -> Vec<RowCount> {
    expected
        .iter()
        .map(|(table, &want)| {
            let got = found.get(table).copied();
            let step = tolerated.iter().find(|(t, _)| t == table);
            let status = match (got, step) {
                (Some(n), _) if n >= want => CountStatus::Ok,
                (_, Some((_, step))) => CountStatus::Tolerated { step: step.clone() },
                (Some(_), None) => CountStatus::Short,
                (None, None) => CountStatus::Missing,
            };
            RowCount {
                table: table.clone(),
                expected: want,
                found: got,
                status,
            }
        })
        .collect()
}

/// The counts as a table: `table  expected  found  note`.
pub fn render(db: &str, counts: &[RowCount]) -> String {
    let width = counts
        .iter()
        .map(|c| c.table.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut s = format!(
        "  {db}: {:<width$} {:>10} {:>10}\n",
        "table", "expected", "found"
    );
    let pad = " ".repeat(db.len() + 2);
    for c in counts {
        let found = c.found.map_or("-".to_string(), |n| n.to_string());
        let note = match &c.status {
            CountStatus::Ok => String::new(),
            CountStatus::Tolerated { step } => format!("  (changed by {step})"),
            CountStatus::Short => "  SHORT".to_string(),
            CountStatus::Missing => "  MISSING".to_string(),
        };
        s.push_str(&format!(
            "  {pad}{:<width$} {:>10} {:>10}{note}\n",
            c.table, c.expected, found
        ));
    }
    s
}

/// Refuse when a count falls short (or a table is gone) without a
/// migration step that declares it.
pub fn refuse_shortfalls(db: &str, counts: &[RowCount]) -> Result<()> {
    let bad = counts
        .iter()
        .any(|c| matches!(c.status, CountStatus::Short | CountStatus::Missing));
    if !bad {
        return Ok(());
    }
    Err(Error::refused(format!(
        "database `{db}`: the staged copy has fewer rows than the snapshot's manifest records:\n{}",
        render(db, counts).trim_end()
    ))
    .with_hint(
        "the archive does not hold what its manifest says, or a migration step removes rows \
         without declaring it (`-- lifeboat: rewrites TABLE`); nothing live was touched",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_tolerates_declared_tables_only() {
        let expected = BTreeMap::from([
            ("a".to_string(), 5),
            ("b".to_string(), 5),
            ("c".to_string(), 5),
            ("d".to_string(), 5),
        ]);
        let found = BTreeMap::from([
            ("a".to_string(), 7),
            ("b".to_string(), 4),
            ("c".to_string(), 1),
            ("new".to_string(), 0),
        ]);
        let tolerated = vec![("c".to_string(), "0004_x.sql".to_string())];
        let out = compare(&expected, &found, &tolerated);
        let statuses: Vec<_> = out.iter().map(|c| c.status.clone()).collect();
        assert_eq!(
            statuses,
            vec![
                CountStatus::Ok,
                CountStatus::Short,
                CountStatus::Tolerated {
                    step: "0004_x.sql".into()
                },
                CountStatus::Missing
            ]
        );
        assert!(refuse_shortfalls("x", &out).is_err());
        assert!(refuse_shortfalls("x", &out[..1]).is_ok());
    }
}
