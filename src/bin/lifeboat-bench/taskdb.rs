//! A deterministic task-store database: what a small SaaS keeps in SQLite.
//! Five tables with foreign keys and secondary indexes; free text drawn from
//! a skewed vocabulary so that `gzip -6` compresses the file to about a third,
//! like real user-written text plus b-tree overhead.
//!
//! The same size always gives the same bytes (same seed, same insertion
//! order), so runs on different machines compare like with like.

use rusqlite::{Connection, params};
use std::path::Path;

/// xorshift64*: tiny, fast, and stable across versions (unlike a crate's
/// default RNG, whose stream may change).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// `range` as a SQL integer.
    fn int(&mut self, lo: u64, hi: u64) -> i64 {
        self.range(lo, hi) as i64
    }
    /// Skewed towards small values, like word frequencies.
    fn skewed(&mut self, n: u64) -> u64 {
        let n = n.max(1);
        let (a, b, c) = (self.below(n), self.below(n), self.below(n));
        a * b / n * c / n
    }
}

const SYLLABLES: &[&str] = &[
    "ka", "to", "ri", "ne", "sa", "lo", "mi", "de", "ver", "ant", "ion", "pre", "con", "sta",
    "tre", "ul", "em", "or", "is", "ba", "qu", "ex", "pl", "gr", "th", "ch", "ly", "ness", "ment",
    "ing", "al", "er",
];

struct Vocabulary {
    words: Vec<String>,
}

impl Vocabulary {
    fn new(rng: &mut Rng) -> Vocabulary {
        let words = (0..1500)
            .map(|_| {
                let n = rng.range(1, 4);
                (0..n)
                    .map(|_| SYLLABLES[rng.below(SYLLABLES.len() as u64) as usize])
                    .collect::<String>()
            })
            .collect();
        Vocabulary { words }
    }

    fn sentence(&self, rng: &mut Rng, out: &mut String) {
        let n = rng.range(4, 16);
        for i in 0..n {
            if i > 0 {
                out.push(' ');
            }
            match rng.below(150) {
                // Identifiers and numbers: the incompressible part of real text.
                0 => out.push_str(&format!("#{:x}", rng.next() & 0xff_ffff)),
                1 => out.push_str(&format!("{}", rng.below(10_000))),
                _ => out.push_str(&self.words[rng.skewed(self.words.len() as u64) as usize]),
            }
        }
        out.push_str(". ");
    }

    fn text(&self, rng: &mut Rng, min: usize, max: usize) -> String {
        let len = rng.range(min as u64, max as u64) as usize;
        let mut s = String::with_capacity(len + 100);
        while s.len() < len {
            self.sentence(rng, &mut s);
        }
        s
    }
}

