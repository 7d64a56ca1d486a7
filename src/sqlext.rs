//! What an application defines for its database and lifeboat does not
//! have: collations and SQL functions it registers on its own connections
//! (Anki's `unicase`, a `slugify()` in an index), and modules of SQLite
//! loadable extensions (SpatiaLite). A database that needs one is not
//! damaged, and lifeboat must not fail for lack of it: this module tells
//! such errors apart ([`missing`]), finds which schema objects need the
//! missing definition ([`users_of`]), and loads the extensions a database
//! declares (`extensions = [...]` in its `[[database]]` section).
//!
//! lifeboat never registers a stand-in: a fake collation or function would
//! make SQLite's checks report rows "missing from index" that are not, or
//! pass checks that were never really made. What cannot run is reported as
//! not run.

use crate::error::{Error, Result};
use rusqlite::Connection;

/// A definition the database needs and this connection lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    Collation(String),
    Function(String),
    Module(String),
}

impl Missing {
    /// The name as it appears in the schema's SQL.
    pub fn name(&self) -> &str {
        match self {
            Missing::Collation(n) | Missing::Function(n) | Missing::Module(n) => n,
        }
    }

    /// "collation `unicase`", "function `slugify()`", "module `fts5`".
    pub fn describe(&self) -> String {
        match self {
            Missing::Collation(n) => format!("collation `{n}`"),
            Missing::Function(n) => format!("function `{n}()`"),
            Missing::Module(n) => format!("virtual table module `{n}`"),
        }
    }
}

/// The missing definition an SQLite error is about, if that is what it is.
pub fn missing(e: &rusqlite::Error) -> Option<Missing> {
    missing_in(&e.to_string())
}

/// [`missing`] on an error's text (SQLite's wording, which has changed for
/// functions across versions).
pub fn missing_in(msg: &str) -> Option<Missing> {
    let after = |prefix: &str| {
        msg.find(prefix)
            .map(|i| msg[i + prefix.len()..].trim().to_string())
    };
    let word = |s: String| -> String {
        s.trim_end_matches("()")
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or("")
            .to_string()
    };
    if let Some(rest) = after("no such collation sequence:") {
        return Some(Missing::Collation(word(rest)));
    }
    if let Some(rest) = after("unknown function:").or_else(|| after("no such function:")) {
        return Some(Missing::Function(word(rest)));
    }
    if let Some(rest) = after("no such module:") {
        return Some(Missing::Module(word(rest)));
    }
    None
}

/// The schema objects of `table` (its indexes, then the table itself)
/// whose SQL names `what`: `("index", "notes_sfld")`. Matching is by word,
/// case-insensitive, as SQLite resolves names; an object whose SQL cannot
/// be read is not listed.
pub fn users_of(conn: &Connection, table: &str, what: &Missing) -> Vec<(String, String)> {
    let Ok(mut stmt) = conn.prepare(
        "SELECT type, name, sql FROM sqlite_schema WHERE tbl_name = ?1 AND sql IS NOT NULL
         ORDER BY type = 'table', name",
    ) else {
        return Vec::new();
    };
    let rows = stmt.query_map([table], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    });
    let Ok(rows) = rows else {
        return Vec::new();
    };
    rows.flatten()
        .filter(|(_, _, sql)| names_word(sql, what.name()))
        .map(|(kind, name, _)| (kind, name))
        .collect()
}

/// True when `word` occurs in `sql` as a whole identifier (ASCII
/// case-insensitive, possibly quoted).
fn names_word(sql: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let hay = sql.to_ascii_lowercase();
    let needle = word.to_ascii_lowercase();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$' || !c.is_ascii();
    hay.match_indices(&needle).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + needle.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// One sentence naming what needs `what` in `table`, for reports:
/// "index `notes_sfld` uses collation `unicase`".
pub fn explain(conn: &Connection, table: &str, what: &Missing) -> String {
    let users = users_of(conn, table, what);
    let verb = match what {
        Missing::Collation(_) | Missing::Function(_) => "uses",
        Missing::Module(_) => "needs",
    };
    match users.first() {
        Some((kind, name)) => format!("{kind} `{name}` {verb} {}", what.describe()),
        None => format!("table `{table}` needs {}", what.describe()),
    }
}

/// Load the SQLite extensions a database declares into `conn`, in order.
/// Extension loading is switched on only for the duration of the calls
/// (SQL's `load_extension()` stays disabled).
pub fn load_extensions(conn: &Connection, db: &str, extensions: &[String]) -> Result<()> {
    if extensions.is_empty() {
        return Ok(());
    }
    // SAFETY: loading an extension runs its native initialisation code in
    // this process. The libraries loaded are exactly those the operator
    // declared for this database in lifeboat's own configuration file (which
    // already decides which commands lifeboat's hooks run), and the guard
    // switches loading off again before anything else runs on `conn`.
    let guard = unsafe { rusqlite::LoadExtensionGuard::new(conn) }.map_err(|e| {
        Error::database(format!(
            "database `{db}`: cannot enable extension loading: {e}"
        ))
    })?;
    for ext in extensions {
        // SAFETY: as above; `ext` is a library named in the config.
        unsafe { conn.load_extension(ext, None::<&str>) }.map_err(|e| {
            Error::database(format!(
                "database `{db}`: cannot load SQLite extension `{ext}`: {e}"
            ))
            .with_hint(format!(
                "install the library (for `mod_spatialite` on Debian: apt install \
                 libsqlite3-mod-spatialite) or give its full path, or remove it from \
                 `extensions` of [[database]] `{db}` in the config"
            ))
        })?;
    }
    drop(guard);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_errors_name_what_is_missing() {
        assert_eq!(
            missing_in("no such collation sequence: unicase"),
            Some(Missing::Collation("unicase".into()))
        );
        assert_eq!(
            missing_in("unknown function: slugify()"),
            Some(Missing::Function("slugify".into()))
        );
        assert_eq!(
            missing_in("no such function: slugify"),
            Some(Missing::Function("slugify".into()))
        );
        assert_eq!(
            missing_in("no such module: VirtualSpatialIndex"),
            Some(Missing::Module("VirtualSpatialIndex".into()))
        );
        assert_eq!(missing_in("database disk image is malformed"), None);
    }

    #[test]
    fn the_objects_that_need_a_definition_are_found_by_word() {
        assert!(names_word(
            "CREATE INDEX i ON t(x COLLATE unicase)",
            "UNICASE"
        ));
        assert!(names_word("CREATE INDEX i ON t(\"slugify\"(x))", "slugify"));
        assert!(!names_word(
            "CREATE INDEX i ON t(x COLLATE unicase2)",
            "unicase"
        ));
        assert!(!names_word("CREATE INDEX i ON t(my_slugify(x))", "slugify"));
    }

    #[test]
    fn a_missing_extension_names_the_library_and_the_fix() {
        let conn = Connection::open_in_memory().unwrap();
        let e = load_extensions(&conn, "geo", &["lifeboat_no_such_extension".into()]).unwrap_err();
        assert!(e.message.contains("lifeboat_no_such_extension"), "{e}");
        assert!(
            e.hint.as_deref().unwrap_or("").contains("extensions"),
            "{e:?}"
        );
    }
}
