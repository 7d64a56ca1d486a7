//! Migration ladders: the steps that bring a database's schema from one
//! `PRAGMA user_version` to the next.
//!
//! A ladder is a directory of files named `NNNN_description.sql`, where
//! `NNNN` is the `user_version` the file brings the database to. Numbers are
//! contiguous from `0001`: a gap or a duplicate is an error when the ladder
//! is loaded, before anything runs. Each step runs in one transaction that
//! also sets `user_version`, so a step is applied completely or not at all.
//! Steps must therefore not contain `BEGIN`/`COMMIT` themselves.
//!
//! # Header directives
//!
//! Restore compares a migrated snapshot's row counts with the manifest, and
//! a table must not have fewer rows than the snapshot had. A step that
//! legitimately removes rows says so in its leading comment block:
//!
//! ```sql
//! -- lifeboat: drops old_tasks
//! -- lifeboat: rewrites tasks, task_tags
//! ```
//!
//! `drops T` means `T` may be gone after the step; `rewrites T` means `T` may
//! hold fewer rows. Either way restore stops counting `T` once the step has
//! run. Any other `-- lifeboat:` verb is an error (a typo must not silently
//! switch a check off), and directives below the first SQL statement are
//! refused as well, so they are always visible at the top of the file.
//!
//! The repository's `migrations/` directory is the demo application's
//! ladder; it is also compiled into the binary ([`demo_ladder`]) so that
//! `lifeboat demo` works without the source tree.

use crate::error::{Error, IoContext, Result};
use rusqlite::{Connection, TransactionBehavior};
use std::collections::BTreeSet;
use std::path::Path;

/// One step of a ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The `user_version` this step brings the database to.
    pub version: i64,
    /// The file name, e.g. `0003_add_task_priority.sql`.
    pub file: String,
    pub sql: String,
    /// Tables the step declares it drops.
    pub drops: Vec<String>,
    /// Tables the step declares it rewrites (may shrink).
    pub rewrites: Vec<String>,
}

/// A step that [`MigrationRunner::run`] applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    pub version: i64,
    pub file: String,
}

/// A loaded, validated ladder.
#[derive(Debug, Clone)]
pub struct MigrationRunner {
    /// Where the ladder came from, for messages.
    source: String,
    steps: Vec<Step>,
}

/// The demo application's ladder, as compiled into the binary.
const DEMO: &[(&str, &str)] = &[
    (
        "0001_create_projects_and_tasks.sql",
        include_str!("../migrations/0001_create_projects_and_tasks.sql"),
    ),
    (
        "0002_add_tags.sql",
        include_str!("../migrations/0002_add_tags.sql"),
    ),
    (
        "0003_add_task_priority.sql",
        include_str!("../migrations/0003_add_task_priority.sql"),
    ),
    (
        "0004_archive_done_tasks.sql",
        include_str!("../migrations/0004_archive_done_tasks.sql"),
    ),
];

/// The ladder of the demo application (the repository's `migrations/`).
pub fn demo_ladder() -> MigrationRunner {
    MigrationRunner::from_files("the built-in demo ladder", DEMO.iter().copied())
        .expect("the built-in demo ladder is valid (checked by a unit test)")
}

