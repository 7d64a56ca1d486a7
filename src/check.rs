//! The one database checker. `verify`, `drill` and `restore` (dry run and
//! real) all judge a snapshot's database with [`database`], on a copy
//! unpacked from the archive, so the same archive and the same migration
//! ladder always get the same verdict.
//!
//! The checks, in order: the schema version matches the manifest;
//! `foreign_key_check` of the snapshot as taken, compared with the state
//! the manifest recorded when the snapshot was taken; the migration ladder
//! runs to its newest step; SQLite's own `integrity_check` (or
//! `quick_check`); `foreign_key_check` again, compared with the first; row
//! counts against the manifest. Any finding refuses, except foreign-key
//! violations that were already in the live data: SQLite does not enforce
//! foreign keys unless the application turns them on, so many real
//! databases hold such rows (a Fossil repository stores 0 for "none" in
//! columns declared as foreign keys), and restoring them faithfully is what
//! a backup is for. They are reported as a note. Refused are a state that
//! differs from the recorded one (the archive does not hold what was
//! taken) and violations the migration ladder introduced (the ladder, not
//! the data, is wrong then). A version 1 manifest recorded no state: its
//! violations are a warning note, never a refusal. What needs a collation
//! or function only the application defines is checked as far as it can
//! be without it, and the notes name the rest ([`crate::sqlext`]).

use crate::config::CheckLevel;
use crate::error::{Error, Result};
use crate::migrate::{Applied, MigrationRunner};
use crate::snapshot::facts::{self, ForeignKeyFindings};
use crate::snapshot::manifest::{DatabaseEntry, ForeignKeyState};
use rusqlite::Connection;
use std::collections::BTreeMap;

/// What the checks found in one database that passed them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Checked {
    pub schema_from: i64,
    pub schema_to: i64,
    pub migrations: Vec<Applied>,
    /// `integrity_check` or `quick_check`, followed by " (table by table)"
    /// when some tables could not be checked (the notes name them).
    pub check: String,
    pub row_counts: Vec<RowCount>,
    /// Findings that do not refuse (foreign-key rows the snapshot already had).
    pub notes: Vec<String>,
}

impl Checked {
    /// Rows found in the tables the manifest counted.
    pub fn rows(&self) -> u64 {
        self.row_counts.iter().filter_map(|r| r.found).sum()
    }
}

