//! `lifeboat demo`, the README's first command: the whole loop offline.

use crate::support::{lifeboat_bin, text};

#[test]
fn demo_runs_the_whole_loop() {
    let out = std::process::Command::new(lifeboat_bin())
        .args(["demo", "--json", "--tasks", "300"])
        .env_remove("LIFEBOAT_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["snapshot"]["status"], "success");
    assert_eq!(v["snapshot"]["push"]["status"], "pushed");
    assert_eq!(v["rows_before"], v["rows_after"]);
    assert_eq!(
        v["rows_before"]["tasks"], 240,
        "300 tasks, the done fifth archived by migration 0004"
    );
    let dbs = v["restore"]["stage"]["databases"].as_array().unwrap();
    assert_eq!(dbs.len(), 2);
    assert!(
        !std::path::Path::new(v["demo_dir"].as_str().unwrap()).exists(),
        "the demo cleans up"
    );
}
