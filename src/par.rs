//! Running independent per-database work on every core: copying several
//! databases, checking several staged ones. One thread per core, at most
//! one per item; results come back in input order, so errors and reports
//! are the same whatever finished first.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Run `f` on every item, several at once. After the first `Err` no new item
/// is started (the work has failed; the rest would be wasted), so an item
/// never started is `None`; those already running finish.
pub fn map_ordered<T, R, E>(
    items: &[T],
    f: impl Fn(&T) -> Result<R, E> + Sync,
) -> Vec<Option<Result<R, E>>>
where
    T: Sync,
    R: Send,
    E: Send,
{
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<R, E>>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    let failed = r.is_err();
                    results.lock().unwrap()[i] = Some(r);
                    if failed {
                        next.store(items.len(), Ordering::SeqCst);
                        break;
                    }
                }
            });
        }
    });
    results.into_inner().unwrap()
}

/// [`map_ordered`], then the first error in input order, or every result.
pub fn try_map_ordered<T, R, E>(
    items: &[T],
    f: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E>
where
    T: Sync,
    R: Send,
    E: Send,
{
    let mut out = Vec::with_capacity(items.len());
    let mut missing = false;
    for r in map_ordered(items, f) {
        match r {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => return Err(e),
            None => missing = true,
        }
    }
    // Items are only skipped after an error, which was returned above.
    assert!(!missing, "an item was skipped without an error");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_input_order() {
        let items: Vec<u64> = (0..50).collect();
        let out = try_map_ordered(&items, |&i| {
            // Later items finish first.
            std::thread::sleep(std::time::Duration::from_millis(50 - i));
            Ok::<_, ()>(i * 2)
        })
        .unwrap();
        assert_eq!(out, (0..50).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn the_first_error_in_input_order_wins() {
        let items = [1, 2, 3, 4];
        let r = try_map_ordered(&items, |&i| {
            if i == 2 {
                // Fails late, after item 3 failed.
                std::thread::sleep(std::time::Duration::from_millis(50));
                Err(format!("item {i}"))
            } else if i == 3 {
                Err(format!("item {i}"))
            } else {
                Ok(i)
            }
        });
        // Item 2 was handed out before item 3, so it ran too.
        assert_eq!(r.unwrap_err(), "item 2");
        let items = [1, 2];
        assert_eq!(
            try_map_ordered(&items, |&i| if i == 1 { Err("one") } else { Ok(i) }),
            Err("one")
        );
    }

    #[test]
    fn runs_items_at_the_same_time_on_several_cores() {
        if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            return;
        }
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let items = [0; 4];
        try_map_ordered(&items, |_| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(100));
            running.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, ()>(())
        })
        .unwrap();
        assert!(most.load(Ordering::SeqCst) >= 2);
    }
}
