//! Snapshots: the archive, the manifest, last_run.json, and bad input.

use crate::support::{App, sqlite, text};

#[test]
fn snapshot_writes_archive_and_record() {
    let app = App::new();
    sqlite(
        &app.data_dir().join("db/tasks.db"),
        "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1),(2);",
    );
    app.write_config("[[database]]\nname = \"tasks\"\npath = \"db/tasks.db\"\n");
    let out = app.run(&["snapshot"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(app.archives().len(), 1);
    assert_eq!(app.last_run()["status"], "success");
}