const SCHEMA: &str = "
CREATE TABLE users(
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE projects(
    id INTEGER PRIMARY KEY,
    owner_id INTEGER NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX projects_owner ON projects(owner_id);
CREATE TABLE tasks(
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    assignee_id INTEGER REFERENCES users(id),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'doing', 'blocked', 'done')),
    priority INTEGER NOT NULL,
    due TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX tasks_project_status ON tasks(project_id, status);
CREATE INDEX tasks_assignee ON tasks(assignee_id);
CREATE TABLE comments(
    id INTEGER PRIMARY KEY,
    task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    author_id INTEGER NOT NULL REFERENCES users(id),
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX comments_task ON comments(task_id);
CREATE TABLE task_events(
    id INTEGER PRIMARY KEY,
    task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX task_events_task_at ON task_events(task_id, at);
";

const STATUSES: &[&str] = &["open", "doing", "blocked", "done"];
const EVENT_KINDS: &[&str] = &["created", "assigned", "status", "priority", "due", "edited"];

fn timestamp(rng: &mut Rng) -> String {
    // 2023-01-01 plus up to ~3 years, in seconds.
    let t = 1_672_531_200 + rng.below(94_608_000) as i64;
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Create `path` (which must not exist) with about `target_bytes` of data,
/// in WAL mode like a live application database.
pub fn generate(path: &Path, target_bytes: u64) -> rusqlite::Result<()> {
    let mut rng = Rng::new(0x5EED_1DEA);
    let vocab = Vocabulary::new(&mut rng);
    let mut conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA page_size = 4096; PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
         PRAGMA cache_size = -262144; PRAGMA foreign_keys = ON;",
    )?;
    conn.execute_batch(SCHEMA)?;

    let users = 2_000u64;
    let projects = 400u64;
    let tx = conn.transaction()?;
    {
        let mut ins = tx.prepare("INSERT INTO users VALUES (?1, ?2, ?3, ?4)")?;
        for id in 1..=users {
            let name = vocab.text(&mut rng, 8, 20);
            let name: String = name.chars().take(24).collect();
            ins.execute(params![
                id as i64,
                format!(
                    "user{id}@example.{}",
                    ["com", "org", "net"][id as usize % 3]
                ),
                name.trim_end_matches(['.', ' ']),
                timestamp(&mut rng)
            ])?;
        }
        let mut ins = tx.prepare("INSERT INTO projects VALUES (?1, ?2, ?3, ?4, ?5)")?;
        for id in 1..=projects {
            ins.execute(params![
                id as i64,
                rng.int(1, users),
                vocab.text(&mut rng, 10, 30),
                vocab.text(&mut rng, 100, 600),
                timestamp(&mut rng)
            ])?;
        }
    }
    tx.commit()?;

    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let mut task_id = 0u64;
    let (mut comment_id, mut event_id) = (0u64, 0u64);
    loop {
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        if (pages * page_size) as u64 >= target_bytes {
            break;
        }
        let tx = conn.transaction()?;
        {
            let mut task =
                tx.prepare("INSERT INTO tasks VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")?;
            let mut comment = tx.prepare("INSERT INTO comments VALUES (?1, ?2, ?3, ?4, ?5)")?;
            let mut event = tx.prepare("INSERT INTO task_events VALUES (?1, ?2, ?3, ?4, ?5)")?;
            for _ in 0..500 {
                task_id += 1;
                let created = timestamp(&mut rng);
                let assignee = (rng.below(5) != 0).then(|| rng.int(1, users));
                let due = (rng.below(3) == 0).then(|| timestamp(&mut rng));
                task.execute(params![
                    task_id as i64,
                    rng.int(1, projects),
                    assignee,
                    vocab.text(&mut rng, 20, 80),
                    vocab.text(&mut rng, 100, 1500),
                    STATUSES[rng.below(4) as usize],
                    rng.int(0, 4),
                    due,
                    created,
                    timestamp(&mut rng),
                ])?;
                for _ in 0..rng.below(5) {
                    comment_id += 1;
                    comment.execute(params![
                        comment_id as i64,
                        task_id as i64,
                        rng.int(1, users),
                        vocab.text(&mut rng, 30, 500),
                        timestamp(&mut rng),
                    ])?;
                }
                for _ in 0..rng.range(1, 6) {
                    event_id += 1;
                    let kind = EVENT_KINDS[rng.below(EVENT_KINDS.len() as u64) as usize];
                    let payload = format!(
                        r#"{{"by":{},"from":"{}","to":"{}","rev":{},"req":"{:016x}"}}"#,
                        rng.int(1, users),
                        STATUSES[rng.below(4) as usize],
                        STATUSES[rng.below(4) as usize],
                        rng.int(0, 99),
                        rng.next()
                    );
                    event.execute(params![
                        event_id as i64,
                        task_id as i64,
                        kind,
                        payload,
                        timestamp(&mut rng)
                    ])?;
                }
            }
        }
        tx.commit()?;
    }
    conn.execute_batch("PRAGMA journal_mode = WAL;")?;
    Ok(())
}

/// Parse `64M`, `1G`, `512K`, `1048576`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&s[..i], 1 << 20),
        (i, 'G' | 'g') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn generation_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.db");
        let b = dir.path().join("b.db");
        generate(&a, 512 << 10).unwrap();
        generate(&b, 512 << 10).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let conn = Connection::open(&a).unwrap();
        let dangling: i64 = conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(dangling, 0);
        let tasks: i64 = conn
            .query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))
            .unwrap();
        assert!(tasks > 0);
    }
}
