//! Tiered (grandfather-father-son) retention. (Being built: issue 3.)

use crate::config::Config;
use crate::remote::Remote;
use crate::runrecord::RetentionResult;
use crate::tag::Tag;

/// Sweep local archives, then the remote, after a snapshot.
pub fn sweep_after_snapshot(
    _config: &Config,
    _remote: Option<&dyn Remote>,
    _just_taken: &Tag,
) -> RetentionResult {
    RetentionResult::default()
}