impl MigrationRunner {
    /// Load every `*.sql` file of `dir`. Other files are ignored, but a
    /// `.sql` file whose name does not have the `NNNN_description.sql` shape
    /// is an error: it was surely meant to be a step.
    pub fn load(dir: &Path) -> Result<MigrationRunner> {
        let shown = dir.display().to_string();
        let entries = std::fs::read_dir(dir).map_err(|e| {
            Error::io(format!("cannot read migration directory {shown}"), e)
                .with_hint("check the database's `migrations` path in the config")
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.ctx(format!("cannot read migration directory {shown}"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".sql") {
                continue;
            }
            let text = std::fs::read_to_string(entry.path())
                .ctx(format!("cannot read migration {}", entry.path().display()))?;
            files.push((name, text));
        }
        MigrationRunner::from_files(&shown, files.iter().map(|(n, t)| (n.as_str(), t.as_str())))
    }

    /// Build a ladder from (file name, contents) pairs in any order.
    pub fn from_files<'a>(
        source: &str,
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<MigrationRunner> {
        let bad = |msg: String| {
            Error::config(format!("migration ladder {source}: {msg}"))
                .with_hint("name steps NNNN_description.sql, numbered 0001, 0002, ... without gaps")
        };
        let mut steps = Vec::new();
        for (file, sql) in files {
            let version = parse_name(file).ok_or_else(|| {
                bad(format!(
                    "`{file}` is not named NNNN_description.sql (four digits, `_`, a name)"
                ))
            })?;
            let (drops, rewrites) = parse_directives(sql)
                .map_err(|why| Error::config(format!("migration {source}/{file}: {why}")))?;
            steps.push(Step {
                version,
                file: file.to_string(),
                sql: sql.to_string(),
                drops,
                rewrites,
            });
        }
        steps.sort_by(|a, b| a.version.cmp(&b.version).then(a.file.cmp(&b.file)));
        for (i, step) in steps.iter().enumerate() {
            let want = i as i64 + 1;
            if step.version == want {
                continue;
            }
            return Err(if i > 0 && steps[i - 1].version == step.version {
                bad(format!(
                    "two steps bring the database to version {}: `{}` and `{}`",
                    step.version,
                    steps[i - 1].file,
                    step.file
                ))
            } else {
                bad(format!(
                    "version {want:04} is missing (the next step is `{}`)",
                    step.file
                ))
            });
        }
        Ok(MigrationRunner {
            source: source.to_string(),
            steps,
        })
    }

    /// The version the whole ladder brings a database to (0 when empty).
    pub fn newest(&self) -> i64 {
        self.steps.last().map_or(0, |s| s.version)
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Apply every step the database lacks, up to [`newest`](Self::newest).
    pub fn run(&self, conn: &mut Connection) -> Result<Vec<Applied>> {
        self.run_to(conn, self.newest())
    }

    /// Apply the missing steps up to `target`. Each step is one transaction
    /// that also sets `user_version`; a failing step is rolled back and named.
    pub fn run_to(&self, conn: &mut Connection, target: i64) -> Result<Vec<Applied>> {
        let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if current > self.newest() {
            return Err(Error::refused(format!(
                "the database is at schema version {current}, newer than the newest step of {} ({})",
                self.source,
                self.newest()
            ))
            .with_hint("this lifeboat/ladder is older than the data: use the newer code"));
        }
        let mut applied = Vec::new();
        for step in self
            .steps
            .iter()
            .filter(|s| s.version > current && s.version <= target)
        {
            let failed = |e: rusqlite::Error| {
                Error::database(format!(
                    "migration {} failed and was rolled back: {e}",
                    step.file
                ))
                .with_hint(format!(
                    "the database stays at version {}; fix {}/{}",
                    step.version - 1,
                    self.source,
                    step.file
                ))
            };
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(failed)?;
            tx.execute_batch(&step.sql).map_err(failed)?;
            tx.pragma_update(None, "user_version", step.version)
                .map_err(failed)?;
            tx.commit().map_err(failed)?;
            tracing::info!(step = %step.file, version = step.version, "migration applied");
            applied.push(Applied {
                version: step.version,
                file: step.file.clone(),
            });
        }
        Ok(applied)
    }

    /// Tables whose row counts are no longer comparable after migrating from
    /// `from` to the newest version: those a later step drops or rewrites,
    /// each with the step that does so.
    pub fn tolerated_after(&self, from: i64) -> Vec<(String, String)> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for step in self.steps.iter().filter(|s| s.version > from) {
            for table in step.drops.iter().chain(&step.rewrites) {
                if seen.insert(table.clone()) {
                    out.push((table.clone(), step.file.clone()));
                }
            }
        }
        out
    }
}

/// `0003_add_priority.sql` -> 3.
fn parse_name(file: &str) -> Option<i64> {
    let stem = file.strip_suffix(".sql")?;
    let (digits, desc) = stem.split_at_checked(4)?;
    let desc = desc.strip_prefix('_')?;
    let ok = digits.bytes().all(|b| b.is_ascii_digit())
        && !desc.is_empty()
        && desc
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return None;
    }
    digits.parse().ok().filter(|v| *v > 0)
}

type Directives = (Vec<String>, Vec<String>);

fn parse_directives(sql: &str) -> std::result::Result<Directives, String> {
    let (mut drops, mut rewrites) = (Vec::new(), Vec::new());
    let mut in_header = true;
    for (n, line) in sql.lines().enumerate() {
        let line = line.trim();
        let Some(rest) = line
            .strip_prefix("--")
            .map(str::trim_start)
            .and_then(|r| r.strip_prefix("lifeboat:"))
        else {
            if !line.is_empty() && !line.starts_with("--") {
                in_header = false;
            }
            continue;
        };
        if !in_header {
            return Err(format!(
                "line {}: `-- lifeboat:` directives belong in the leading comment block",
                n + 1
            ));
        }
        let rest = rest.trim();
        let (verb, tables) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let list = match verb {
            "drops" => &mut drops,
            "rewrites" => &mut rewrites,
            other => {
                return Err(format!(
                    "line {}: unknown directive `{other}` (use `drops TABLE` or `rewrites TABLE`)",
                    n + 1
                ));
            }
        };
        let names: Vec<String> = tables
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        if names.is_empty() {
            return Err(format!("line {}: `{verb}` names no table", n + 1));
        }
        list.extend(names);
    }
    Ok((drops, rewrites))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ladder(files: &[(&str, &str)]) -> Result<MigrationRunner> {
        MigrationRunner::from_files("test", files.iter().copied())
    }

    #[test]
    fn embedded_demo_ladder_equals_the_files_on_disk() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let on_disk = MigrationRunner::load(&dir).unwrap();
        let embedded = demo_ladder();
        assert_eq!(on_disk.steps(), embedded.steps());
        assert!(embedded.newest() >= 3);
    }

