//! Giving memory back after large transient allocations.
//!
//! Applying a full update of a large tree parses a body of hundreds of megabytes into records
//! that die right after; glibc keeps most of that freed memory in its arenas, so a peer's
//! resident size would stay at twice what its tree needs. Trimming after such an event returns
//! it.

/// Entries above which an event is worth a trim.
pub const TRIM_ABOVE: usize = 10_000;

/// Returns freed heap memory to the system (as blocking work: it walks the heap).
pub async fn trim(blocking: crate::blocking::Blocking) {
    let _ = blocking
        .run(|| {
            // SAFETY: malloc_trim only releases free memory of the allocator; it has no
            // preconditions.
            #[cfg(target_env = "gnu")]
            unsafe {
                libc::malloc_trim(0);
            }
        })
        .await;
}
