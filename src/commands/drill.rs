//! `lifeboat drill`: a real test restore into a scratch directory, timed
//! and recorded ([`crate::ops::drill`]).

use super::Global;
use crate::error::Result;
use crate::ops::drill::{DrillOptions, drill};
use crate::record::DrillRecord;

/// Restore the newest remote snapshot (or --tag) into a scratch directory
/// and check it: download, archive checks, sha256, migrations,
/// integrity_check, foreign keys, row counts. Records the outcome and the
/// measured recovery time in drill.json.
///
/// Without a remote, the newest local snapshot is drilled instead. A
/// snapshot dated in the future by this machine's clock (a clock was ahead,
/// or the tag was planted) is never "the newest": it is skipped and noted,
/// and when every snapshot is, the drill refuses.
#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    /// Drill this snapshot instead of the newest one (`latest`: the newest,
    /// as without --tag).
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
}

pub fn run(global: &Global, args: DrillArgs) -> Result<i32> {
    let config = global.load_config()?;
    let opts = DrillOptions {
        tag: args
            .tag
            .as_deref()
            .filter(|t| *t != "latest")
            .map(super::parse_tag)
            .transpose()?,
    };
    let (record, result) = drill(&config, &global.env(), &opts)?;
    if global.json {
        return global.print_json_outcome(&record, result.map(|()| 0));
    } else if result.is_ok() {
        print(&record);
    }
    result.map(|()| 0)
}

fn print(record: &DrillRecord) {
    outln!(
        "drill OK: {} from {} restored into a scratch directory and checked in {:.1}s",
        record.tag.map(|t| t.to_string()).unwrap_or_default(),
        record.source,
        record.duration_secs
    );
    for d in &record.databases {
        let schema = if d.restored_schema_version == d.schema_version {
            format!("v{}", d.schema_version)
        } else {
            format!("v{} -> v{}", d.schema_version, d.restored_schema_version)
        };
        outln!(
            "  {:<12} schema {schema:<10} {:>10} bytes {:>8} rows",
            d.name,
            d.bytes,
            d.rows
        );
    }
    for n in &record.notes {
        outln!("  note: {n}");
    }
}
