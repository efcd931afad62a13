//! The one bound on concurrent work (`--jobs`): a worker pool that image reads, layer scans
//! and per-image checks all draw from, so 8 platforms × N layers never run 8N at once.

use std::sync::{Arc, Mutex};

/// The pool `--jobs` asked for; `None`: rayon's global pool (one worker per core).
static POOL: Mutex<Option<(usize, Arc<rayon::ThreadPool>)>> = Mutex::new(None);

/// Bound later parallel work to `jobs` workers (settings call this once, as they resolve).
/// `None` keeps one worker per core.
pub fn set_jobs(jobs: Option<usize>) -> std::io::Result<()> {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    match jobs {
        None => *pool = None,
        Some(n) if pool.as_ref().is_some_and(|(m, _)| *m == n) => {}
        Some(n) => {
            let built = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(|i| format!("mab-worker-{i}"))
                .build()
                .map_err(|e| std::io::Error::other(format!("cannot start worker threads: {e}")))?;
            *pool = Some((n, Arc::new(built)));
        }
    }
    Ok(())
}

/// Run `f` inside the bounded pool, so every `par_iter` below it shares that bound.
pub fn within<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let pool = POOL
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|(_, p)| p.clone());
    match pool {
        // Already one of its workers: installing again would only queue behind itself.
        Some(pool) if pool.current_thread_index().is_none() => pool.install(f),
        _ => f(),
    }
}

/// One worker: work is done strictly in order (`--jobs 1`), the reference a parallel read
/// must equal byte for byte.
pub fn sequential() -> bool {
    rayon::current_num_threads() == 1
}