/// Check one database of a snapshot, unpacked at `conn` (opened read-write:
/// the ladder migrates it in place). `entry` is its manifest entry.
pub fn database(
    name: &str,
    conn: &mut Connection,
    entry: &DatabaseEntry,
    ladder: Option<&MigrationRunner>,
    level: CheckLevel,
) -> Result<Checked> {
    let version = |c: &Connection| -> Result<i64> {
        c.query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| {
                Error::refused(format!(
                    "database `{name}`: the unpacked copy is not readable: {e}"
                ))
                .with_hint(DAMAGED)
            })
    };
    let schema_from = version(conn)?;
    if schema_from != entry.schema_version {
        return Err(Error::refused(format!(
            "database `{name}`: the unpacked copy is at schema version {schema_from}, but the manifest says {}",
            entry.schema_version
        ))
        .with_hint(DAMAGED));
    }
    // Foreign-key findings of the snapshot as taken, before any migration.
    // A check that cannot even run usually means a damaged file: then
    // SQLite's integrity check says best what is wrong.
    let (fk_before, fk_unchecked) = match foreign_keys(name, conn) {
        Ok(found) => found,
        Err(e) => {
            integrity(name, conn, level)?;
            return Err(e);
        }
    };
    // Compared with what the snapshot recorded of the live data, when both
    // are whole (a table that could not be checked now proves nothing).
    let recorded = entry.foreign_keys.as_ref();
    if let Some(recorded) = recorded.filter(|_| fk_unchecked.is_empty())
        && state(&fk_before) != *recorded
    {
        // The file's bytes were checked against the manifest's sha256 before
        // this, so this is not damage to the file: the SQLite (or the
        // extension) reading it now judges its foreign keys differently
        // from the one that took it. Refused all the same: the restore
        // could not show that it reproduces the data as it was.
        return Err(Error::refused(format!(
            "database `{name}`: the unpacked copy's foreign-key state differs from the one recorded \
             when the snapshot was taken:\n    recorded: {}\n    found:    {}",
            describe(recorded),
            describe(&state(&fk_before))
        ))
        .with_hint(format!(
            "the file matches its recorded sha256, so it is as it was taken; this SQLite ({}) \
             or a declared extension reads its foreign keys differently from the one that took it \
             (`sqlite_version` in the manifest): restore with the lifeboat version that took it, \
             or check the `extensions` of this database; nothing live was touched",
            rusqlite::version()
        )));
    }
    let migrations = match ladder {
        Some(l) => l
            .run(conn)
            .map_err(|e| e.context(format!("database `{name}` (unpacked copy)")))?,
        None => Vec::new(),
    };
    let schema_to = version(conn)?;
    let (check, mut notes) = integrity(name, conn, level)?;
    let fk_whole = fk_unchecked.is_empty();
    notes.extend(fk_unchecked);
    let fk_after = if migrations.is_empty() {
        fk_before.clone()
    } else {
        foreign_keys(name, conn)?.0
    };
    // Violations are compared by count per parent table, not row by row: a
    // step may move an orphan to another table (archiving done tasks) or
    // rewrite a table (rowids change, WITHOUT ROWID tables have none), and
    // that is the same fault, not a new one.
    let grown: Vec<&String> = per_parent(&fk_after)
        .into_iter()
        .filter(|(parent, n)| per_parent(&fk_before).get(parent).copied().unwrap_or(0) < *n)
        .map(|(parent, _)| parent)
        .collect();
    if !grown.is_empty() {
        // Show the rows that look new (a rewritten table renumbers rows,
        // so fall back to every row of those parents).
        let of_grown = fk_after.iter().filter(|f| grown.contains(&&f.parent));
        let mut findings: Vec<String> = of_grown
            .clone()
            .filter(|f| !fk_before.contains(f))
            .map(|f| f.text.clone())
            .collect();
        if findings.is_empty() {
            findings = of_grown.map(|f| f.text.clone()).collect();
        }
        return Err(Error::refused(findings_message(
            name,
            "foreign_key_check after the migration ladder",
            &findings,
        ))
        .with_hint(format!(
            "the migration ladder leaves more rows without their parent in {} than the \
             snapshot had; fix the step (nothing live was touched)",
            grown
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if !fk_before.is_empty() {
        let texts: Vec<String> = fk_before.iter().map(|f| f.text.clone()).collect();
        let why = match (recorded, fk_whole) {
            (Some(_), true) => {
                "already in the live data when the snapshot was taken, as its manifest records; \
                 SQLite enforces foreign keys only when the application turns them on, so they \
                 are restored as they were"
            }
            (Some(_), false) => {
                "not compared with the state the manifest records, since some tables could not \
                 be checked now (see the notes); they are restored as the archive holds them"
            }
            (None, _) => {
                "warning: this snapshot's manifest records no foreign-key state (version 1, or \
                 the check could not run when it was taken), so lifeboat cannot tell whether the \
                 live data had them; they are restored as the archive holds them"
            }
        };
        notes.push(format!(
            "{} ({why})",
            findings_message(name, "foreign_key_check", &texts)
        ));
    }
    let tolerated = ladder.map_or_else(Vec::new, |l| l.tolerated_after(schema_from));
    let row_counts = row_counts(conn, entry, &tolerated)?;
    for c in &row_counts {
        if let CountStatus::Uncounted { reason } = &c.status {
            notes.push(format!(
                "database `{name}`: table `{}` was not counted: {reason}",
                c.table
            ));
        }
    }
    refuse_shortfalls(name, &row_counts)?;
    Ok(Checked {
        schema_from,
        schema_to,
        migrations,
        check,
        row_counts,
        notes,
    })
}

/// Every note about something that could not be checked or counted says
/// this, so a summary can say its "pass" was partial.
pub const NOT_CHECKED: &str = "not checked";

/// Whether a note says that something was not checked or counted.
pub fn is_unchecked(note: &str) -> bool {
    note.contains(NOT_CHECKED) || note.contains("not counted")
}

/// The hint of a refusal caused by the data in the archive.
const DAMAGED: &str = "this snapshot's data is damaged; nothing live was touched. Restore an \
                       older snapshot (`lifeboat list` shows them)";

/// Findings shown in a refusal; the rest are counted.
const SHOWN: usize = 5;

/// `PRAGMA integrity_check` (or `quick_check`): refuse on any finding.
/// When the database needs a collation or function that only its
/// application defines, SQLite refuses to run the check at all; then every
/// table that can be checked without it is checked on its own, and the
/// notes say exactly what was not checked.
fn integrity(name: &str, conn: &Connection, level: CheckLevel) -> Result<(String, Vec<String>)> {
    let pragma = match level {
        CheckLevel::Full => "integrity_check",
        CheckLevel::Quick => "quick_check",
    };
    let rows = match pragma_rows(conn, &format!("PRAGMA {pragma}")) {
        Ok(rows) => rows,
        Err(e) if crate::sqlext::missing(&e).is_some() => {
            return per_table_integrity(name, conn, pragma);
        }
        Err(e) => return Err(refused_check(name, pragma, &[e.to_string()])),
    };
    if rows.len() == 1 && rows[0] == "ok" {
        return Ok((pragma.to_string(), Vec::new()));
    }
    Err(refused_check(name, pragma, &rows))
}

fn pragma_rows(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    conn.prepare(sql).and_then(|mut s| {
        s.query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<_>>()
    })
}

/// The tables of the schema (the internal ones too), for per-table checks.
fn tables(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect()
}

/// `PRAGMA integrity_check(T)` for each table T: its b-tree and its
/// indexes. A table that needs a missing definition is skipped and named;
/// a checked one with a finding refuses, as the whole check would.
fn per_table_integrity(
    name: &str,
    conn: &Connection,
    pragma: &'static str,
) -> Result<(String, Vec<String>)> {
    let all = tables(conn).map_err(|e| refused_check(name, pragma, &[e.to_string()]))?;
    let mut findings = Vec::new();
    let mut skipped = Vec::new();
    for table in &all {
        let sql = format!("PRAGMA {pragma}(\"{}\")", table.replace('"', "\"\""));
        match pragma_rows(conn, &sql) {
            Ok(rows) if rows.len() == 1 && rows[0] == "ok" => {}
            Ok(rows) => findings.extend(rows),
            Err(e) => match crate::sqlext::missing(&e) {
                Some(m) => skipped.push(format!(
                    "{}, which lifeboat cannot load: table `{table}` and its indexes were not \
                     checked (their order and contents)",
                    crate::sqlext::explain(conn, table, &m)
                )),
                None => findings.push(format!("table `{table}`: {e}")),
            },
        }
    }
    if !findings.is_empty() {
        return Err(refused_check(name, pragma, &findings));
    }
    let passed = match all.len() - skipped.len() {
        0 => "there was no other table".to_string(),
        1 => "the 1 other table passed".to_string(),
        n => format!("the {n} other tables passed"),
    };
    let mut notes: Vec<String> = skipped
        .into_iter()
        .map(|s| format!("database `{name}`: PRAGMA {pragma}: {s}"))
        .collect();
    notes.push(format!(
        "database `{name}`: PRAGMA {pragma} ran table by table ({passed}), so pages that \
         belong to no table were {NOT_CHECKED} either; where an SQLite extension defines what is \
         missing, declaring it (`extensions` in [[database]]) lets everything be checked"
    ));
    Ok((format!("{pragma} (table by table)"), notes))
}

/// One `foreign_key_check` finding: the parent table it concerns, and a
/// line for people.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    /// The table holding the row.
    table: String,
    parent: String,
    text: String,
    /// A "foreign key mismatch": `text` is SQLite's error.
    mismatch: bool,
}

/// The summary a manifest records of these findings, made as the snapshot
/// made it ([`crate::snapshot::facts`]).
fn state(found: &[Violation]) -> ForeignKeyState {
    let findings = match found.iter().find(|v| v.mismatch) {
        Some(m) => ForeignKeyFindings::Mismatch(m.text.clone()),
        None => ForeignKeyFindings::Rows(
            found
                .iter()
                .map(|v| facts::ForeignKeyRow {
                    table: v.table.clone(),
                    rowid: None,
                    parent: v.parent.clone(),
                })
                .collect(),
        ),
    };
    findings.state()
}

fn describe(state: &ForeignKeyState) -> String {
    if state.is_clean() {
        "no violations".to_string()
    } else {
        state.describe()
    }
}

/// `PRAGMA foreign_key_check`: one finding per violation (or one for a
/// "foreign key mismatch", a declaration SQLite cannot check), in a stable
/// order; and notes naming the tables that could not be checked because a
/// key needs a collation or function the application defines.
fn foreign_keys(name: &str, conn: &Connection) -> Result<(Vec<Violation>, Vec<String>)> {
    match foreign_key_rows(conn, "PRAGMA foreign_key_check") {
        Err(e) if crate::sqlext::missing(&e).is_some() => {}
        other => return Ok((fk_findings(name, other)?, Vec::new())),
    }
    // Table by table, skipping (and naming) those SQLite cannot check.
    let all = tables(conn).map_err(|e| {
        Error::refused(findings_message(
            name,
            "foreign_key_check",
            &[e.to_string()],
        ))
        .with_hint(DAMAGED)
    })?;
    let mut found = Vec::new();
    let mut notes = Vec::new();
    for table in &all {
        let sql = format!(
            "PRAGMA foreign_key_check(\"{}\")",
            table.replace('"', "\"\"")
        );
        match foreign_key_rows(conn, &sql) {
            Err(e) if crate::sqlext::missing(&e).is_some() => {
                let m = crate::sqlext::missing(&e).expect("matched above");
                notes.push(format!(
                    "database `{name}`: PRAGMA foreign_key_check: {}, which lifeboat cannot \
                     load: the foreign keys of table `{table}` were not checked",
                    crate::sqlext::explain(conn, table, &m)
                ));
            }
            other => found.extend(fk_findings(name, other)?),
        }
    }
    found.sort_by(|a, b| a.text.cmp(&b.text));
    Ok((found, notes))
}

fn foreign_key_rows(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<Violation>> {
    conn.prepare(sql).and_then(|mut s| {
        s.query_map([], |r| {
            let table: String = r.get(0)?;
            let rowid: Option<i64> = r.get(1)?;
            let parent: String = r.get(2)?;
            Ok(Violation {
                text: format!(
                    "{table} row {} references a missing {parent} row",
                    rowid.map_or("?".to_string(), |v| v.to_string())
                ),
                table,
                parent,
                mismatch: false,
            })
        })?
        .collect::<rusqlite::Result<Vec<Violation>>>()
    })
}

fn fk_findings(name: &str, found: rusqlite::Result<Vec<Violation>>) -> Result<Vec<Violation>> {
    match found {
        Ok(mut rows) => {
            rows.sort_by(|a, b| a.text.cmp(&b.text));
            Ok(rows)
        }
        // A foreign key to a non-unique column or a dropped table: SQLite
        // cannot check it, and neither could the application.
        Err(e) if e.to_string().contains("foreign key mismatch") => Ok(vec![Violation {
            table: String::new(),
            parent: String::new(),
            text: e.to_string(),
            mismatch: true,
        }]),
        Err(e) => Err(Error::refused(findings_message(
            name,
            "foreign_key_check",
            &[e.to_string()],
        ))
        .with_hint(DAMAGED)),
    }
}

fn per_parent(findings: &[Violation]) -> BTreeMap<&String, usize> {
    let mut counts = BTreeMap::new();
    for f in findings {
        *counts.entry(&f.parent).or_insert(0) += 1;
    }
    counts
}

fn refused_check(name: &str, pragma: &str, findings: &[String]) -> Error {
    Error::refused(findings_message(name, pragma, findings)).with_hint(DAMAGED)
}

fn findings_message(name: &str, pragma: &str, findings: &[String]) -> String {
    let mut msg = format!("database `{name}`: PRAGMA {pragma} reports:");
    for f in findings.iter().take(SHOWN) {
        msg.push_str(&format!("\n    {f}"));
    }
    if findings.len() > SHOWN {
        msg.push_str(&format!("\n    ... and {} more", findings.len() - SHOWN));
    }
    msg
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
    /// The table is there, but counting it needs something lifeboat cannot
    /// load (a module or collation the application defines): not a finding.
    Uncounted {
        reason: String,
    },
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
fn row_counts(
    conn: &Connection,
    entry: &DatabaseEntry,
    tolerated: &[(String, String)],
) -> Result<Vec<RowCount>> {
    let (found, uncountable) = crate::snapshot::hotcopy::count_rows(conn).map_err(|e| {
        Error::database(format!(
            "database `{}`: cannot count rows of the unpacked copy: {e}",
            entry.name
        ))
    })?;
    let mut counts = compare(&entry.row_counts, &found, tolerated);
    for c in &mut counts {
        if c.status == CountStatus::Missing
            && let Some(reason) = uncountable.get(&c.table)
        {
            c.status = CountStatus::Uncounted {
                reason: reason.clone(),
            };
        }
    }
    Ok(counts)
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
            CountStatus::Uncounted { reason } => format!("  (not counted: {reason})"),
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
fn refuse_shortfalls(db: &str, counts: &[RowCount]) -> Result<()> {
    let bad = counts
        .iter()
        .any(|c| matches!(c.status, CountStatus::Short | CountStatus::Missing));
    if !bad {
        return Ok(());
    }
    Err(Error::refused(format!(
        "database `{db}`: the unpacked copy has fewer rows than the snapshot's manifest records:\n{}",
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

    /// A database at schema v1 with a parent and a child table, `orphans`
    /// child rows pointing at no parent (foreign keys off, as SQLite's
    /// default is), and its manifest entry.
    fn source(orphans: usize) -> (tempfile::TempDir, Connection, DatabaseEntry) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("t.db")).unwrap();
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF; PRAGMA user_version = 1;
             CREATE TABLE parent(id INTEGER PRIMARY KEY);
             CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id));
             INSERT INTO parent VALUES (1); INSERT INTO child(parent_id) VALUES (1);",
        )
        .unwrap();
        for _ in 0..orphans {
            conn.execute("INSERT INTO child(parent_id) VALUES (999)", [])
                .unwrap();
        }
        let mut entry = crate::snapshot::manifest::sample().databases.remove(0);
        entry.schema_version = 1;
        entry.row_counts = BTreeMap::from([
            ("parent".to_string(), 1),
            ("child".to_string(), 1 + orphans as u64),
        ]);
        record(&conn, &mut entry);
        (dir, conn, entry)
    }

    /// Record the foreign-key state as a snapshot records it.
    fn record(conn: &Connection, entry: &mut DatabaseEntry) {
        entry.foreign_keys = Some(
            crate::snapshot::facts::foreign_key_check(conn)
                .unwrap()
                .state(),
        );
    }

    #[test]
    fn a_state_other_than_the_recorded_one_is_refused() {
        // The manifest says clean, the copy has orphans: not what was taken.
        let (_dir, mut conn, mut entry) = source(2);
        entry.foreign_keys = Some(Default::default());
        let e = database("t", &mut conn, &entry, None, CheckLevel::Full).unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Refused);
        assert!(
            e.message.contains("differs from the one recorded"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("recorded: no violations"),
            "{}",
            e.message
        );
        assert!(
            e.message
                .contains("found:    2 rows without their parent (child → parent: 2)"),
            "{}",
            e.message
        );
        // And the other way round: recorded orphans that are gone.
        let (_dir, mut conn, mut entry) = source(0);
        entry.foreign_keys = source(1).2.foreign_keys;
        assert!(database("t", &mut conn, &entry, None, CheckLevel::Full).is_err());
    }

    #[test]
    fn a_version_1_manifest_makes_violations_a_warning() {
        let (_dir, mut conn, mut entry) = source(1);
        entry.foreign_keys = None;
        let c = database("t", &mut conn, &entry, None, CheckLevel::Full).unwrap();
        assert_eq!(c.notes.len(), 1, "{c:?}");
        assert!(
            c.notes[0].contains("warning: this snapshot's manifest records no foreign-key state"),
            "{:?}",
            c.notes
        );
    }

    fn ladder(step2: &str) -> MigrationRunner {
        MigrationRunner::from_files(
            "test",
            [("0001_init.sql", "SELECT 1;"), ("0002_next.sql", step2)],
        )
        .unwrap()
    }

    #[test]
    fn a_clean_database_passes_with_no_notes() {
        let (_dir, mut conn, entry) = source(0);
        let c = database("t", &mut conn, &entry, None, CheckLevel::Full).unwrap();
        assert!(c.notes.is_empty(), "{c:?}");
        assert_eq!((c.schema_from, c.schema_to, c.rows()), (1, 1, 2));
    }

    #[test]
    fn foreign_key_rows_the_snapshot_had_are_a_note_not_a_refusal() {
        let (_dir, mut conn, entry) = source(2);
        let c = database("t", &mut conn, &entry, None, CheckLevel::Full).unwrap();
        assert_eq!(c.notes.len(), 1, "{c:?}");
        assert!(c.notes[0].contains("foreign_key_check"), "{:?}", c.notes);
        assert!(c.notes[0].contains("child row 2 references a missing parent row"));
        assert!(!c.notes[0].contains("damaged"));
        // A migration that leaves them as they are changes nothing.
        let (_dir, mut conn, entry) = source(2);
        let l = ladder("CREATE TABLE extra(x);");
        let c = database("t", &mut conn, &entry, Some(&l), CheckLevel::Full).unwrap();
        assert_eq!((c.schema_to, c.notes.len()), (2, 1));
    }

    #[test]
    fn foreign_key_rows_a_migration_introduces_are_refused() {
        let (_dir, mut conn, entry) = source(1);
        let l = ladder("INSERT INTO child(parent_id) VALUES (777);");
        let e = database("t", &mut conn, &entry, Some(&l), CheckLevel::Full).unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Refused);
        assert!(
            e.message.contains("after the migration ladder") && e.message.contains("child row 3"),
            "{e}"
        );
        assert!(
            !e.message.contains("child row 2"),
            "pre-existing rows are not blamed: {e}"
        );
    }

    #[test]
    fn an_orphan_a_migration_moves_to_another_table_is_not_new() {
        // Like archiving done tasks: the orphan leaves `child` for `archive`,
        // still without its parent. The same fault, not one the step made.
        let (_dir, mut conn, mut entry) = source(1);
        conn.execute_batch(
            "CREATE TABLE archive(id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id));",
        )
        .unwrap();
        entry.row_counts.insert("archive".into(), 0);
        let l = ladder(
            "-- lifeboat: rewrites child\n\
             INSERT INTO archive SELECT * FROM child WHERE parent_id = 999;\n\
             DELETE FROM child WHERE parent_id = 999;",
        );
        let c = database("t", &mut conn, &entry, Some(&l), CheckLevel::Full).unwrap();
        assert_eq!(c.notes.len(), 1, "{c:?}");
        assert!(c.notes[0].contains("child row 2"), "{:?}", c.notes);
    }

    #[test]
    fn new_orphans_in_a_without_rowid_table_are_counted() {
        let (_dir, mut conn, mut entry) = source(0);
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             CREATE TABLE tag(p INTEGER REFERENCES parent(id), t TEXT, PRIMARY KEY (p, t)) WITHOUT ROWID;
             INSERT INTO tag VALUES (999, 'old orphan');",
        )
        .unwrap();
        entry.row_counts.insert("tag".into(), 1);
        record(&conn, &mut entry);
        let l = ladder("INSERT INTO tag VALUES (998, 'a'), (997, 'b');");
        let e = database("t", &mut conn, &entry, Some(&l), CheckLevel::Full).unwrap_err();
        assert!(e.message.contains("after the migration ladder"), "{e}");
    }

    #[test]
    fn a_foreign_key_to_a_non_unique_column_is_a_note() {
        let (_dir, mut conn, entry) = source(0);
        conn.execute_batch(
            "CREATE TABLE a(x); CREATE TABLE b(y REFERENCES a(x)); INSERT INTO b VALUES (1);",
        )
        .unwrap();
        let mut entry = entry;
        entry.row_counts.insert("a".into(), 0);
        entry.row_counts.insert("b".into(), 1);
        record(&conn, &mut entry);
        let c = database("t", &mut conn, &entry, None, CheckLevel::Full).unwrap();
        assert!(c.notes[0].contains("foreign key mismatch"), "{:?}", c.notes);
    }

    #[test]
    fn a_wrong_schema_version_and_a_failing_step_are_refused() {
        let (_dir, mut conn, mut entry) = source(0);
        entry.schema_version = 5;
        let e = database("t", &mut conn, &entry, None, CheckLevel::Full).unwrap_err();
        assert!(e.message.contains("manifest says 5"), "{e}");
        let (_dir, mut conn, entry) = source(0);
        let l = ladder("CREATE TABLE parent(id);");
        let e = database("t", &mut conn, &entry, Some(&l), CheckLevel::Full).unwrap_err();
        assert!(e.message.contains("0002_next.sql"), "{e}");
    }

    /// A database like an Anki collection or a blog: an index on a column
    /// with the application's collation `unicase`, an index on its function
    /// `slugify()`, a WITHOUT ROWID table keyed by a `unicase` column, and a
    /// child table whose foreign key points at a `unicase` key. lifeboat
    /// has neither. (Built with SQLite's own `nocase` and `lower()`, then
    /// renamed in the schema: the files are what the application writes.)
    fn app_defined(rows: usize) -> (tempfile::TempDir, Connection, DatabaseEntry) {
        let (dir, conn, mut entry) = source(0);
        conn.execute_batch(&format!(
            "CREATE TABLE notes(id INTEGER PRIMARY KEY, sfld TEXT);
             CREATE INDEX notes_sfld ON notes(sfld COLLATE nocase);
             CREATE TABLE posts(id INTEGER PRIMARY KEY, title TEXT);
             CREATE INDEX posts_slug ON posts(lower(title));
             CREATE TABLE tags(tag TEXT NOT NULL PRIMARY KEY COLLATE nocase, usn INT) WITHOUT ROWID;
             CREATE TABLE decks(name TEXT COLLATE nocase UNIQUE);
             CREATE TABLE cards(deck TEXT REFERENCES decks(name));
             INSERT INTO decks VALUES ('Default');
             INSERT INTO cards VALUES ('default'), ('Default');
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
               INSERT INTO notes(sfld) SELECT printf('Note %05d', i) FROM n;
             INSERT INTO posts(title) SELECT sfld FROM notes;
             INSERT INTO tags SELECT printf('tag-%s-%s', sfld, hex(randomblob(20))), 1 FROM notes;
             PRAGMA writable_schema = ON;
             UPDATE sqlite_schema SET sql = replace(replace(sql, 'nocase', 'unicase'), 'lower(', 'slugify(');
             PRAGMA writable_schema = OFF;"
        ))
        .unwrap();
        let path = conn.path().unwrap().to_string();
        drop(conn);
        let conn = Connection::open(&path).unwrap();
        for (t, n) in [
            ("notes", rows),
            ("posts", rows),
            ("tags", rows),
            ("decks", 1),
            ("cards", 2),
        ] {
            entry.row_counts.insert(t.to_string(), n as u64);
        }
        (dir, conn, entry)
    }

    #[test]
    fn rows_are_counted_without_the_applications_collations_and_functions() {
        let (_dir, conn, _) = app_defined(3000);
        // Without lifeboat's fallbacks, SQLite refuses to count some of them.
        assert!(
            conn.query_row("SELECT count(*) FROM tags", [], |r| r.get::<_, i64>(0))
                .is_err()
        );
        let (counts, uncountable) = crate::snapshot::hotcopy::count_rows(&conn).unwrap();
        assert!(uncountable.is_empty(), "{uncountable:?}");
        for t in ["notes", "posts", "tags"] {
            assert_eq!(counts[t], 3000, "{t}: {counts:?}");
        }
        assert_eq!((counts["decks"], counts["cards"]), (1, 2));
    }

    #[test]
    fn checks_run_without_the_applications_definitions_and_say_what_they_skipped() {
        let (_dir, mut conn, entry) = app_defined(50);
        let c = database("t", &mut conn, &entry, None, CheckLevel::Full).unwrap();
        let all = c.notes.join("\n");
        assert!(
            all.contains("index `notes_sfld` uses collation `unicase`, which lifeboat cannot load"),
            "{all}"
        );
        assert!(
            all.contains("index `posts_slug` uses function `slugify()`"),
            "{all}"
        );
        assert!(all.contains("table `tags`"), "{all}");
        assert!(all.contains("not checked"), "{all}");
        assert!(!all.contains("damaged"), "{all}");
        assert!(
            c.row_counts.iter().all(|r| r.status == CountStatus::Ok),
            "{c:?}"
        );
        // quick_check the same way.
        let (_dir, mut conn, entry) = app_defined(50);
        let c = database("t", &mut conn, &entry, None, CheckLevel::Quick).unwrap();
        assert_eq!(c.check, "quick_check (table by table)");
        assert!(
            c.notes.iter().any(|n| n.contains("notes_sfld")),
            "{:?}",
            c.notes
        );
    }

    #[test]
    fn a_table_counted_with_an_extension_but_not_countable_now_is_a_note() {
        // The snapshot was counted with the module loaded (`extensions`);
        // the checking side lacks it now.
        let (_dir, conn, mut entry) = source(0);
        conn.execute_batch(
            "PRAGMA writable_schema = ON;
             INSERT INTO sqlite_schema VALUES
               ('table', 'places_idx', 'places_idx', 0, 'CREATE VIRTUAL TABLE places_idx USING geo_rtree(id)');
             PRAGMA writable_schema = OFF;",
        )
        .unwrap();
        let path = conn.path().unwrap().to_string();
        drop(conn);
        let mut conn = Connection::open(&path).unwrap();
        entry.row_counts.insert("places_idx".into(), 7);
        let (counts, uncountable) = crate::snapshot::hotcopy::count_rows(&conn).unwrap();
        assert!(!counts.contains_key("places_idx"));
        assert!(
            uncountable["places_idx"].contains("module `geo_rtree`"),
            "{uncountable:?}"
        );
        let c = database("t", &mut conn, &entry, None, CheckLevel::Full).unwrap();
        let row = c
            .row_counts
            .iter()
            .find(|r| r.table == "places_idx")
            .unwrap();
        assert!(
            matches!(row.status, CountStatus::Uncounted { .. }),
            "{row:?}"
        );
        assert!(
            c.notes
                .iter()
                .any(|n| n.contains("`places_idx` was not counted") && is_unchecked(n)),
            "{:?}",
            c.notes
        );
    }

    #[test]
    fn damage_in_what_can_be_checked_is_still_refused() {
        let (_dir, conn, entry) = app_defined(50);
        // An index whose declared order no longer matches its contents.
        conn.execute_batch(
            "CREATE TABLE other(x); CREATE INDEX other_x ON other(x);
             INSERT INTO other VALUES (1), (2), (3);
             PRAGMA writable_schema = ON;
             UPDATE sqlite_schema SET sql = 'CREATE INDEX other_x ON other(x DESC)' WHERE name = 'other_x';
             PRAGMA writable_schema = OFF;",
        )
        .unwrap();
        let path = conn.path().unwrap().to_string();
        drop(conn);
        let mut conn = Connection::open(&path).unwrap();
        let mut entry = entry;
        entry.row_counts.insert("other".into(), 3);
        let e = database("t", &mut conn, &entry, None, CheckLevel::Full).unwrap_err();
        assert!(
            e.message.contains("integrity_check") && e.message.contains("other_x"),
            "{e}"
        );
    }

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