    #[test]
    fn demo_ladder_runs_and_backfills() {
        let mut conn = Connection::open_in_memory().unwrap();
        let ladder = demo_ladder();
        ladder.run_to(&mut conn, 2).unwrap();
        conn.execute_batch(
            "INSERT INTO projects(id, name) VALUES (1, 'home');
             INSERT INTO tasks(project_id, title, done, due) VALUES
               (1, 'a', 0, '2026-12-01'), (1, 'b', 1, NULL), (1, 'c', 0, NULL);",
        )
        .unwrap();
        let applied = ladder.run(&mut conn).unwrap();
        assert_eq!(
            applied.iter().map(|a| a.version).collect::<Vec<_>>(),
            vec![3, 4]
        );
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, ladder.newest());
        let prio: Vec<(String, i64)> = conn
            .prepare("SELECT title, priority FROM tasks ORDER BY title")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(prio, vec![("a".into(), 1), ("c".into(), 2)]);
        let archived: i64 = conn
            .query_row("SELECT count(*) FROM archived_tasks", [], |r| r.get(0))
            .unwrap();
        assert_eq!(archived, 1);
        assert!(ladder.run(&mut conn).unwrap().is_empty(), "idempotent");
        let tolerated: Vec<String> = ladder
            .tolerated_after(2)
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(tolerated, vec!["tasks", "task_tags"]);
        assert!(ladder.tolerated_after(4).is_empty());
    }

    #[test]
    fn gaps_duplicates_and_bad_names_are_refused() {
        let err = ladder(&[("0001_a.sql", ""), ("0003_c.sql", "")]).unwrap_err();
        assert!(err.message.contains("0002 is missing"), "{}", err.message);
        let err = ladder(&[("0001_a.sql", ""), ("0001_b.sql", "")]).unwrap_err();
        assert!(err.message.contains("two steps"), "{}", err.message);
        for name in [
            "1_a.sql",
            "0001.sql",
            "0001_.sql",
            "abcd_x.sql",
            "0000_zero.sql",
        ] {
            let err = ladder(&[(name, "")]).unwrap_err();
            assert!(err.message.contains(name), "{name}: {}", err.message);
        }
        let err = ladder(&[("0002_b.sql", "")]).unwrap_err();
        assert!(err.message.contains("0001 is missing"), "{}", err.message);
    }

    #[test]
    fn directives_are_parsed_and_typos_refused() {
        let l = ladder(&[(
            "0001_a.sql",
            "-- about\n-- lifeboat: drops old\n--lifeboat: rewrites t1, t2\nCREATE TABLE x(y);\n",
        )])
        .unwrap();
        assert_eq!(l.steps()[0].drops, vec!["old"]);
        assert_eq!(l.steps()[0].rewrites, vec!["t1", "t2"]);
        let err = ladder(&[("0001_a.sql", "-- lifeboat: drop old\n")]).unwrap_err();
        assert!(err.message.contains("unknown directive"), "{}", err.message);
        let err =
            ladder(&[("0001_a.sql", "CREATE TABLE x(y);\n-- lifeboat: drops x\n")]).unwrap_err();
        assert!(err.message.contains("leading comment"), "{}", err.message);
    }

    #[test]
    fn a_failing_step_rolls_back_and_is_named() {
        let l = ladder(&[
            ("0001_a.sql", "CREATE TABLE a(x);"),
            (
                "0002_b.sql",
                "CREATE TABLE b(x); INSERT INTO a VALUES (1); INSERT INTO nope VALUES (1);",
            ),
        ])
        .unwrap();
        let mut conn = Connection::open_in_memory().unwrap();
        let err = l.run(&mut conn).unwrap_err();
        assert!(err.message.contains("0002_b.sql"), "{}", err.message);
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 1, "step 1 stays applied, step 2 rolled back");
        let b: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'b'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(b, 0);
        let a: i64 = conn
            .query_row("SELECT count(*) FROM a", [], |r| r.get(0))
            .unwrap();
        assert_eq!(a, 0);
    }

    #[test]
    fn a_newer_database_is_refused() {
        let l = ladder(&[("0001_a.sql", "CREATE TABLE a(x);")]).unwrap();
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA user_version = 5").unwrap();
        let err = l.run(&mut conn).unwrap_err();
        assert_eq!(err.kind, crate::error::Kind::Refused);
    }
}
